//! Sneakernet bundles on this node: writing the held events to a bundle file and
//! reading one back (format: [`aidmesh_protocol::bundle`]).
//!
//! Export writes what the store holds, in time order: erased content is not in the
//! store, so it is never exported. Import feeds each authenticated chunk's events
//! through [`Engine::ingest_batch`] with [`Origin::Import`], the path a peer's events
//! take (validation, tombstones of erased content, the unknown-kind quota), and the
//! network task gossips them on. A chunk is stored only after its tag verified; an
//! error stops the import there, with the counts of what the chunks before it brought.

use std::io::{Read, Write};

use aidmesh_protocol::bundle::{BundleError, Opener, Sealer};
use std::collections::{BTreeMap, HashMap, HashSet};

use aidmesh_protocol::{AuthorId, EventId};
use thiserror::Error;

use crate::engine::{Engine, Origin};
use crate::store::StoreError;

/// Most refusal reasons kept in an [`ImportReport`] (the count is always exact).
pub const MAX_REASONS: usize = 10;

/// A bundle could not be written or read.
#[derive(Debug, Error)]
pub enum BundleIoError {
    /// The store holds no community key (a node that was never initialised).
    #[error("this node has no community key yet; start or join a community first")]
    NoKey,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Writing the file failed.
    #[error("cannot write the bundle: {0}")]
    Write(std::io::Error),
    /// Reading the file failed.
    #[error("cannot read the bundle: {0}")]
    Read(std::io::Error),
    /// The file is not a readable bundle of this community.
    #[error(transparent)]
    Format(#[from] BundleError),
}

/// The community key bundles are sealed with (the derived pre-shared key).
pub fn community_key(engine: &Engine) -> Result<[u8; 32], BundleIoError> {
    engine
        .store()
        .meta("psk")?
        .and_then(|k| <[u8; 32]>::try_from(k.as_slice()).ok())
        .ok_or(BundleIoError::NoKey)
}

/// The ids to export, oldest first: every held event, or those stamped at or after
/// `since_ms`.
pub fn export_ids(engine: &Engine, since_ms: Option<u64>) -> Result<Vec<EventId>, StoreError> {
    let since = since_ms.unwrap_or(0);
    Ok(engine
        .store()
        .sync_items()?
        .into_iter()
        .filter(|(ts, _)| ts.millis() >= since)
        .map(|(_, id)| id)
        .collect())
}

/// What an export wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exported {
    /// Events in the bundle.
    pub events: u64,
    /// Size of the file.
    pub bytes: u64,
}

/// Writes the events `ids` (those still held) as a bundle to `out`.
pub fn export(
    engine: &Engine,
    ids: &[EventId],
    out: &mut dyn Write,
) -> Result<Exported, BundleIoError> {
    let key = community_key(engine)?;
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| {
        BundleIoError::Write(std::io::Error::other(format!(
            "no randomness for the bundle's salt: {e}"
        )))
    })?;
    let mut sealer = Sealer::new(&key, engine.now_ms(), salt);
    let mut bytes = 0u64;
    let mut put = |b: &[u8]| -> Result<(), BundleIoError> {
        out.write_all(b).map_err(BundleIoError::Write)?;
        bytes += b.len() as u64;
        Ok(())
    };
    put(sealer.header())?;
    for id in ids {
        // Erased since the ids were listed: left out.
        let Some(event) = engine.store().get(id)? else {
            continue;
        };
        if let Some(chunk) = sealer.add(&event) {
            put(&chunk)?;
        }
    }
    let events = sealer.events();
    put(&sealer.finish())?;
    out.flush().map_err(BundleIoError::Write)?;
    Ok(Exported { events, bytes })
}

/// What an import did, also when it stopped at an error.
#[derive(Debug, Default)]
pub struct ImportReport {
    /// Events stored for the first time.
    pub new: usize,
    /// Events already held, or erased here (they stay erased).
    pub known: usize,
    /// Events that failed validation or were stamped too far ahead of our clock.
    pub refused: usize,
    /// Why, for the first [`MAX_REASONS`] refused.
    pub reasons: Vec<String>,
    /// Chunks read and imported.
    pub chunks: u64,
    /// When the bundle was written (its header), if the header was read.
    pub created_ms: Option<u64>,
    /// Why the import stopped early, if it did.
    pub error: Option<BundleIoError>,
    /// The new events by kind code (what came in: needs, people, hubs...).
    pub new_kinds: BTreeMap<u16, usize>,
    /// The new events by author, i.e. by the hub that made them.
    pub new_authors: HashMap<AuthorId, usize>,
}

impl ImportReport {
    /// "3 new, 1 already known, 0 refused".
    pub fn counts(&self) -> String {
        format!(
            "{} new, {} already known, {} refused",
            self.new, self.known, self.refused
        )
    }

    /// The error with what was imported before it, for people.
    pub fn error_text(&self) -> Option<String> {
        let e = self.error.as_ref()?;
        Some(if self.chunks == 0 {
            format!("{e}")
        } else {
            format!(
                "{e}. Imported from chunks 0 to {}: {}",
                self.chunks - 1,
                self.counts()
            )
        })
    }

