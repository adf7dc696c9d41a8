//! The one check of a configured device id, used by every adapter's `validate`.
//!
//! A device id names the device's container at the CSE, so the rule is the oneM2M resource-name
//! rule of [`crate::northbound::onem2m::name`]. At run time an id outside the rule is mapped to
//! a safe container name; in the config it is an error, so the container is named as written.
use crate::config::issue::ConfigIssue;
use crate::northbound::onem2m::name::{check_device_id, MAX_NAME_LEN};

/// An issue at `path` if `id` is not usable as a container name as is.
pub fn device_id_issue(path: impl Into<String>, id: &str) -> Option<ConfigIssue> {
    let err = check_device_id(id).err()?;
    Some(
        ConfigIssue::new(
            path,
            format!("Device id {id:?} cannot be a oneM2M container name: {err}."),
        )
        .hint(format!(
            "use 1 to {MAX_NAME_LEN} letters, digits, `-`, `_` or `.`, not \".\" or \"..\", e.g. \"cab17-meter\""
        )),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_ids_pass_and_others_say_why() {
        assert_eq!(device_id_issue("devices.0.id", "cab17-meter.1"), None);
        let issue = device_id_issue("devices.0.id", "a/b").unwrap();
        assert_eq!(issue.path, "devices.0.id");
        assert!(issue.message.contains("\"a/b\"") && issue.message.contains("'/'"));
        assert!(issue.hint.unwrap().contains("letters, digits"));
        for id in ["", ".", "..", "a b", "café", "a~b"] {
            assert!(device_id_issue("id", id).is_some(), "{id:?}");
        }
        assert!(device_id_issue("id", &"x".repeat(65)).is_some());
    }
}
