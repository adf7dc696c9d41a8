//! Whether an instance the CSE says "already exists" is really the record's (timeSeries).
use super::binding::Binding;
use super::onem2m::name;
use super::onem2m::primitive::{Request, Rsc};
use super::retry::{classify, Outcome};

/// After a 4105 on a timeSeriesInstance create: is it ours? The CSE answers 4105 both when the
/// instance with this `rn` exists (a retry after a lost answer: delivered) and when another
/// instance with the same `dgt` exists (TS-0004: `dgt` is unique in a timeSeries). The latter
/// would lose the record silently if counted as delivered, so it is RETRIEVEd by name:
/// found → already there; 4004 → a permanent refusal (dead-lettered, visible). A 4004 can also
/// come from an instance the CSE is still committing (the retry after a lost answer met it by
/// `dgt` before it was findable by name): the syncer sends a rejected record once more before it
/// dead-letters it, and then the read-back finds it.
pub async fn confirm_instance(
    binding: &dyn Binding,
    series_path: &str,
    originator: &str,
    release: &str,
    rn: &str,
) -> Outcome {
    let to = format!("{series_path}/{}", name::address(&[rn]));
    let result = binding
        .send(Request::retrieve(to, originator, release))
        .await;
    match classify(&result) {
        Outcome::Delivered => Outcome::AlreadyThere,
        Outcome::TreeMissing { .. } => Outcome::Permanent {
            rsc: Some(Rsc::CONFLICT.0),
            detail: format!(
                "{series_path} already holds another reading with the same source time (dgt); \
                 record {rn} is not stored there"
            ),
        },
        other => other,
    }
}
