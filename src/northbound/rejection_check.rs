//! When the syncer believes that a record, and not the CSE, is the problem.
//!
//! **A permanent rejection is believed only when the CSE repeats it.** One answer is not
//! enough to move a record to the dead letters: a CSE can refuse a good record once for
//! reasons of its own. Seen with ACME: the first timestamps it parses after a start, when two
//! requests arrive together, can be refused as "format error in absRelTimestamp" (4000)
//! because its date library fills a shared cache while another thread reads it. A timeSeries
//! retry after a lost answer can also meet the instance the CSE is still committing: found by
//! its `dgt` (4105) but not yet by its name (4004). So the first permanent answer for a record
//! sends it once more, right away; only a second permanent answer dead-letters it. A record
//! that is really unacceptable costs one request more.
//!
//! **A server error is the record's fault only when it keeps coming while other records get
//! through.** 5xxx and unusable answers are retried: they usually mean the CSE is in trouble,
//! and then every record waits. But a record that makes the CSE fail every time (a poison
//! record) would hold its device back for good, since a device's records go in order. So a
//! record answered with a server error `dead_letter_after` times, while other records were
//! delivered since its first one, goes to the dead letters. A CSE that fails everything
//! delivers nothing meanwhile, and then no record is given up (nor on a gateway with a single
//! device: nothing there tells a broken record from a broken CSE).
use std::collections::{HashMap, HashSet};

/// What the syncer has seen of the records at the heads of its device queues.
#[derive(Debug, Default)]
pub struct RejectionCheck {
    /// Records (by seq) the CSE has rejected once and that are being sent again.
    rejected_once: HashSet<u64>,
    /// Records (by seq) answered with server errors: how many, and the deliveries counted
    /// when the first one came.
    server_errors: HashMap<u64, ServerErrors>,
    /// Records delivered so far (any device).
    deliveries: u64,
    /// Server errors after which a record is given up (0: never).
    dead_letter_after: u32,
}

#[derive(Debug)]
struct ServerErrors {
    count: u32,
    deliveries_at_first: u64,
}

impl RejectionCheck {
    /// `dead_letter_after`: `[northbound] dead_letter_after` (0: never give a record up for
    /// server errors).
    pub fn new(dead_letter_after: u32) -> Self {
        RejectionCheck {
            dead_letter_after,
            ..Default::default()
        }
    }

    /// A permanent answer for `seq`: true when it is the second one (dead-letter the record),
    /// false on the first (send it again).
    pub fn is_repeated(&mut self, seq: u64) -> bool {
        !self.rejected_once.insert(seq)
    }

    /// A server error (5xxx, unusable answer) for `seq`: true when the record is to be given
    /// up: `dead_letter_after` of them, and other records delivered since the first.
    pub fn is_poison(&mut self, seq: u64) -> bool {
        if self.dead_letter_after == 0 {
            return false;
        }
        let deliveries = self.deliveries;
        let errors = self.server_errors.entry(seq).or_insert(ServerErrors {
            count: 0,
            deliveries_at_first: deliveries,
        });
        errors.count += 1;
        errors.count >= self.dead_letter_after && deliveries > errors.deliveries_at_first
    }

    /// A record was delivered (or was already there): evidence that the CSE works. It leaves
    /// the queue by [`settled`](Self::settled), like every other record.
    pub fn delivered(&mut self) {
        self.deliveries += 1;
    }

    /// The record left the queue (delivered, already there or dead-lettered).
    pub fn settled(&mut self, seq: u64) {
        self.rejected_once.remove(&seq);
        self.server_errors.remove(&seq);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_second_rejection_of_a_record_counts() {
        let mut check = RejectionCheck::new(10);
        assert!(!check.is_repeated(7));
        assert!(!check.is_repeated(8), "another record has its own count");
        assert!(check.is_repeated(7));
        check.settled(7);
        assert!(!check.is_repeated(7), "a settled seq starts again");
    }

    #[test]
    fn a_record_failing_while_others_get_through_is_given_up() {
        let mut check = RejectionCheck::new(3);
        assert!(!check.is_poison(7));
        check.delivered();
        assert!(!check.is_poison(7));
        assert!(
            check.is_poison(7),
            "third server error, another record delivered meanwhile"
        );
    }

    #[test]
    fn a_cse_failing_everything_gives_up_no_record() {
        let mut check = RejectionCheck::new(3);
        for _ in 0..20 {
            assert!(!check.is_poison(7), "nothing was delivered meanwhile");
            assert!(!check.is_poison(8));
        }
        // Deliveries before the first server error do not count either.
        check.delivered();
        for _ in 0..20 {
            assert!(!check.is_poison(10));
        }
    }

    #[test]
    fn a_settled_record_starts_again_and_zero_means_never() {
        let mut check = RejectionCheck::new(2);
        assert!(!check.is_poison(7));
        check.delivered();
        check.settled(7);
        assert!(!check.is_poison(7), "its count started again");
        let mut never = RejectionCheck::new(0);
        assert!(!never.is_poison(7));
        never.delivered();
        for _ in 0..20 {
            assert!(!never.is_poison(7));
        }
    }
}
