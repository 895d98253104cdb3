//! The cards: the JSON of what the board shows, as every answer and the live stream
//! write it (docs/api.md): items with their hub names and honest delivery counts
//! (`known`, `known_at`, `not_yet`; issue 11), alerts, hubs, the hub roster and the
//! category list. The delivery knowledge itself lives in [`crate::delivery`].

use std::collections::{BTreeMap, HashMap, HashSet};

use aidmesh_protocol::view::Item;
use aidmesh_protocol::{AuthorId, EventId, Timestamp};
use serde_json::{json, Value};

use super::names::HubNames;
use super::AppState;
use crate::delivery::{silent, KnownAt, RosterEntry};

/// The category list, as JSON.
pub(super) fn categories_value() -> Vec<Value> {
    aidmesh_protocol::Category::ALL
        .iter()
        .map(
            |c| json!({ "name": c.name(), "description": c.description(), "cluster": c.cluster() }),
        )
        .collect()
}

/// JSON of one item, as documented in docs/api.md and docs/cli.md.
pub fn item_json(i: &Item) -> Value {
    let state = if i.expired { "expired" } else { i.state.name() };
    let history: Vec<Value> = i
        .history
        .iter()
        .map(|c| {
            json!({
                "id": c.id.to_hex(), "status": c.status.name(), "author": c.author.short(),
                "at": c.at.millis(), "by": c.by(), "note": c.text(), "applied": c.applied,
            })
        })
        .collect();
    let p = &i.post;
    let held = i.holder_change();
    json!({
        "id": i.id.to_hex(),
        "short_id": i.id.short(),
        "kind": i.kind.name(),
        "title": p.title,
        // A need a welfare check raised: its kind of help, so pages word the title in
        // their own language (docs/api.md).
        "welfare_help": aidmesh_protocol::welfare::follow_up_kind(p).map(|c| c.name()),
        "category": p.category.name(),
        "urgency": p.urgency.name(),
        "status": state,
        "author": i.author.short(),
        "created_at": i.created.millis(),
        "arrived_at": i.arrived,
        "place": {
            "label": p.place.label,
            "lat": p.place.coords.map(|c| c.lat()),
            "lon": p.place.coords.map(|c| c.lon()),
        },
        "qty": p.quantity,
        "unit": p.unit,
        "contact": p.contact,
        "details": p.details,
        "expires_at": p.expires_ms,
        "holder": i.holder.map(|h| h.short()),
        "holder_name": held.and_then(|c| c.by()),
        "held_since": held.map(|c| c.at.millis()),
        "history": history,
    })
}

/// [`item_json`] plus the hub names of its author, holder and history.
pub(super) fn named_item_json(item: &Item, names: &HubNames) -> Value {
    let mut out = item_json(item);
    names.name_item(&mut out, item);
    out
}

/// Every announced hub, as JSON (the newest announcement per author and name), at
/// most [`crate::delivery::ROSTER_MAX`]: the most recently announced.
pub(super) fn hubs_value(st: &AppState) -> Vec<Value> {
    hubs_authored(st).into_iter().map(|(_, v)| v).collect()
}

/// [`hubs_value`], each with its author.
pub(super) fn hubs_authored(st: &AppState) -> Vec<(aidmesh_protocol::AuthorId, Value)> {
    let mut hubs = st.engine.with_view(|v| v.hubs());
    if hubs.len() > crate::delivery::ROSTER_MAX {
        // Name order kept for those shown.
        let mut newest: Vec<(aidmesh_protocol::Timestamp, usize)> =
            hubs.iter().enumerate().map(|(n, h)| (h.at, n)).collect();
        newest.sort_unstable_by_key(|x| std::cmp::Reverse(*x));
        let mut keep = vec![false; hubs.len()];
        for (_, n) in newest.iter().take(crate::delivery::ROSTER_MAX) {
            keep[*n] = true;
        }
        let mut n = 0;
        hubs.retain(|_| {
            n += 1;
            keep[n - 1]
        });
    }
    hubs.iter()
        .map(|h| {
            (h.author, json!({
                "id": h.id.to_hex(), "short_id": h.id.short(), "kind": "hub", "name": h.hub.name,
                "place": { "label": h.hub.place.label, "lat": h.hub.place.coords.map(|c| c.lat()), "lon": h.hub.place.coords.map(|c| c.lon()) },
                "services": h.hub.services, "author": h.author.short(), "created_at": h.at.millis(),
            }))
        })
        .collect()
}

