//! A permanent rejection is believed only when the CSE repeats it.
//!
//! One answer is not enough to move a record to the dead letters: a CSE can refuse a good
//! record once for reasons of its own. Seen with ACME: the first timestamps it parses after a
//! start, when two requests arrive together, can be refused as "format error in
//! absRelTimestamp" (4000) because its date library fills a shared cache while another thread
//! reads it. A timeSeries retry after a lost answer can also meet the instance the CSE is still
//! committing: found by its `dgt` (4105) but not yet by its name (4004). So the first
//! permanent answer for a record sends it once more, right away; only a second permanent answer
//! dead-letters it. A record that is really unacceptable costs one request more.
use std::collections::HashSet;

/// The records (by seq) the CSE has rejected once and that are being sent again.
#[derive(Debug, Default)]
pub struct RejectionCheck {
    rejected_once: HashSet<u64>,
}

impl RejectionCheck {
    /// A permanent answer for `seq`: true when it is the second one (dead-letter the record),
    /// false on the first (send it again).
    pub fn is_repeated(&mut self, seq: u64) -> bool {
        !self.rejected_once.insert(seq)
    }

    /// The record left the queue (delivered, already there or dead-lettered).
    pub fn settled(&mut self, seq: u64) {
        self.rejected_once.remove(&seq);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_second_rejection_of_a_record_counts() {
        let mut check = RejectionCheck::default();
        assert!(!check.is_repeated(7));
        assert!(!check.is_repeated(8), "another record has its own count");
        assert!(check.is_repeated(7));
        check.settled(7);
        assert!(!check.is_repeated(7), "a settled seq starts again");
    }
}
