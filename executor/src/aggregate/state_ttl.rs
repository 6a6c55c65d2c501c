//! State time-to-live for a hash aggregate (`WITH (state_ttl = '1 hour')`).
//!
//! A group no row has changed for `ttl` of processing time expires: the
//! aggregate retracts its row from the view and deletes its state, so the
//! state holds only groups active within the last `ttl`. A row for an
//! expired group later starts it afresh.
//!
//! [`GroupExpiry`] remembers when each group was last changed, in memory
//! only: a restored aggregate counts every stored group as changed at its
//! restart, so no group expires earlier than it would have, some later.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::row::{RowConverter, Rows};
use datafusion::error::Result;

use crate::state::StateTable;

pub struct GroupExpiry {
    ttl: Duration,
    /// When each group (its encoded key) was last changed.
    changed: HashMap<Vec<u8>, Instant>,
    /// The same, ordered by time.
    by_time: BTreeSet<(Instant, Vec<u8>)>,
}

impl GroupExpiry {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            changed: HashMap::new(),
            by_time: BTreeSet::new(),
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Notes that groups `keys` changed at `now`.
    pub fn touch<'a>(&mut self, keys: impl IntoIterator<Item = &'a [u8]>, now: Instant) {
        for key in keys {
            match self.changed.get_mut(key) {
                Some(at) => {
                    let mut entry = (*at, key.to_vec());
                    self.by_time.remove(&entry);
                    entry.0 = now;
                    *at = now;
                    self.by_time.insert(entry);
                }
                None => {
                    self.changed.insert(key.to_vec(), now);
                    self.by_time.insert((now, key.to_vec()));
                }
            }
        }
    }

    /// Counts every stored group, whose keys are the first `key_len`
    /// columns of `groups`' rows, as changed at `now`.
    pub fn restore(
        &mut self,
        groups: &StateTable,
        group_keys: &RowConverter,
        key_len: usize,
        now: Instant,
    ) -> Result<()> {
        groups.scan(4096, |batch| {
            let keys: Vec<ArrayRef> = batch.columns()[..key_len].to_vec();
            let encoded: Rows = group_keys.convert_columns(&keys)?;
            self.touch(encoded.iter().map(|row| row.data()), now);
            Ok(true)
        })
    }

    /// Stops tracking `keys`.
    pub fn forget(&mut self, keys: &[Vec<u8>]) {
        for key in keys {
            if let Some(at) = self.changed.remove(key) {
                self.by_time.remove(&(at, key.clone()));
            }
        }
    }

    /// The groups unchanged for `ttl` at `now`, forgotten here.
    pub fn expire(&mut self, now: Instant) -> Vec<Vec<u8>> {
        let Some(deadline) = now.checked_sub(self.ttl) else {
            return Vec::new();
        };
        let mut expired = Vec::new();
        while let Some((at, _)) = self.by_time.first() {
            if *at > deadline {
                break;
            }
            let Some((_, key)) = self.by_time.pop_first() else {
                break;
            };
            self.changed.remove(&key);
            expired.push(key);
        }
        expired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_expire_a_ttl_after_their_last_change() {
        let mut expiry = GroupExpiry::new(Duration::from_secs(10));
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        expiry.touch([b"a".as_slice(), b"b".as_slice()], at(0));
        expiry.touch([b"a".as_slice()], at(5));
        expiry.touch([b"c".as_slice()], at(7));
        assert!(expiry.expire(at(9)).is_empty());
        assert_eq!(expiry.expire(at(10)), vec![b"b".to_vec()]);
        assert_eq!(expiry.expire(at(16)), vec![b"a".to_vec()]);
        expiry.touch([b"c".as_slice()], at(16));
        assert!(expiry.expire(at(20)).is_empty());
        assert_eq!(expiry.expire(at(26)), vec![b"c".to_vec()]);
        assert!(expiry.expire(at(100)).is_empty());
    }
}
