//! Human output: aligned tables, relative times ("12 min ago"), colour only when
//! printing to a terminal (and `NO_COLOR` is not set). `--json` output lives in
//! `main.rs` and is documented in docs/cli.md.

use std::io::IsTerminal;
use std::time::{SystemTime, UNIX_EPOCH};

use comfy_table::{presets, ContentArrangement, Table};
use serde_json::Value;

/// Whether to colour stdout.
pub fn colour() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

fn paint(code: &str, s: &str) -> String {
    if colour() {
        format!("\x1b[{code}m{s}\x1b[0m")
    } else {
        s.to_string()
    }
}

/// Red and bold, for what must not be missed.
pub fn alarm(s: &str) -> String {
    paint("1;31", s)
}

/// Urgency, coloured by how urgent.
pub fn urgency(u: &str) -> String {
    match u {
        "life-threatening" => paint("1;31", "LIFE-THREATENING"),
        "high" => paint("33", "high"),
        other => other.to_string(),
    }
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// "just now", "12 min ago", "3 h ago", "2 days ago", or "in 5 h" for the future.
pub fn ago(ms: u64, now: u64) -> String {
    let (delta, future) = if ms > now {
        (ms - now, true)
    } else {
        (now - ms, false)
    };
    let s = delta / 1000;
    let text = match s {
        0..=44 => return "just now".into(),
        45..=3569 => format!("{} min", (s + 30) / 60),
        3570..=84_599 => format!("{} h", (s + 1800) / 3600),
        _ => match (s + 43_200) / 86_400 {
            1 => "1 day".to_string(),
            d => format!("{d} days"),
        },
    };
    if future {
        format!("in {text}")
    } else {
        format!("{text} ago")
    }
}

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_style(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header.iter().map(|h| h.to_uppercase()));
    t
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or("")
}

/// "20 litres", "40" (no unit), or `None` when the item gives no quantity.
fn quantity(i: &Value) -> Option<String> {
    let q = i["qty"].as_u64()?;
    Some(format!("{q} {}", s(i, "unit")).trim_end().to_string())
}

/// When an item was posted, as far as this hub knows: its stamp, or, for one stamped
/// before this program was built (an older node's clock in 1970), when it arrived here.
fn posted_ms(i: &Value) -> u64 {
    i["arrived_at"]
        .as_u64()
        .or_else(|| i["created_at"].as_u64())
        .unwrap_or(0)
}

/// A table of needs and offers.
pub fn items(items: &[Value]) -> String {
    let now = now_ms();
    let mut t = table(&[
        "id", "kind", "urgency", "status", "category", "qty", "title", "where", "posted", "known",
    ]);
    for i in items {
        let qty = quantity(i).unwrap_or_default();
        t.add_row(vec![
            s(i, "short_id").to_string(),
            s(i, "kind").to_string(),
            urgency(s(i, "urgency")),
            status_with_holder(i),
            s(i, "category").to_string(),
            qty,
            s(i, "title").to_string(),
            s(&i["place"], "label").to_string(),
            ago(posted_ms(i), now),
            known_count(i),
        ]);
    }
    t.to_string()
}

/// "3/4": how many hubs are known to hold an item, of all the hubs heard of (issue 11);
/// empty when the node does not say.
pub fn known_count(i: &Value) -> String {
    match (i["known"]["at"].as_u64(), i["known"]["of"].as_u64()) {
        (Some(at), Some(of)) => format!("{at}/{of}"),
        _ => String::new(),
    }
}

/// A hub as people call it: its announced name, else its node's short id.
fn hub_name(h: &Value) -> &str {
    h["name"].as_str().unwrap_or(s(h, "node"))
}

/// "known at 3 of 4 hubs (Elm St, Oak Rd, Quay St; not yet: Mill Lane, last heard 2 h
/// ago)": the hubs that said they hold the item, and those not (yet) known to.
/// `None` when the node gave no `known_at` list.
pub fn known_at(i: &Value, now: u64) -> Option<String> {
    let at = i["known_at"].as_array()?;
    let not_yet: &[Value] = i["not_yet"].as_array().map_or(&[], Vec::as_slice);
    let of = i["known"]["of"]
        .as_u64()
        .unwrap_or((at.len() + not_yet.len()) as u64);
    let names: Vec<&str> = at.iter().map(hub_name).collect();
    let missing: Vec<String> = not_yet
        .iter()
        .map(|h| match h["last_heard_ms"].as_u64() {
            Some(ms) => format!("{}, last heard {}", hub_name(h), ago(ms, now)),
            None => format!("{}, never heard from directly", hub_name(h)),
        })
        .collect();
    let mut text = format!(
        "known at {} of {of} hub{} ({}",
        at.len(),
        if of == 1 { "" } else { "s" },
        names.join(", ")
    );
    if !missing.is_empty() {
        text.push_str("; not yet: ");
        text.push_str(&missing.join("; "));
    }
    text.push(')');
    Some(text)
}