    fn take(&mut self, engine: &Engine, events: &[Vec<u8>]) -> Result<(), StoreError> {
        // An event already held (or erased here) is counted as known without checking
        // its signature again: the engine would store nothing and announce nothing for
        // it either way, and re-importing a stick of 100,000 known events then costs a
        // hash per event instead of a signature check.
        let mut fresh = Vec::with_capacity(events.len());
        // What each fresh event is, to say what came in once it is stored.
        let mut about = Vec::with_capacity(events.len());
        for bytes in events {
            match aidmesh_protocol::Event::decode(bytes) {
                Ok(e) if engine.knows(&e.id())? => self.known += 1,
                Ok(e) => {
                    about.push((e.id(), e.kind(), e.author()));
                    fresh.push(bytes.clone());
                }
                Err(_) => fresh.push(bytes.clone()),
            }
        }
        let r = engine.ingest_batch(&fresh, Origin::Import)?;
        // Unknown before, held now: new (an id twice in the chunk counts once).
        if r.new > 0 {
            let mut seen = HashSet::with_capacity(about.len());
            for (id, kind, author) in about {
                if seen.insert(id) && engine.knows(&id)? {
                    *self.new_kinds.entry(kind).or_default() += 1;
                    *self.new_authors.entry(author).or_default() += 1;
                }
            }
        }
        self.new += r.new;
        self.known += r.known;
        self.refused += r.rejected.len() + r.deferred.len();
        let room = MAX_REASONS.saturating_sub(self.reasons.len());
        self.reasons.extend(r.rejected.into_iter().take(room));
        for id in r.deferred {
            if self.reasons.len() < MAX_REASONS {
                self.reasons.push(format!(
                    "event {}: stamped more than 5 minutes ahead of this computer's clock; set the clock, or import again later",
                    id.short()
                ));
            }
        }
        Ok(())
    }
}

/// Reads a bundle from `input` and ingests its events chunk by chunk.
pub fn import(engine: &Engine, input: &mut dyn Read) -> ImportReport {
    let mut report = ImportReport::default();
    if let Err(e) = import_into(engine, input, &mut report) {
        report.error = Some(e);
    }
    report
}

fn import_into(
    engine: &Engine,
    input: &mut dyn Read,
    report: &mut ImportReport,
) -> Result<(), BundleIoError> {
    let key = community_key(engine)?;
    let mut opener = Opener::new(&key);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match input.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(BundleIoError::Read(e)),
        };
        if n == 0 {
            break;
        }
        opener.push(&buf[..n]);
        while let Some(chunk) = opener.next_chunk()? {
            report.created_ms = opener.header().map(|h| h.created_ms).or(report.created_ms);
            report.take(engine, &chunk.events)?;
            report.chunks += 1;
        }
    }
    opener.finish()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use aidmesh_protocol::{Body, Category, Identity, Post, Urgency};

    fn engine(dir: &std::path::Path, seed: u8, psk: [u8; 32]) -> Engine {
        let store = Store::open(dir).unwrap();
        store.set_meta("psk", &psk).unwrap();
        Engine::open(store, Identity::from_seed([seed; 32]), "test".into(), 0).unwrap()
    }

    fn need(title: &str) -> Body {
        Body::Need(Post::new(title, Category::Water, Urgency::Normal))
    }

    #[test]
    fn a_bundle_carries_every_event_to_a_node_that_never_met_the_writer() {
        let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let a = engine(da.path(), 1, [5; 32]);
        for i in 0..50 {
            a.post(need(&format!("water {i}"))).unwrap();
        }
        let mut file = Vec::new();
        let ids = export_ids(&a, None).unwrap();
        let x = export(&a, &ids, &mut file).unwrap();
        assert_eq!(x.events, 50);
        assert_eq!(x.bytes, file.len() as u64);
        let b = engine(db.path(), 2, [5; 32]);
        let r = import(&b, &mut file.as_slice());
        assert!(r.error.is_none(), "{:?}", r.error);
        assert_eq!((r.new, r.known, r.refused), (50, 0, 0));
        // What came in, by kind and by the hub that made it.
        let need = aidmesh_protocol::body::BodyKind::Need.code();
        assert_eq!(r.new_kinds, BTreeMap::from([(need, 50)]));
        assert_eq!(r.new_authors.get(&a.identity().author()), Some(&50));
        assert!(
            r.created_ms.is_some(),
            "a completed import says when it was made"
        );
        assert_eq!(b.digest().unwrap(), a.digest().unwrap());
        // Twice changes nothing.
        let r = import(&b, &mut file.as_slice());
        assert_eq!((r.new, r.known, r.refused), (0, 50, 0));
        assert!(r.new_kinds.is_empty() && r.new_authors.is_empty());
        // Another community's node refuses it whole.
        let dc = tempfile::tempdir().unwrap();
        let c = engine(dc.path(), 3, [6; 32]);
        let r = import(&c, &mut file.as_slice());
        assert!(matches!(
            r.error,
            Some(BundleIoError::Format(BundleError::OtherCommunity))
        ));
        assert_eq!(c.len(), 0);
    }

    #[test]
    fn since_leaves_out_events_stamped_before_it() {
        use aidmesh_protocol::{Event, Timestamp};
        let dir = tempfile::tempdir().unwrap();
        let a = engine(dir.path(), 1, [5; 32]);
        let recent = a.post(need("recent")).unwrap();
        let day = 86_400_000;
        let old = Event::create(
            &Identity::from_seed([2; 32]),
            Timestamp::from_millis(a.now_ms() - 2 * day),
            &need("two days ago"),
        );
        a.ingest_durable(old.bytes(), Origin::Sync).unwrap();
        assert_eq!(export_ids(&a, None).unwrap(), vec![old.id(), recent.id()]);
        let since = Some(a.now_ms() - day);
        assert_eq!(export_ids(&a, since).unwrap(), vec![recent.id()]);
    }
}
