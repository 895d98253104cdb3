//! The lists of needs and offers (`GET /needs`, `/offers`, `/items`, the board's and
//! the printed page's): filtered, in list order (most urgent, then newest), a page at
//! a time, from the view's item heads folded and sorted once per change of the store.

use std::sync::{Arc, Mutex};

use aidmesh_protocol::body::BodyKind;
use aidmesh_protocol::view::{Item, ItemHead};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};

use super::cards::{item_value, Roster};
use super::error::{ApiError, ApiResult};
use super::names::HubNames;
use super::AppState;
use crate::doors::input::{ListKey, ListPage, ListQuery, ListStatus};

/// A list as its answer, made on the blocking pool: a word search reads posts for
/// up to seconds, and on one of the runtime's few workers it held up the tasks queued
/// behind it (at 100,000 items a need posted during a search waited for the whole
/// search, though the search no longer held the engine's lock).
pub(super) async fn list(st: &AppState, kind: Option<BodyKind>, q: ListQuery) -> ApiResult {
    let st = st.clone();
    super::error::blocking(move || Ok(Json(list_rows(&st, kind, q)?.value(&st)).into_response()))
        .await?
}

/// [`list_value`] of the needs and of the offers, made on the blocking pool (see
/// [`list`]).
pub(super) async fn needs_and_offers(
    st: &AppState,
    q: ListQuery,
) -> Result<(Value, Value), ApiError> {
    let st = st.clone();
    super::error::blocking(move || {
        Ok((
            list_value(&st, Some(BodyKind::Need), q.clone())?,
            list_value(&st, Some(BodyKind::Offer), q)?,
        ))
    })
    .await?
}

/// The items of a list (or of one page of it), before they become JSON.
pub(super) struct ListRows {
    items: Vec<Item>,
    names: HubNames,
    page: Option<ListPage>,
    /// Items in the whole list; `None` when a search of a long list did not look at
    /// all of it ([`SEARCH_READS`]).
    total: Option<usize>,
    next: Option<String>,
    /// A search of a long list: how many items, from the list's start, this answer
    /// looked through, and of how many.
    searched: Option<(usize, usize)>,
}

impl ListRows {
    /// The list as JSON (see [`list_value`]).
    fn value(&self, st: &AppState) -> Value {
        let roster = Roster::of(st);
        let card = |i: &Item| item_value(st, &roster, i, &self.names);
        let out: Vec<Value> = self.items.iter().map(card).collect();
        let limit = match &self.page {
            Some(page) => page.limit,
            // Unpaged and all of it fits: as it always was.
            None if self.next.is_none() => return json!({ "items": out }),
            None => UNPAGED_MAX,
        };
        let mut v = json!({
            "items": out, "total": self.total, "limit": limit, "next_cursor": self.next,
        });
        if let Some((through, of)) = self.searched {
            v["searched"] = json!({ "through": through, "of": of });
        }
        v
    }
}

/// Most items in an answer that asked for no page (neither `limit` nor `cursor`):
/// beyond, it is the first page of this size, with `total` and `next_cursor` (issue
/// 28: the whole list at a million items was 55 MB, and a Pi's memory).
pub const UNPAGED_MAX: usize = crate::doors::input::MAX_LIST_LIMIT;

/// Most posts one answer reads for a word search (issue 28: a search read every
/// candidate's post, 13 s at a million items, and the node kept the pages it read).
/// A list of more candidates is searched a part at a time, each answer saying how far
/// it looked (`searched`) and without a `total`. About 0.1 s on a laptop, 1 s on a Pi.
/// `AIDMESH_SEARCH_READS` sets another (for tests of long lists without posting ten
/// thousand items).
pub const SEARCH_READS: usize = 10_000;

/// [`SEARCH_READS`], or `AIDMESH_SEARCH_READS` when set to a whole number above 0.
fn search_reads() -> usize {
    static READS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *READS.get_or_init(|| {
        std::env::var("AIDMESH_SEARCH_READS")
            .ok()
            .and_then(|n| n.parse().ok())
            .filter(|&n| n > 0)
            .unwrap_or(SEARCH_READS)
    })
}

