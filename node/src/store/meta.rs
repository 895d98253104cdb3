//! The `meta` tree (settings, the pending-compaction flag, where writes from other
//! machines came from) and the `peers` tree (the peer book).

use aidmesh_protocol::EventId;

use super::{PeerRecord, Store, StoreError};

/// Prefix of the `meta` keys noting where a write from another machine came from:
/// `posted-from/` || ms (8 bytes BE) || event id → the address, as text.
pub(super) const POSTED_FROM: &[u8] = b"posted-from/";

impl Store {
    /// A setting.
    pub fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.with(|t| Ok(t.meta.get(key)?.map(|v| v.to_vec())))
    }

    /// Sets a setting and flushes.
    pub fn set_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.write(&[("meta", key.as_bytes())], |t| t.meta.insert(key, value))?;
        self.flush()
    }

    /// Notes that this node's event `id`, written at `at_ms`, was posted from another
    /// machine at `from` (kept in `meta` under [`POSTED_FROM`]), and lets go of notes
    /// older than `keep_ms`. Local: never sent anywhere. Not flushed: a crash may lose
    /// the note, never the event.
    pub fn note_posted_from(
        &self,
        id: &EventId,
        from: &str,
        at_ms: u64,
        keep_ms: u64,
    ) -> Result<(), StoreError> {
        let mut key = POSTED_FROM.to_vec();
        key.extend_from_slice(&at_ms.to_be_bytes());
        key.extend_from_slice(&id.0);
        let mut end = POSTED_FROM.to_vec();
        end.extend_from_slice(&at_ms.saturating_sub(keep_ms).to_be_bytes());
        let old: Vec<sled::IVec> = self.with(|t| {
            t.meta
                .range(POSTED_FROM..end.as_slice())
                .keys()
                .collect::<Result<_, _>>()
        })?;
        let mut touched: Vec<(&'static str, &[u8])> = vec![("meta", &key)];
        touched.extend(old.iter().map(|k| ("meta", k.as_ref())));
        self.write(&touched, |t| {
            for k in &old {
                t.meta.remove(k)?;
            }
            t.meta.insert(key.as_slice(), from.as_bytes()).map(|_| ())
        })
    }

    /// Every note of [`Store::note_posted_from`]: when, which event, from where.
    pub fn posted_from(&self) -> Result<Vec<(u64, EventId, String)>, StoreError> {
        self.with(|t| {
            let mut out = Vec::new();
            for kv in t.meta.scan_prefix(POSTED_FROM) {
                let (k, v) = kv?;
                let rest = &k[POSTED_FROM.len()..];
                if let (Ok(ms), Ok(id)) = (
                    <[u8; 8]>::try_from(rest.get(..8).unwrap_or_default()),
                    <[u8; 32]>::try_from(rest.get(8..).unwrap_or_default()),
                ) {
                    out.push((
                        u64::from_be_bytes(ms),
                        EventId(id),
                        String::from_utf8_lossy(&v).into_owned(),
                    ));
                }
            }
            Ok(out)
        })
    }

    /// A peer's record.
    pub fn peer(&self, peer: &str) -> Result<Option<PeerRecord>, StoreError> {
        match self.with(|t| t.peers.get(peer))? {
            None => Ok(None),
            Some(v) => postcard::from_bytes(&v)
                .map(Some)
                .map_err(|e| self.corrupt("peers", e.to_string())),
        }
    }

    /// Every peer in the book.
    pub fn peers(&self) -> Result<Vec<(String, PeerRecord)>, StoreError> {
        let mut out = Vec::new();
        let peers = self.with(|t| Ok(t.peers.clone()))?;
        for r in peers.iter() {
            let (k, v) = r.map_err(|e| self.io(e))?;
            let rec = postcard::from_bytes(&v).map_err(|e| self.corrupt("peers", e.to_string()))?;
            out.push((String::from_utf8_lossy(&k).into_owned(), rec));
        }
        Ok(out)
    }

    /// Updates a peer's record (not flushed: the peer book is a cache).
    pub fn set_peer(&self, peer: &str, rec: &PeerRecord) -> Result<(), StoreError> {
        let v = postcard::to_stdvec(rec).map_err(|e| self.corrupt("peers", e.to_string()))?;
        self.write(&[("peers", peer.as_bytes())], |t| {
            t.peers.insert(peer, v).map(|_| ())
        })
    }
}