/// An alert as JSON; an official alert's text in `lang` where it has that language.
pub(super) fn alert_json(a: &aidmesh_protocol::view::AlertView, lang: Option<&str>) -> Value {
    let mut v = json!({
        "id": a.id.to_hex(), "short_id": a.id.short(), "kind": "alert",
        "severity": a.alert.severity.name(), "headline": a.alert.headline, "details": a.alert.text,
        "area": a.alert.area, "expires_at": a.alert.expires_ms, "author": a.author.short(),
        "created_at": a.at.millis(), "state": a.state.name(),
        "ended": a.ended.as_ref().map(|c| json!({
            "by": c.author.short(), "at": c.at.millis(), "note": c.note,
        })),
    });
    if let Some((o, t)) = a
        .official
        .as_ref()
        .and_then(|o| Some((o, o.text_for(lang.unwrap_or(""))?)))
    {
        v["kind"] = json!("official-alert");
        v["headline"] = json!(t.headline);
        v["details"] = json!(t.text);
        v["area"] = json!(t.area);
        v["official"] = json!({
            "sender": o.sender, "identifier": o.identifier, "urgency": o.urgency.name(),
            "event": t.event, "language": t.language,
            "languages": o.texts.iter().map(|x| json!({
                "language": x.language, "event": x.event, "headline": x.headline,
                "details": x.text, "area": x.area,
            })).collect::<Vec<_>>(),
        });
    }
    v
}

/// Most alerts in one answer (the board's, the stream's, `GET /alerts`): the most
/// severe, then newest.
pub const ALERTS_MAX: usize = 100;

/// The alerts in force (at most [`ALERTS_MAX`]), as JSON; official alerts in `lang`
/// where they have it (every language is in `official.languages` either way).
pub(super) fn alerts_value(st: &AppState, lang: Option<&str>) -> Vec<Value> {
    let now = st.engine.now_ms();
    let roster = Roster::of(st);
    st.engine
        .with_view(|v| v.alerts(now))
        .iter()
        .take(ALERTS_MAX)
        .map(|a| {
            let mut out = alert_json(a, lang);
            add_known_event(st, &roster, &mut out, a.at, &a.id);
            out
        })
        .collect()
}

/// The roster as this request sees it (computed once per answer).
pub(super) struct Roster {
    entries: Vec<RosterEntry>,
    /// The nodes counted in "at X of Y hubs": not gone (retired ones are not on the
    /// roster at all).
    counted: HashSet<AuthorId>,
    names: HubNames,
    now_ms: u64,
}

impl Roster {
    /// The roster now.
    pub(super) fn of(st: &AppState) -> Roster {
        let now_ms = st.engine.wall_ms();
        let (announced, names) = st.engine.with_view(|v| {
            let a: Vec<AuthorId> = v.hubs().iter().map(|h| h.author).collect();
            (a, HubNames::of(v))
        });
        let entries = st.net.delivery.roster(&announced, now_ms);
        let counted = entries.iter().filter(|e| !e.gone).map(|e| e.node).collect();
        Roster {
            entries,
            counted,
            names,
            now_ms,
        }
    }

    /// Every node on the roster.
    pub(super) fn entries(&self) -> &[RosterEntry] {
        &self.entries
    }

    /// The hubs counted: the `of` of every count (gone hubs are not).
    pub(super) fn size(&self) -> usize {
        self.counted.len()
    }

    /// Whether `node` is counted.
    fn counts(&self, node: &AuthorId) -> bool {
        self.counted.contains(node)
    }

    fn name(&self, node: &AuthorId) -> Option<&str> {
        self.names.author(node)
    }
}

/// The counted hubs known to hold `(ts, id)`, this node first (it arrived here at
/// `arrived_ms`).
fn known_at(
    st: &AppState,
    roster: &Roster,
    ts: Timestamp,
    id: &EventId,
    arrived_ms: u64,
) -> Vec<KnownAt> {
    let me = KnownAt {
        node: st.net.delivery.me(),
        at_ms: arrived_ms,
    };
    std::iter::once(me)
        .chain(
            st.net
                .delivery
                .known(ts, id)
                .into_iter()
                .filter(|k| roster.counts(&k.node)),
        )
        .collect()
}

/// `{"at": n, "of": m}` for an event held here: gone and retired hubs are counted in
/// neither.
pub(super) fn count(st: &AppState, roster: &Roster, ts: Timestamp, id: &EventId) -> Value {
    let at = 1 + st
        .net
        .delivery
        .known(ts, id)
        .iter()
        .filter(|k| roster.counts(&k.node))
        .count();
    json!({ "at": at, "of": roster.size().max(at) })
}

/// Adds `known` to an item's JSON.
pub(super) fn add_known(st: &AppState, roster: &Roster, out: &mut Value, item: &Item) {
    out["known"] = count(st, roster, item.created, &item.id);
}