/// The hub roster (`aidmesh hubs`): every hub heard of, when, how far behind it was,
/// and whether it is connected now; a hub silent for too long is flagged.
pub fn roster(hubs: &[Value]) -> String {
    let now = now_ms();
    let mut t = table(&["hub", "node", "last heard", "behind", "now"]);
    for h in hubs {
        let me = h["me"].as_bool() == Some(true);
        let heard = match (h["last_heard_ms"].as_u64(), h["via"].as_str()) {
            _ if me => String::new(),
            (Some(ms), Some(via)) => format!("{} ({via})", ago(ms, now)),
            (Some(ms), None) => ago(ms, now),
            (None, _) => "never".to_string(),
        };
        let state = if me {
            "this hub".to_string()
        } else if h["reachable"].as_bool() == Some(true) {
            "connected".to_string()
        } else if let Some(gone) = not_seen(h) {
            gone
        } else if h["silent"].as_bool() == Some(true) {
            alarm("SILENT")
        } else {
            "not connected".to_string()
        };
        t.add_row(vec![
            hub_name(h).to_string(),
            s(h, "node").to_string(),
            heard,
            h["behind"]
                .as_u64()
                .filter(|_| !me)
                .map_or(String::new(), |b| format!("{b} events")),
            state,
        ]);
    }
    format!("{t}\n")
}

/// "not seen for N days" for a roster entry the node calls gone (issue 29: not heard
/// from for 3 days; not counted in "at X of Y hubs"), else `None`.
pub fn not_seen(h: &Value) -> Option<String> {
    if h["gone"].as_bool() != Some(true) {
        return None;
    }
    Some(match h["not_seen_days"].as_u64() {
        Some(1) => "not seen for 1 day".to_string(),
        Some(n) => format!("not seen for {n} days"),
        None => "not seen for days".to_string(),
    })
}

/// The `unreached` lines of `status`: urgent needs posted here that no other hub is
/// known to hold yet.
pub fn unreached(list: &[Value], now: u64) -> Vec<String> {
    list.iter()
        .map(|n| {
            format!(
                "{} {} {} (posted {}): {}",
                s(n, "short_id"),
                urgency(s(n, "urgency")),
                s(n, "text"),
                ago(n["since_ms"].as_u64().unwrap_or(0), now),
                alarm("not reached any other hub yet: carry it or link the networks")
            )
        })
        .collect()
}

/// The line after the `unreached` lines of `status` when the node named only the
/// first few of them (`GET /api/v1/unreached` pages through all).
pub fn unreached_more(shown: usize, total: u64) -> Option<String> {
    let more = total.saturating_sub(shown as u64);
    (more > 0).then(|| {
        alarm(&format!(
            "and {more} more urgent need{} not reached any other hub yet (GET /api/v1/unreached lists them)",
            if more == 1 { "" } else { "s" }
        ))
    })
}

/// "claimed (Ana)" when the holder gave a name, else the plain status.
fn status_with_holder(i: &Value) -> String {
    match i["holder_name"].as_str() {
        Some(n) => format!("{} ({n})", s(i, "status")),
        None => s(i, "status").to_string(),
    }
}

