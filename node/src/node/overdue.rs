//! The node's welfare watch: logs people who became overdue (by id only) and erases
//! welfare records past retention, on timers, until the node stops.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aidmesh_protocol::welfare::{assess_all, Standing};
use aidmesh_protocol::EventId;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use crate::engine::Engine;

/// How often the node looks for people who became overdue, to log it.
const OVERDUE_CHECK: Duration = Duration::from_secs(60);

/// Logs each person whose standing became worse than "ok" since the last look (by id
/// only: names stay out of log files).
fn log_new_overdue(engine: &Engine, last: &mut HashMap<EventId, Standing>) {
    let now = engine.now_ms();
    let people = engine.with_view(|v| v.people());
    let mut current = HashMap::new();
    for w in assess_all(&people, now) {
        let was = last.get(&w.person.id).copied().unwrap_or(Standing::Ok);
        if w.standing < Standing::NeverVisited && w.standing != was {
            warn!(
                person = %w.person.id.short(),
                standing = w.standing.name(),
                overdue_min = w.overdue_ms / 60_000,
                "welfare: someone needs a visit (aidmesh welfare overdue)"
            );
        }
        current.insert(w.person.id, w.standing);
    }
    *last = current;
}

/// Starts the task that logs new overdue people every minute and, every `sweep_every`,
/// erases welfare records whose last check-in is older than `retention`; it ends when
/// `stop` changes.
pub(super) fn spawn(
    engine: Arc<Engine>,
    retention: Duration,
    sweep_every: Duration,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let retention = retention.as_millis() as u64;
    tokio::spawn(async move {
        let mut watch_tick = tokio::time::interval(OVERDUE_CHECK);
        let mut sweep_tick = tokio::time::interval(sweep_every);
        let mut standing: HashMap<EventId, Standing> = HashMap::new();
        loop {
            tokio::select! {
                _ = watch_tick.tick() => log_new_overdue(&engine, &mut standing),
                _ = sweep_tick.tick() => {
                    let engine = engine.clone();
                    let r = tokio::task::spawn_blocking(move || engine.expire_welfare(retention)).await;
                    match r {
                        Ok(Ok(erased)) => debug!(erased, "retention sweep done"),
                        Ok(Err(e)) => warn!(error = %e, "could not erase expired welfare records"),
                        Err(_) => {}
                    }
                }
                _ = stop.changed() => break,
            }
        }
    })
}