/// A list (or one page of it) as JSON: what `GET /needs`, `/offers` and `/items`
/// answer, and the lists in the page's `GET /board`.
pub(super) fn list_value(
    st: &AppState,
    kind: Option<BodyKind>,
    q: ListQuery,
) -> Result<Value, ApiError> {
    Ok(list_rows(st, kind, q)?.value(st))
}

/// The items [`list_value`] shows: filtered, sorted, one page if asked.
fn list_rows(st: &AppState, kind: Option<BodyKind>, q: ListQuery) -> Result<ListRows, ApiError> {
    let category = q.category()?;
    let status = q.status()?;
    let words = q.search()?;
    let urgency = q.urgency()?;
    let hub = q.hub()?;
    let page = q.page()?;
    let bounded = page.unwrap_or(ListPage {
        limit: UNPAGED_MAX,
        after: None,
    });
    let now = st.engine.now_ms();
    let all = sorted_heads(st, now);
    // Filter on the view's index, sorted once per change, under the engine's lock
    // (the hub filter reads the view's authors and names): no post is read there.
    let (candidates, names) = st.engine.with_view(|v| {
        let names = HubNames::of(v);
        let keep = |h: &ItemHead| {
            kind.is_none_or(|k| h.kind() == k)
                && category.is_none_or(|c| h.category == c)
                && urgency.is_none_or(|u| h.urgency == u)
                && match status {
                    ListStatus::Active => h.state.is_active() && !h.expired(),
                    ListStatus::All => true,
                    ListStatus::Expired => h.expired(),
                    ListStatus::Is(s) => !h.expired() && h.state.name() == s,
                }
                && hub.as_ref().is_none_or(|hub| {
                    let author = v.author(h.author());
                    author.short() == *hub
                        || names
                            .author(&author)
                            .is_some_and(|n| n.to_lowercase() == *hub)
                })
        };
        // Positions in `all` (4 bytes an item, for this answer only).
        let candidates: Vec<u32> = (0..all.len() as u32)
            .filter(|&i| keep(&all[i as usize]))
            .collect();
        (candidates, names)
    });
    // With a search, an item is in the list if its post has every word: each
    // candidate's post is read from the store, one at a time, outside the engine's
    // lock (seconds at 100,000 items, which ingest and every other answer waited for
    // while the search held it).
    let in_list = |i: u32| {
        let h = &all[i as usize];
        words.is_empty()
            || st
                .engine
                .post_at(h.created, &h.id)
                .is_some_and(|p| matches_words(&p, &words))
    };
    let start = bounded
        .after
        .map_or(0, |after| all.partition_point(|h| head_key(h) <= after));
    let split = candidates.partition_point(|&i| (i as usize) < start);
    let mut on_page: Vec<u32> = Vec::new();
    let reads = search_reads();
    let (total, more, searched) = if words.is_empty() || candidates.len() <= reads {
        // Every candidate is looked at: the total is exact.
        let mut total = if words.is_empty() {
            split
        } else {
            candidates[..split].iter().filter(|&&i| in_list(i)).count()
        };
        let mut more = false;
        for &i in &candidates[split..] {
            if !in_list(i) {
                continue;
            }
            total += 1;
            if on_page.len() >= bounded.limit {
                // Past the page: only counted.
                more = true;
                continue;
            }
            on_page.push(i);
        }
        let more = more.then(|| on_page.last().copied()).flatten();
        (Some(total), more, None)
    } else {
        // A search of a long list reads at most `reads` posts from the cursor
        // on, in list order (most urgent and newest first), and says how far it
        // looked: the rest is searched by the next page's request.
        let mut until = None; // the candidate the next page starts after
        for (read, &i) in candidates[split..].iter().enumerate() {
            if read == reads {
                // Every match up to the last post read is on the page.
                until = Some(candidates[split + read - 1]);
                break;
            }
            if !in_list(i) {
                continue;
            }
            if on_page.len() >= bounded.limit {
                // A match past a full page: the next starts after this one's last card.
                until = on_page.last().copied();
                break;
            }
            on_page.push(i);
        }
        // How many candidates, from the list's start, this answer looked through.
        let through = until.map_or(candidates.len(), |u| {
            candidates.partition_point(|&i| i <= u)
        });
        (None, until, Some((through, candidates.len())))
    };
    // The page's items, folded with their posts, under the lock again (an item
    // erased meanwhile is left out).
    let shown: Vec<Item> = st.engine.with_view(|v| {
        on_page
            .iter()
            .filter_map(|&i| v.item(&all[i as usize].id, now))
            .collect()
    });
    let next = more.map(|i| head_key(&all[i as usize]).to_string());
    Ok(ListRows {
        items: shown,
        names,
        page,
        total,
        next,
        searched,
    })
}