/// An item's JSON with its hub names and `known` count.
pub(super) fn item_value(st: &AppState, roster: &Roster, item: &Item, names: &HubNames) -> Value {
    let mut out = named_item_json(item, names);
    add_known(st, roster, &mut out, item);
    out
}

/// Adds `known` to an alert's JSON.
pub(super) fn add_known_event(
    st: &AppState,
    roster: &Roster,
    out: &mut Value,
    ts: Timestamp,
    id: &EventId,
) {
    out["known"] = count(st, roster, ts, id);
}

/// Adds `known`, `known_at` and `not_yet` to one item's (or alert's) JSON.
pub(super) fn add_known_at(
    st: &AppState,
    out: &mut Value,
    ts: Timestamp,
    id: &EventId,
    arrived_ms: u64,
) {
    let roster = Roster::of(st);
    let known = known_at(st, &roster, ts, id, arrived_ms);
    let list: Vec<Value> = known
        .iter()
        .map(|k| json!({ "node": k.node.short(), "name": roster.name(&k.node), "at_ms": k.at_ms }))
        .collect();
    let not_yet: Vec<Value> = roster
        .entries
        .iter()
        .filter(|e| !e.gone && !known.iter().any(|k| k.node == e.node))
        .map(|e| json!({ "node": e.node.short(), "name": roster.name(&e.node), "last_heard_ms": e.last_heard_ms }))
        .collect();
    out["known"] = json!({ "at": list.len(), "of": roster.size().max(list.len()) });
    out["known_at"] = json!(list);
    out["not_yet"] = json!(not_yet);
}

/// Adds `known` to every check-in of a person's JSON (`checks`), and `known_at` and
/// `not_yet` to the latest (`latest`).
pub(super) fn add_known_checks(
    st: &AppState,
    out: &mut Value,
    checks: &[aidmesh_protocol::view::Check],
) {
    let roster = Roster::of(st);
    for (i, c) in checks.iter().enumerate() {
        if let Some(v) = out["checks"].get_mut(i) {
            if v["id"] == c.id.to_hex() {
                add_known_event(st, &roster, v, c.at, &c.id);
            }
        }
        if out["latest"]["id"] == c.id.to_hex() {
            add_known_at(st, &mut out["latest"], c.at, &c.id, c.at.millis());
        }
    }
}

/// For `/status` (issue 29): how many hubs are counted in "at X of Y hubs", and the
/// hubs not seen for days (`node`, `name`, `not_seen_days`), which are not.
pub(super) fn hubs_status(st: &AppState) -> (usize, Vec<Value>) {
    let roster = Roster::of(st);
    let gone = roster
        .entries
        .iter()
        .filter(|e| e.gone)
        .map(|e| {
            json!({
                "node": e.node.short(), "name": roster.name(&e.node),
                "not_seen_days": e.last_heard_ms.map(|t| roster.now_ms.saturating_sub(t) / 86_400_000),
            })
        })
        .collect();
    (roster.size(), gone)
}

/// The roster as JSON: one entry per node heard of, with its newest hub announcement's
/// fields (as `GET /hubs` had them) where it announced one.
pub(super) fn roster_value(st: &AppState) -> Vec<Value> {
    let roster = Roster::of(st);
    let mut announced: HashMap<AuthorId, Value> = HashMap::new();
    let mut newest: BTreeMap<AuthorId, u64> = BTreeMap::new();
    // One pass over the announcements (not one look-up in them per roster entry).
    for (author, h) in hubs_authored(st) {
        let at = h["created_at"].as_u64().unwrap_or(0);
        if newest.get(&author).is_none_or(|t| at >= *t) {
            newest.insert(author, at);
            announced.insert(author, h);
        }
    }
    roster
        .entries
        .iter()
        .map(|e| {
            let mut v = announced.remove(&e.node).unwrap_or_else(|| json!({}));
            v["node"] = json!(e.node.short());
            v["name"] = json!(roster.name(&e.node));
            v["me"] = json!(e.me);
            v["last_heard_ms"] = json!(e.last_heard_ms);
            v["via"] = json!(e.via.map(|x| x.name()));
            v["behind"] = json!(e.behind);
            v["reachable"] = json!(e.reachable);
            v["silent"] = json!(silent(e, roster.now_ms));
            // Issue 29: "not seen for N days" instead of counting it.
            v["gone"] = json!(e.gone);
            v["not_seen_days"] = json!(e
                .last_heard_ms
                .filter(|_| e.gone)
                .map(|t| roster.now_ms.saturating_sub(t) / 86_400_000));
            v
        })
        .collect()
}
