//! Reading every held event back in parts that several threads read at once: the
//! engine's start reads the whole of `log` to build its view (issue 28: a million
//! events read on one thread were most of an 8.6 s start).

use std::path::PathBuf;

use aidmesh_protocol::{EventId, Timestamp};

use super::{Store, StoreError};

/// One range of `log`'s stamps: what one thread reads ([`LogPart::each`]).
pub struct LogPart {
    tree: sled::Tree,
    path: PathBuf,
    /// First stamp of the range (8 bytes BE), or from the start.
    from: Option<[u8; 8]>,
    /// First stamp past the range, or to the end.
    to: Option<[u8; 8]>,
}

/// The stamp of a `log` key (its first 8 bytes).
fn key_stamp(k: &[u8]) -> Option<u64> {
    k.get(..8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_be_bytes)
}

impl Store {
    /// `log` cut into `parts` ranges of stamps of equal span, together every held
    /// event once: each can be read on a thread of its own. The first range is open
    /// below and the last open above, so an event written meanwhile is in one of them
    /// whatever its stamp (a view rebuilt while the node runs files those again
    /// anyway). No range when nothing is held.
    pub fn log_parts(&self, parts: usize) -> Result<Vec<LogPart>, StoreError> {
        let tree = self.with(|t| Ok(t.log.clone()))?;
        let first = self.with(|_| tree.first())?;
        let last = self.with(|_| tree.last())?;
        let part = |from: Option<u64>, to: Option<u64>| LogPart {
            tree: tree.clone(),
            path: self.path.clone(),
            from: from.map(u64::to_be_bytes),
            to: to.map(u64::to_be_bytes),
        };
        let (Some(lo), Some(hi)) = (
            first.and_then(|(k, _)| key_stamp(&k)),
            last.and_then(|(k, _)| key_stamp(&k)),
        ) else {
            // Nothing held (or keys of another shape): one part, the whole tree.
            return Ok(vec![part(None, None)]);
        };
        let parts = parts.max(1) as u128;
        let span = u128::from(hi.saturating_sub(lo)) + 1;
        let cut = |i: u128| lo + (span * i / parts) as u64;
        let mut out = Vec::new();
        let mut from = None;
        for i in 1..parts {
            let to = cut(i);
            if from.is_some_and(|f| f >= to) || to <= lo {
                continue; // an empty range (fewer stamps than parts)
            }
            out.push(part(from, Some(to)));
            from = Some(to);
        }
        out.push(part(from, None));
        Ok(out)
    }
}

impl LogPart {
    /// Calls `f` with each event of this range, in time order: its id as keyed in
    /// `log` (`None` for a key of another shape) and its wire bytes.
    pub fn each(
        &self,
        mut f: impl FnMut(Option<(Timestamp, EventId)>, &[u8]),
    ) -> Result<(), StoreError> {
        let io = |source| StoreError::Io {
            path: self.path.clone(),
            source,
        };
        let iter = match (&self.from, &self.to) {
            (None, None) => self.tree.iter(),
            (Some(a), None) => self.tree.range(&a[..]..),
            (None, Some(b)) => self.tree.range(..&b[..]),
            (Some(a), Some(b)) => self.tree.range(&a[..]..&b[..]),
        };
        for kv in iter {
            let (k, v) = kv.map_err(io)?;
            let key = match (
                key_stamp(&k),
                k.get(8..).and_then(|b| <[u8; 32]>::try_from(b).ok()),
            ) {
                (Some(ts), Some(id)) => Some((Timestamp(ts), EventId(id))),
                _ => None,
            };
            f(key, &v);
        }
        Ok(())
    }
}