/// One item with its history.
pub fn item(i: &Value) -> String {
    let now = now_ms();
    let mut out = format!(
        "{} {}  [{}]  {}\n  {}\n",
        s(i, "kind"),
        s(i, "short_id"),
        s(i, "status"),
        urgency(s(i, "urgency")),
        s(i, "title")
    );
    let mut line = |k: &str, v: String| {
        if !v.is_empty() {
            out.push_str(&format!("  {k:<9}{v}\n"));
        }
    };
    line("category", s(i, "category").to_string());
    if let Some(q) = quantity(i) {
        line("quantity", q);
    }
    let place = &i["place"];
    let coords = match (place["lat"].as_f64(), place["lon"].as_f64()) {
        (Some(a), Some(b)) => format!(" ({a:.5}, {b:.5})"),
        _ => String::new(),
    };
    line("where", format!("{}{coords}", s(place, "label")));
    line("contact", s(i, "contact").to_string());
    line("details", s(i, "details").to_string());
    line(
        "posted",
        format!(
            "{} by {}{}",
            ago(posted_ms(i), now),
            i["author_hub"].as_str().unwrap_or(s(i, "author")),
            if i["arrived_at"].is_u64() {
                " (when it arrived here: the clock that stamped it was before this program was built)"
            } else {
                ""
            }
        ),
    );
    if let Some(e) = i["expires_at"].as_u64() {
        line("expires", ago(e, now));
    }

    if let Some(since) = i["held_since"].as_u64() {
        let node = match i["holder_hub"].as_str() {
            Some(hub) => hub.to_string(),
            None => format!("node {}", s(i, "holder")),
        };
        let who = match i["holder_name"].as_str() {
            Some(name) => format!("{name} ({node})"),
            None => node,
        };
        line("held by", format!("{who}, since {}", ago(since, now)));
    }
    line("id", s(i, "id").to_string());
    if let Some(k) = known_at(i, now) {
        out.push_str(&format!("  {k}\n"));
    }
    for h in i["history"].as_array().into_iter().flatten() {
        let note = h["note"]
            .as_str()
            .filter(|n| !n.is_empty())
            .map(|n| format!(": {n}"))
            .unwrap_or_default();
        let ignored = if h["applied"].as_bool() == Some(false) {
            " (not applied)"
        } else {
            ""
        };
        let node = h["hub"].as_str().unwrap_or(s(h, "author"));
        let by = match h["by"].as_str() {
            Some(name) => format!("{name} ({node})"),
            None => node.to_string(),
        };
        out.push_str(&format!(
            "  - {} by {by}, {}{ignored}{note}\n",
            s(h, "status"),
            ago(h["at"].as_u64().unwrap_or(0), now)
        ));
    }
    out
}

/// The match report: each open need, most urgent first, with candidate offers.
pub fn matches(ms: &[Value]) -> String {
    let mut out = String::new();
    for m in ms {
        let n = &m["need"];
        out.push_str(&format!(
            "{}  {}  {}  ({})\n",
            s(n, "short_id"),
            urgency(s(n, "urgency")),
            s(n, "title"),
            s(n, "category")
        ));
        let offers = m["offers"].as_array().cloned().unwrap_or_default();
        // The API lists the best few; `offers_total` says how many could meet it.
        let total = m["offers_total"]
            .as_u64()
            .map_or(offers.len(), |t| t as usize);
        if total == 0 {
            out.push_str(&format!("    {}\n", alarm("no offer matches yet")));
        }
        for o in &offers {
            let dist = o["distance_m"]
                .as_f64()
                .map(|d| {
                    if d < 1000.0 {
                        format!(", {d:.0} m away")
                    } else {
                        format!(", {:.1} km away", d / 1000.0)
                    }
                })
                .unwrap_or_default();
            let mut qty = quantity(o).map(|q| format!(", {q}")).unwrap_or_default();
            // More urgent needs were promised part of it: say what is left for this one.
            if let (Some(left), Some(q)) = (o["left"].as_u64(), o["qty"].as_u64()) {
                if left < q {
                    qty.push_str(&format!(" ({left} left after more urgent needs)"));
                }
            }
            out.push_str(&format!(
                "    <- {}  {}{qty}{dist}\n",
                s(o, "short_id"),
                s(o, "title")
            ));
        }
        if total > offers.len() {
            out.push_str(&format!(
                "    ... and {} more (aidmesh match --per-need N shows up to 20)\n",
                total - offers.len()
            ));
        }
    }
    out
}

