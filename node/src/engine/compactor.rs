//! The background thread that, after an erasure, rebuilds the view (so no erased
//! text stays in memory) and compacts the store (so the bytes leave the files).

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use tracing::{info, warn};

use super::{load_view, release_freed_memory, Engine, State};
use crate::store::{Store, StoreError};

/// How long the background compaction waits after an erasure for more erasures to
/// share the rewrite.
pub const COMPACT_COALESCE: Duration = Duration::from_millis(500);
/// Least time between the start of one background compaction and the next.
pub const COMPACT_MIN_GAP: Duration = Duration::from_secs(5);
/// Wait before retrying a compaction that failed.
const COMPACT_RETRY: Duration = Duration::from_secs(30);

#[derive(Default)]
struct CompactFlags {
    requested: bool,
    /// Rebuild the view too (content was erased by a redaction).
    rebuild: bool,
    stop: bool,
}

/// The background thread that, after an erasure, rebuilds the view (so no erased
/// text stays in memory) and compacts the store.
pub(super) struct Compactor {
    flags: Arc<(Mutex<CompactFlags>, Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Compactor {
    pub(super) fn start(store: Arc<Store>, state: Arc<Mutex<State>>) -> Compactor {
        let flags: Arc<(Mutex<CompactFlags>, Condvar)> = Arc::default();
        let shared = flags.clone();
        let thread = std::thread::Builder::new()
            .name("compactor".into())
            .spawn(move || {
                lower_this_threads_priority();
                compact_loop(&store, &state, &shared)
            })
            .ok();
        if thread.is_none() {
            warn!(
                "could not start the compaction thread; erased bytes are removed at the next start"
            );
        }
        Compactor { flags, thread }
    }

    /// Whether a compaction or a rebuild of the view is asked for and not yet done.
    pub(super) fn owes_work(&self) -> bool {
        let f = self.flags.0.lock().unwrap_or_else(|p| p.into_inner());
        f.requested || f.rebuild
    }

    pub(super) fn request(&self, rebuild: bool) {
        let (m, cv) = &*self.flags;
        let mut f = m.lock().unwrap_or_else(|p| p.into_inner());
        f.requested = true;
        f.rebuild |= rebuild;
        cv.notify_all();
    }
}

/// Nice 10 for the calling thread (Linux keeps a nice value per thread): the
/// compaction's copy of a big database then yields a busy core to gossip, posts and
/// the API instead of taking an equal share of it. Best effort.
fn lower_this_threads_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: plain syscalls on the calling thread, with no pointers.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        let _ = libc::setpriority(libc::PRIO_PROCESS, tid, 10);
    }
}

impl Drop for Compactor {
    fn drop(&mut self) {
        let (m, cv) = &*self.flags;
        m.lock().unwrap_or_else(|p| p.into_inner()).stop = true;
        cv.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Waits on `flags` until `deadline` or stop; returns false on stop.
fn sleep_until(flags: &(Mutex<CompactFlags>, Condvar), deadline: Instant) -> bool {
    let (m, cv) = flags;
    let mut f = m.lock().unwrap_or_else(|p| p.into_inner());
    while !f.stop {
        let now = Instant::now();
        if now >= deadline {
            return true;
        }
        f = cv
            .wait_timeout(f, deadline - now)
            .unwrap_or_else(|p| p.into_inner())
            .0;
    }
    false
}

/// Rebuilds the view from the store without holding the engine lock for the long
/// part: events stored meanwhile are logged by `ingest` and filed into the new view
/// (filing is idempotent and order-free, so one seen twice is harmless).
fn rebuild_view(store: &Arc<Store>, state: &Mutex<State>) -> Result<(), StoreError> {
    let lock = || state.lock().unwrap_or_else(|p| p.into_inner());
    lock().rebuild_log = Some(Vec::new());
    let loaded = load_view(store, 1);
    let mut st = lock();
    let log = st.rebuild_log.take().unwrap_or_default();
    let mut view = loaded?.view;
    for (event, body) in &log {
        view.insert(event, body);
        // Its arrival may have been written after `load_view` read them.
        if let Some(at) = store.arrival(&event.id())? {
            view.note_arrival(event.id(), at);
        }
    }
    // The lists keep heads folded from the old view: the same numbers, the same authors.
    view.number_authors_as(&st.view);
    // Freed after the lock is let go: dropping a view of 100,000 items under it held
    // up every peer's ingest and every page for milliseconds.
    let old = std::mem::replace(&mut st.view, view);
    drop(st);
    drop(old);
    release_freed_memory();
    Ok(())
}

fn compact_loop(store: &Arc<Store>, state: &Mutex<State>, flags: &(Mutex<CompactFlags>, Condvar)) {
    let (m, cv) = flags;
    loop {
        {
            let mut f = m.lock().unwrap_or_else(|p| p.into_inner());
            while !f.requested && !f.stop {
                f = cv.wait(f).unwrap_or_else(|p| p.into_inner());
            }
            if f.stop {
                return;
            }
        }
        // Let a burst of forgets gather, then take them all in one rewrite.
        if !sleep_until(flags, Instant::now() + COMPACT_COALESCE) {
            return;
        }
        let rebuild = {
            let mut f = m.lock().unwrap_or_else(|p| p.into_inner());
            f.requested = false;
            std::mem::take(&mut f.rebuild)
        };
        let started = Instant::now();
        if rebuild {
            if let Err(e) = rebuild_view(store, state) {
                warn!(error = %e, "could not rebuild the board after an erasure; retrying");
                let mut f = m.lock().unwrap_or_else(|p| p.into_inner());
                f.rebuild = true;
                f.requested = true;
            }
        }
        let next = match store.compact() {
            Ok(()) => {
                info!(
                    ms = started.elapsed().as_millis() as u64,
                    "database compacted: erased content is gone from the files"
                );
                started + COMPACT_MIN_GAP
            }
            Err(e) => {
                warn!(error = %e, "compaction failed; the old database stays in use and it is retried");
                m.lock().unwrap_or_else(|p| p.into_inner()).requested = true;
                started + COMPACT_RETRY
            }
        };
        if !sleep_until(flags, next) {
            return;
        }
    }
}

impl Engine {
    /// Runs an owed compaction now, on this thread, instead of waiting for the
    /// background one. Returns whether one was owed.
    pub fn compact_now(&self) -> Result<bool, StoreError> {
        if !self.store.compaction_pending()? {
            return Ok(false);
        }
        self.store.compact()?;
        Ok(true)
    }
}