/// The list order of an item: most urgent first, then newest; the id settles ties
/// so that pages never overlap.
fn head_key(h: &ItemHead) -> ListKey {
    ListKey::new(h.urgency, h.created.0, h.id)
}

/// Every need and offer's head in list order ([`head_key`]), kept from one change of
/// the store to the next: after a change, only the items it reached are folded again
/// and moved into place ([`aidmesh_protocol::View::refold_heads`]; issue 28: a fold
/// of every item was 302 ms at a million, under the engine's lock). Folded in full at
/// the first answer, after a change that may reach any item (a redaction, a
/// check-in), and when an item it holds expires (50 phones loading the board at once
/// asked for 100 full folds before any of this was kept). One fold at a time.
pub(super) fn sorted_heads(st: &AppState, now: u64) -> Arc<Vec<ItemHead>> {
    /// The engine (by address) and its version.
    type Key = (usize, (u64, u64));
    /// The heads for a key, good until a time (ms).
    type Kept = (Key, u64, Arc<Vec<ItemHead>>);
    static KEPT: Mutex<Option<Kept>> = Mutex::new(None);
    static MAKING: Mutex<()> = Mutex::new(());
    let engine = Arc::as_ptr(&st.engine) as usize;
    let kept = || {
        let key = (engine, st.engine.version());
        KEPT.lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .filter(|(k, until, _)| *k == key && now <= *until)
            .map(|(_, _, v)| v.clone())
    };
    if let Some(v) = kept() {
        return v;
    }
    // One fold at a time: 50 phones arriving after a change wait for the one fold
    // rather than make 50 (each the size of the board).
    let _making = MAKING.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(v) = kept() {
        return v;
    }
    // The heads of an earlier version of this engine (this start), none expired since.
    let boot = st.engine.version().0;
    let earlier = KEPT
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
        .filter(|((e, (b, _)), until, _)| *e == engine && *b == boot && now <= *until)
        .map(|((_, (_, generation)), until, heads)| {
            // Changed in place unless an answer still reads them.
            (generation, until, Arc::unwrap_or_clone(heads))
        });
    let order = |u, t: aidmesh_protocol::Timestamp, id| ListKey::new(u, t.0, id);
    let (version, refolded) = st.engine.with_view_changes(|v, version, changes| {
        if let Some((generation, until, mut heads)) = earlier {
            if let Some(touched) = changes.since(generation) {
                v.refold_heads(&mut heads, &touched, now, order);
                let sooner = touched.iter().filter_map(|id| v.head_until(id, now));
                return (version, Ok((heads, sooner.fold(until, u64::min))));
            }
        }
        (version, Err(v.heads_until(now)))
    });
    // A full fold is sorted outside the engine's lock.
    let (heads, until) = refolded.unwrap_or_else(|(mut heads, until)| {
        heads.sort_unstable_by_key(head_key);
        (heads, until)
    });
    let heads = Arc::new(heads);
    *KEPT.lock().unwrap_or_else(|p| p.into_inner()) =
        Some(((engine, version), until, heads.clone()));
    heads
}

/// Whether every search word appears in the title, details, place, contact or unit.
fn matches_words(p: &aidmesh_protocol::body::Post, words: &[String]) -> bool {
    let text = [
        p.title.as_str(),
        &p.details,
        &p.place.label,
        &p.contact,
        &p.unit,
    ]
    .join("\n")
    .to_lowercase();
    words.iter().all(|w| text.contains(w.as_str()))
}