/// People to check on, most urgent first.
pub fn people(list: &[Value]) -> String {
    let now = now_ms();
    let mut t = table(&[
        "id",
        "standing",
        "name",
        "where",
        "risks",
        "last check",
        "due",
    ]);
    for p in list {
        let standing = match s(p, "standing") {
            "needs-help" => alarm("NEEDS HELP"),
            "no-answer" => alarm("NO ANSWER"),
            "overdue" => paint("33", "overdue"),
            "never-visited" => "never visited".to_string(),
            other => other.to_string(),
        };
        let latest = &p["latest"];
        let last = if latest.is_null() {
            "never".to_string()
        } else {
            let detail = latest["detail"]
                .as_str()
                .map(|d| format!(" ({d})"))
                .unwrap_or_default();
            format!(
                "{}{detail}, {}",
                s(latest, "outcome"),
                ago(latest["at"].as_u64().unwrap_or(0), now)
            )
        };
        let risks: Vec<&str> = p["risks"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        t.add_row(vec![
            s(p, "short_id").to_string(),
            standing,
            s(p, "name").to_string(),
            s(&p["place"], "label").to_string(),
            risks.join(", "),
            last,
            ago(p["due_at"].as_u64().unwrap_or(0), now),
        ]);
    }
    format!("{t}\n")
}

/// The last 8 characters of a peer id: enough to tell two nodes of one hub apart.
fn short_peer(id: &str) -> &str {
    &id[id.len().saturating_sub(8)..]
}

/// Peers table.
pub fn peers(ps: &[Value]) -> String {
    let now = now_ms();
    let mut t = table(&["peer", "address", "last sync"]);
    for p in ps {
        // The hub's announced name where known; the key only when it never announced.
        let who = match p["hub"].as_str() {
            Some(hub) => format!("{hub} ({})", short_peer(s(p, "peer_id"))),
            None => s(p, "peer_id").to_string(),
        };
        // The address as `--peer` and `peers add` take it: the peer column names the
        // node, and without `/p2p/…` the address still reaches the hub there after its
        // data directory (and so its peer id) was made anew.
        let addr = s(p, "addr").split("/p2p/").next().unwrap_or("").to_string();
        t.add_row(vec![
            who,
            addr,
            p["last_sync_ms"]
                .as_u64()
                .map_or("never".into(), |ms| ago(ms, now)),
        ]);
    }
    format!("{t}\n")
}

/// `aidmesh flood`: the addresses that posted through this hub, most posts first.
pub fn flood(v: &Value) -> String {
    let rows = v["addresses"].as_array().cloned().unwrap_or_default();
    let days = v["kept_days"].as_u64().unwrap_or(3);
    if rows.is_empty() {
        return format!("No posts from other machines in the last {days} days.\n");
    }
    let now = now_ms();
    let mut t = table(&["address", "posts", "first", "last"]);
    for r in &rows {
        let at = |k: &str| r[k].as_u64().map_or(String::new(), |ms| ago(ms, now));
        t.add_row(vec![
            s(r, "address").to_string(),
            r["posts"].as_u64().unwrap_or(0).to_string(),
            at("first_ms"),
            at("last_ms"),
        ]);
    }
    format!(
        "Posts through this hub from other machines, last {days} days:\n{t}\nTo take back everything one address posted: aidmesh flood withdraw ADDRESS\n"
    )
}

/// A community card as handed to the next hub: the words, the one command that joins,
/// and a QR code of that command (a phone scanning it shows everything to type: the
/// community name is part of the key, so it is on the card too).
pub fn passphrase(label: &str, community: &str, words: &str) -> String {
    let join = join_command(community, words);
    format!(
        "{label} (give it to the other hubs):\n\n    {words}\n\nCommunity name: {community}\nTo join from another computer (or scan the code):\n    {join}\n\n{}\n",
        qr(&join)
    )
}

/// The command that joins `community` with `words`, as printed on the card.
pub fn join_command(community: &str, words: &str) -> String {
    format!("aidmesh join --community \"{community}\" --passphrase \"{words}\"")
}

/// A QR code of `text` for the terminal (two rows per character).
pub fn qr(text: &str) -> String {
    match qrcode::QrCode::new(text.as_bytes()) {
        Ok(code) => code
            .render::<qrcode::render::unicode::Dense1x2>()
            .dark_color(qrcode::render::unicode::Dense1x2::Light)
            .light_color(qrcode::render::unicode::Dense1x2::Dark)
            .quiet_zone(true)
            .build(),
        Err(_) => String::new(),
    }
}

/// The `disk` line of `status`: the database's size and the free space of its
/// filesystem, in whole megabytes, with the node's warning in red when there is one.
pub fn disk(d: &Value) -> Option<String> {
    let free = d["free_bytes"].as_u64()?;
    let total = d["total_bytes"].as_u64().unwrap_or(0);
    let db = d["db_bytes"].as_u64().unwrap_or(0);
    let percent = (free.saturating_mul(100)).checked_div(total).unwrap_or(0);
    let line = format!(
        "database {} MB; {} MB free ({percent}%)",
        db.div_ceil(1_000_000),
        free / 1_000_000
    );
    Some(match d["warning"].as_str() {
        Some(w) => format!("{line}: {}", alarm(w)),
        None => line,
    })
}

/// "840 bytes", "12.4 KB", "3.1 MB" (powers of 1000, as file managers show).
pub(crate) fn human_size(bytes: u64) -> String {
    match bytes {
        0..=999 => format!("{bytes} bytes"),
        1_000..=999_999 => format!("{:.1} KB", bytes as f64 / 1e3),
        1_000_000..=999_999_999 => format!("{:.1} MB", bytes as f64 / 1e6),
        _ => format!("{:.1} GB", bytes as f64 / 1e9),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_show_addresses_without_the_peer_id_named_or_not() {
        let id = "12D3KooWGEiqSPn1YJnVCCQ1kFpPryNmFFxhJWX2w9QLTmqa6KYh";
        let addr = format!("/ip4/192.0.2.20/tcp/4610/p2p/{id}");
        let shown = peers(&[
            serde_json::json!({ "peer_id": id, "addr": addr, "hub": "Elm St hall" }),
            serde_json::json!({ "peer_id": id, "addr": addr, "hub": null }),
        ]);
        assert!(!shown.contains("/p2p/"), "{shown}");
        assert_eq!(
            shown.matches("/ip4/192.0.2.20/tcp/4610").count(),
            2,
            "{shown}"
        );
    }

    #[test]
    fn relative_times() {
        let now = 10_000_000_000;
        assert_eq!(ago(now, now), "just now");
        assert_eq!(ago(now - 12 * 60_000, now), "12 min ago");
        assert_eq!(ago(now - 3 * 3_600_000, now), "3 h ago");
        assert_eq!(ago(now - 2 * 86_400_000, now), "2 days ago");
        assert_eq!(ago(now + 5 * 3_600_000, now), "in 5 h");
        assert_eq!(ago(now + 2 * 86_400_000 - 1000, now), "in 2 days");
        assert_eq!(ago(now - 86_400_000, now), "1 day ago");
    }

    #[test]
    fn known_at_reads_as_the_issue_says() {
        let now = 10_000_000_000;
        let item = serde_json::json!({
            "known": { "at": 3, "of": 4 },
            "known_at": [
                { "node": "567f60ec", "name": "Elm St", "at_ms": now },
                { "node": "9a8b7c6d", "name": "Oak Rd", "at_ms": now },
                { "node": "1b2c3d4e", "name": "Quay St", "at_ms": now },
            ],
            "not_yet": [{ "node": "5e6f7a8b", "name": "Mill Lane", "last_heard_ms": now - 2 * 3_600_000 }],
        });
        assert_eq!(
            known_at(&item, now).as_deref(),
            Some("known at 3 of 4 hubs (Elm St, Oak Rd, Quay St; not yet: Mill Lane, last heard 2 h ago)")
        );
        assert_eq!(known_count(&item), "3/4");
        // An unnamed hub is shown by its node id; one never heard from says so.
        let item = serde_json::json!({
            "known": { "at": 1, "of": 2 },
            "known_at": [{ "node": "567f60ec", "name": null, "at_ms": now }],
            "not_yet": [{ "node": "5e6f7a8b", "name": null, "last_heard_ms": null }],
        });
        assert_eq!(
            known_at(&item, now).as_deref(),
            Some("known at 1 of 2 hubs (567f60ec; not yet: 5e6f7a8b, never heard from directly)")
        );
        // An older node without the fields: nothing is claimed.
        assert_eq!(known_at(&serde_json::json!({}), now), None);
        assert_eq!(known_count(&serde_json::json!({})), "");
    }

    #[test]
    fn the_roster_flags_silent_hubs() {
        let now = now_ms();
        let hubs = [
            serde_json::json!({ "node": "567f60ec", "name": "Elm St", "me": true, "last_heard_ms": null, "via": null, "behind": null, "reachable": false, "silent": false }),
            serde_json::json!({ "node": "9a8b7c6d", "name": "Oak Rd", "me": false, "last_heard_ms": now, "via": "direct", "behind": 0, "reachable": true, "silent": false }),
            serde_json::json!({ "node": "5e6f7a8b", "name": null, "me": false, "last_heard_ms": now - 3 * 3_600_000, "via": "relayed", "behind": 12, "reachable": false, "silent": true }),
        ];
        let out = roster(&hubs);
        let row = |needle: &str| out.lines().find(|l| l.contains(needle)).unwrap_or("");
        assert!(row("Elm St").contains("this hub"), "{out}");
        assert!(row("Oak Rd").contains("just now (direct)"), "{out}");
        assert!(row("Oak Rd").contains("connected"), "{out}");
        let silent = row("5e6f7a8b");
        assert!(silent.contains("3 h ago (relayed)"), "{out}");
        assert!(silent.contains("12 events"), "{out}");
        assert!(silent.contains("SILENT"), "{out}");
    }

    #[test]
    fn qr_renders() {
        assert!(
            qr("hollow situate ribbon ability crunch library")
                .lines()
                .count()
                > 10
        );
    }
}
