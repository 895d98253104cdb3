//! Paper (issue 13): `GET /print`, the open board as a printable page (needs and offers
//! by category, most urgent first, large type, short ids, a QR code of the hub page),
//! and `GET /print/round`, the welfare volunteers' street round sheet (hub computer or
//! PIN, like every welfare route). Both are plain HTML with no script, in the language
//! of `?lang=` (else the browser's Accept-Language), worded from the page's own
//! catalogues (`node/src/web/i18n/*.json`), so one file per language serves both.

use std::fmt::Write;

use aidmesh_protocol::body::BodyKind;
use aidmesh_protocol::welfare::{assess_all, Standing};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::error::{blocking, ApiError};
use super::names::HubNames;
use super::page::CATALOGUES;
use super::pin::Volunteer;
use super::welfare::person_json;
use super::AppState;
use crate::doors::input::ListQuery;
use crate::doors::overview::Pin;

/// Printouts carry their style inline and no script at all.
const CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'";

/// The query of both printouts.
#[derive(Debug, Default, Deserialize)]
pub(super) struct PrintQuery {
    /// Language code ("en", "es"); unknown ones fall back to the browser's, then English.
    lang: Option<String>,
    /// The hub page address for the QR code, when the Host this was asked on is not the
    /// one phones use (the hub computer's own `localhost`, the CLI).
    url: Option<String>,
}

/// One language's words, from its page catalogue.
struct Words {
    code: &'static str,
    map: Map<String, Value>,
    fallback: Map<String, Value>,
}

fn parse(body: &str) -> Map<String, Value> {
    // The catalogues are compiled in and checked by page.rs's tests.
    serde_json::from_str(body).unwrap_or_default()
}

impl Words {
    /// The language from `?lang=`, else the first of Accept-Language the node has.
    fn choose(lang: Option<&str>, headers: &HeaderMap) -> Words {
        let accept = headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let wanted = lang.into_iter().map(str::to_string).chain(
            accept
                .split(',')
                .map(|l| l.split(';').next().unwrap_or("").trim().to_lowercase()),
        );
        let (code, body) = wanted
            .filter_map(|l| {
                let base = l.split('-').next().unwrap_or("").to_string();
                CATALOGUES.iter().find(|(c, _)| *c == base)
            })
            .next()
            .unwrap_or(&CATALOGUES[0]);
        Words {
            code,
            map: parse(body),
            fallback: parse(CATALOGUES[0].1),
        }
    }

    /// The text of `key` with `{name}` placeholders filled (HTML-escaped).
    fn t(&self, key: &str, vars: &[(&str, &str)]) -> String {
        let text = self
            .map
            .get(key)
            .or_else(|| self.fallback.get(key))
            .and_then(Value::as_str)
            .unwrap_or(key);
        let mut out = esc(text);
        for (k, v) in vars {
            out = out.replace(&format!("{{{k}}}"), &esc(v));
        }
        out
    }

    /// A name from the node (category, urgency...) translated, or as it is.
    fn name(&self, group: &str, name: &str) -> String {
        let key = format!("{group}.{name}");
        if self.map.contains_key(&key) {
            self.t(&key, &[])
        } else {
            esc(name)
        }
    }

    fn dir(&self) -> &'static str {
        if self.map.get("_dir").and_then(Value::as_str) == Some("rtl") {
            "rtl"
        } else {
            "ltr"
        }
    }
}

/// Escapes text for HTML content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A UTC time as "2026-11-30 17:05 UTC" (the hub computer's zone is not known).
pub(crate) fn utc(ms: u64) -> String {
    aidmesh_protocol::calendar::minute_utc(ms)
}

/// A QR code of `text` as an inline SVG image (black modules on white).
fn qr_svg(text: &str) -> Option<String> {
    let code = qrcode::QrCode::new(text.as_bytes()).ok()?;
    let w = code.width();
    let colors = code.to_colors();
    let mut path = String::new();
    for (i, c) in colors.iter().enumerate() {
        if *c == qrcode::Color::Dark {
            let _ = write!(path, "M{} {}h1v1h-1z", i % w + 4, i / w + 4);
        }
    }
    let size = w + 8;
    Some(format!(
        "<svg class=\"qr\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {size} {size}\" \
         role=\"img\" aria-label=\"QR\"><rect width=\"{size}\" height=\"{size}\" fill=\"#fff\"/>\
         <path d=\"{path}\" fill=\"#000\"/></svg>"
    ))
}

/// The shared top of both printouts.
fn head(w: &Words, title: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"{}\" dir=\"{}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n",
        w.code,
        w.dir()
    )
}

/// Black on white, no colour needed; A4 with modest margins. The board's items are
/// compact cards in up to three columns (`.cards`: at least 54 mm each, so one on a
/// phone); the round sheet keeps large type.
const STYLE: &str = "@page{size:A4;margin:14mm}\
body{font:15pt/1.3 system-ui,sans-serif;color:#000;background:#fff;margin:0}\
@media screen{body{margin:1rem}}\
h1{font-size:22pt;margin:0 0 4pt}h2{font-size:18pt;border-bottom:2pt solid #000;margin:12pt 0 4pt}\
h3{font-size:16pt;margin:10pt 0 2pt}.meta{font-size:12pt;margin:0}\
header{display:flex;justify-content:space-between;align-items:flex-start;gap:12pt}\
.qr{width:30mm;height:30mm;flex:none}ol,ul{margin:0;padding:0;list-style:none}\
li{padding:3pt 0;border-bottom:0.5pt solid #888;break-inside:avoid}\
.cards{columns:54mm 3;column-gap:4mm;font-size:10pt;line-height:1.2}\
.cards h3{font-size:12pt;margin:0 0 2pt;break-after:avoid}.cards ol{margin:0 0 4pt}\
.cards li{border:0.75pt solid #000;padding:2pt 3pt;margin:0 0 3pt}\
.cards strong{font-size:11pt}.cards .small{font-size:8.5pt}.d{white-space:pre-line}\
.id{font-family:ui-monospace,monospace;font-weight:bold}.u{font-weight:bold;text-transform:uppercase}\
.box{display:inline-block;margin-right:10pt;white-space:nowrap}\
.box::before{content:'';display:inline-block;width:11pt;height:11pt;border:1.5pt solid #000;\
margin-right:3pt;vertical-align:-1pt}.small{font-size:12pt}\
.meta{overflow-wrap:anywhere}\
.overview{margin:4pt 0 8pt;break-inside:avoid}.overview svg{width:100%;max-width:130mm;display:block}\
.pin{display:inline-block;min-width:12pt;border:1.5pt solid #c00;border-radius:8pt;text-align:center;font-weight:bold}\
@media screen and (max-width:480px){header{flex-wrap:wrap}}";

/// The hub page address: `?url=` if it is a plain http(s) address on the local
/// network ([`on_the_lan`]), else the Host the browser (or the CLI) reached this node
/// at. Any other `?url=` is refused: a printed board's QR code must not send phones
/// to an address of someone else's choosing (issue 24).
fn page_url(q: &PrintQuery, headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    if let Some(u) = &q.url {
        let u = u.trim();
        let plain = (u.starts_with("http://") || u.starts_with("https://"))
            && u.len() <= 200
            && !u.chars().any(char::is_whitespace);
        if !plain || !on_the_lan(u) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_query",
                format!("url: the QR code must point at this hub's page on the local network (an address like http://192.168.1.5:4611/); '{}' is not one", u.chars().take(80).collect::<String>()),
            ));
        }
        return Ok(Some(u.to_string()));
    }
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return Ok(None);
    };
    // The CLI reaches a node that listens on every interface at 0.0.0.0: no phone can.
    Ok(crate::net::lan::reachable_host(host).map(|h| format!("http://{h}/")))
}

/// Whether an http(s) address names a host on the local network: a private,
/// link-local, shared (100.64/10) or loopback IP address, or a name that only a local
/// network resolves (one label, or ending in .local, .lan, .home.arpa or .internal).
fn on_the_lan(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return false; // user info: a way to dress up another host
    }
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return match ip.to_canonical() {
            std::net::IpAddr::V4(v4) => {
                v4.is_private()
                    || v4.is_link_local()
                    || v4.is_loopback()
                    || (v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64)
            }
            std::net::IpAddr::V6(v6) => {
                v6.is_loopback()
                    || (v6.segments()[0] & 0xfe00) == 0xfc00
                    || (v6.segments()[0] & 0xffc0) == 0xfe80
            }
        };
    }
    let name = host.to_ascii_lowercase();
    let name = name.strip_suffix('.').unwrap_or(&name);
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        && (!name.contains('.')
            || [".local", ".lan", ".home.arpa", ".internal", ".localhost"]
                .iter()
                .any(|s| name.ends_with(s)))
}

fn html(body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

/// This node's announced hub name, else its community's name.
fn hub_name(st: &AppState) -> String {
    let me = st.engine.identity().author();
    st.engine
        .with_view(|v| HubNames::of(v).author(&me).map(str::to_string))
        .unwrap_or_else(|| st.engine.community().to_string())
}

/// `GET /print`: the open needs and offers, by category, most urgent first.
pub(super) async fn board(
    State(st): State<AppState>,
    headers: HeaderMap,
    q: Query<PrintQuery>,
) -> Result<Response, ApiError> {
    let w = Words::choose(q.lang.as_deref(), &headers);
    let now = st.engine.now_ms();
    let hub = hub_name(&st);
    let title = w.t("print.board_title", &[]);
    let mut out = head(&w, &title);
    let _ = write!(
        out,
        "<header><div><h1>{title}</h1><p class=\"meta\">{}</p><p class=\"meta\">{}</p>",
        w.t("print.hub", &[("hub", &hub)]),
        w.t("print.printed", &[("time", &utc(now))]),
    );
    if let Some(url) = page_url(&q, &headers)? {
        let _ = writeln!(
            out,
            "<p class=\"meta\">{}</p></div>{}</header>",
            w.t("print.scan", &[("url", &url)]),
            qr_svg(&url).unwrap_or_default()
        );
    } else {
        out.push_str("</div></header>\n");
    }
    for (kind, heading) in [
        (BodyKind::Need, "tab.needs"),
        (BodyKind::Offer, "tab.offers"),
    ] {
        // The list API's order: most urgent first, then newest; the first
        // `UNPAGED_MAX` of them (a printout of 100,000 items is no use to anyone).
        let list = super::lists::list_value(&st, Some(kind), ListQuery::default())?;
        let items = list["items"].as_array().cloned().unwrap_or_default();
        let more = list["total"]
            .as_u64()
            .map_or(0, |t| t.saturating_sub(items.len() as u64));
        let _ = writeln!(out, "<h2>{}</h2>", w.t(heading, &[]));
        if items.is_empty() {
            let _ = writeln!(out, "<p>{}</p>", w.t("print.none", &[]));
            continue;
        }
        // By category, the category of the most urgent item first; items in the list's
        // order (most urgent, then newest) within each.
        let mut groups: Vec<(&str, Vec<&Value>)> = Vec::new();
        for i in &items {
            let c = i["category"].as_str().unwrap_or("other");
            match groups.iter_mut().find(|(name, _)| *name == c) {
                Some((_, g)) => g.push(i),
                None => groups.push((c, vec![i])),
            }
        }
        // The needs' overview map (issue 27), when a map is installed: the numbers
        // on it are printed on the cards, in the cards' order.
        let mut numbers: Vec<Option<usize>> = Vec::new();
        if kind == BodyKind::Need {
            let ordered: Vec<&Value> = groups.iter().flat_map(|(_, g)| g.iter().copied()).collect();
            if let Some((svg, drawn)) = overview_of(&st, &w, &ordered).await {
                out.push_str(&svg);
                numbers = vec![None; ordered.len()];
                for (k, at) in drawn.into_iter().enumerate() {
                    numbers[at] = Some(k + 1);
                }
            }
        }
        let mut at = 0;
        // One flow of columns per kind (three on A4 or Letter, one on a phone), the
        // categories one after the other in it.
        out.push_str("<div class=\"cards\">\n");
        for (_, group) in &groups {
            let cat = group[0]["category"].as_str().unwrap_or("other");
            let _ = writeln!(out, "<h3>{}</h3>\n<ol>", w.name("cat", cat));
            for i in group {
                out.push_str(&card(&w, i, numbers.get(at).copied().flatten()));
                at += 1;
            }
            out.push_str("</ol>\n");
        }
        out.push_str("</div>\n");
        if more > 0 {
            let n = more.to_string();
            let _ = writeln!(out, "<p>{}</p>", w.t("print.more", &[("n", &n)]));
        }
    }
    out.push_str("</main>\n</body>\n</html>\n");
    Ok(html(out))
}

/// The overview map of the needs in `ordered` that have a position, from the installed
/// map ([`super::map::overview`]); `None` without a map or a positioned need.
async fn overview_of(st: &AppState, w: &Words, ordered: &[&Value]) -> Option<(String, Vec<usize>)> {
    let pins: Vec<Pin> = ordered
        .iter()
        .enumerate()
        .filter_map(|(number, i)| {
            let lat = i["place"]["lat"].as_f64()?;
            let lon = i["place"]["lon"].as_f64()?;
            Some(Pin { number, lat, lon })
        })
        .collect();
    if pins.is_empty() {
        return None;
    }
    let maps = st.map.clone();
    let label = w.t("print.overview", &[]);
    blocking(move || super::map::overview(&maps, &pins, &label))
        .await
        .ok()
        .flatten()
}

/// Longest details printed on a card, in characters; the rest is on the live board.
const DETAILS_MAX: usize = 300;

/// One need or offer as a compact card: what the open board shows anyone (short id,
/// urgency, status, title, quantity, place, contact, details, when, which hub, at how
/// many hubs), never more.
fn card(w: &Words, i: &Value, number: Option<usize>) -> String {
    let s = |k: &str| i[k].as_str().unwrap_or("").to_string();
    let mut out = String::from("<li>");
    if let Some(n) = number {
        // Its circle on the overview map.
        let _ = write!(out, "<span class=\"pin\">{n}</span> ");
    }
    let _ = write!(
        out,
        "<span class=\"id\">{}</span> <span class=\"u\">{}</span>",
        esc(&s("short_id")),
        w.name("urgency", &s("urgency")),
    );
    let status = s("status");
    if !status.is_empty() && status != "open" {
        let _ = write!(out, " · {}", w.name("status", &status));
    }
    let _ = write!(out, " <strong dir=\"auto\">{}</strong>", title_of(w, i));
    if let Some(qty) = i["qty"].as_u64() {
        let unit = s("unit");
        let q = if unit.is_empty() {
            qty.to_string()
        } else {
            format!("{qty} {unit}")
        };
        let _ = write!(out, " · <span dir=\"auto\">{}</span>", esc(&q));
    }
    // Where and who to contact, on one line when they fit.
    let place = i["place"]["label"].as_str().unwrap_or("");
    let contact = s("contact");
    let mut reach = Vec::new();
    if !place.is_empty() {
        reach.push(w.t("card.where", &[("place", place)]));
    }
    if !contact.is_empty() {
        reach.push(w.t("card.contact", &[("contact", &contact)]));
    }
    for (n, r) in reach.iter().enumerate() {
        let sep = if n == 0 { "<br>" } else { " · " };
        let _ = write!(out, "{sep}<span dir=\"auto\">{r}</span>");
    }
    let details = s("details");
    if !details.is_empty() {
        let mut d: String = details.chars().take(DETAILS_MAX).collect();
        if d.len() < details.len() {
            d.push('…');
        }
        let _ = write!(out, "<br><span class=\"d\" dir=\"auto\">{}</span>", esc(&d));
    }
    // One small line: when, the hub it was posted at, and (issue 11) at how many of
    // the community's hubs it is known, so a reader of the paper knows whether the
    // other hubs have seen it.
    let mut small = vec![esc(&utc(i["created_at"].as_u64().unwrap_or(0)))];
    if let Some(by) = i["author_hub"].as_str() {
        small.push(esc(by));
    }
    if let (Some(at), Some(of)) = (i["known"]["at"].as_u64(), i["known"]["of"].as_u64()) {
        let (at, of) = (at.to_string(), of.to_string());
        small.push(w.t("print.known", &[("at", &at), ("of", &of)]));
    }
    let _ = writeln!(
        out,
        "<br><span class=\"small\" dir=\"auto\">{}</span></li>",
        small.join(" · ")
    );
    out
}

/// The street of an address, for walking order: the part before the first comma,
/// without a leading house number ("14 River Rd, 3rd floor" → "river rd"), and the
/// house number (0 if none).
fn street_key(label: &str) -> (String, u64, String) {
    let first = label.split(',').next().unwrap_or("").trim();
    let lead: String = first.chars().take_while(char::is_ascii_digit).collect();
    let (street, number) = if lead.is_empty() {
        // "Mill Lane 40": the number at the end.
        let tail = first.len() - first.trim_end_matches(|c: char| c.is_ascii_digit()).len();
        (&first[..first.len() - tail], &first[first.len() - tail..])
    } else {
        // "14 River Rd", "14a River Rd": the number, and a letter after it, at the start.
        let rest = &first[lead.len()..];
        let rest = match rest.chars().next() {
            Some(c) if c.is_alphabetic() && rest[c.len_utf8()..].starts_with(' ') => {
                &rest[c.len_utf8()..]
            }
            _ => rest,
        };
        (rest, lead.as_str())
    };
    (
        street.trim().to_lowercase(),
        number.parse().unwrap_or(0),
        label.to_lowercase(),
    )
}

/// The street as printed above its people: the address's first part, no house number.
fn street_shown(label: &str) -> String {
    let first = label.split(',').next().unwrap_or("").trim();
    let lead = first.len() - first.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let trail = first.len() - first.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let s = if lead > 0 {
        &first[lead..]
    } else {
        &first[..first.len() - trail]
    };
    let s = s.trim();
    // "14a River Rd": drop the "a".
    match s.split_once(' ') {
        Some((a, rest)) if lead > 0 && a.chars().count() == 1 => rest.trim().to_string(),
        _ => s.to_string(),
    }
}

/// `GET /print/round`: the people due a visit, in walking order by street.
pub(super) async fn round(
    State(st): State<AppState>,
    _: Volunteer,
    headers: HeaderMap,
    q: Query<PrintQuery>,
) -> Result<Response, ApiError> {
    let w = Words::choose(q.lang.as_deref(), &headers);
    let now = st.engine.now_ms();
    let people = st.engine.with_view(|v| v.people());
    let mut due: Vec<Value> = assess_all(&people, now)
        .iter()
        .filter(|p| p.standing != Standing::Ok)
        .map(person_json)
        .collect();
    due.sort_by_cached_key(|p| street_key(p["place"]["label"].as_str().unwrap_or("")));
    let title = w.t("print.round_title", &[]);
    let mut out = head(&w, &title);
    let _ = writeln!(
        out,
        "<header><div><h1>{title}</h1><p class=\"meta\">{}</p><p class=\"meta\">{}</p>\
         <p class=\"meta\">{}</p></div></header>",
        w.t("print.hub", &[("hub", &hub_name(&st))]),
        w.t("print.printed", &[("time", &utc(now))]),
        w.t("print.round_intro", &[]),
    );
    if due.is_empty() {
        let _ = writeln!(out, "<p>{}</p>", w.t("print.nobody", &[]));
    }
    let mut street: Option<String> = None;
    for p in &due {
        let label = p["place"]["label"].as_str().unwrap_or("");
        let (s, _, _) = street_key(label);
        if street.as_deref() != Some(&s) {
            if street.is_some() {
                out.push_str("</ol>\n");
            }
            let shown = if s.is_empty() {
                w.t("print.no_street", &[])
            } else {
                esc(&street_shown(label))
            };
            let _ = writeln!(out, "<h2 dir=\"auto\">{shown}</h2>\n<ol>");
            street = Some(s);
        }
        let str_of = |k: &str| p[k].as_str().unwrap_or("").to_string();
        let risks: Vec<&str> = p["risks"]
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let last = match p["latest"].as_object() {
            Some(l) => format!(
                "{}, {}",
                w.name(
                    "outcome",
                    l.get("outcome").and_then(Value::as_str).unwrap_or("")
                ),
                esc(&utc(l.get("at").and_then(Value::as_u64).unwrap_or(0)))
            ),
            None => w.t("person.never", &[]),
        };
        let _ = write!(
            out,
            "<li><span class=\"id\">{}</span> · <span class=\"u\">{}</span> · \
             <strong dir=\"auto\">{}</strong><br><span dir=\"auto\">{}</span>",
            esc(&str_of("short_id")),
            w.name("standing", &str_of("standing")),
            esc(&str_of("name")),
            esc(label),
        );
        if !risks.is_empty() {
            let _ = write!(
                out,
                "<br><span dir=\"auto\">{}</span>",
                w.t("person.at_risk", &[("risks", &risks.join(", "))])
            );
        }
        let phone = str_of("phone");
        if !phone.is_empty() {
            let _ = write!(out, " · {}", esc(&phone));
        }
        let _ = write!(
            out,
            "<br><span class=\"small\">{}</span><br>",
            w.t("print.last", &[]).replace("{last}", &last)
        );
        for o in ["safe", "no-answer", "not-home", "needs-help", "moved"] {
            let _ = write!(out, "<span class=\"box\">{}</span>", w.name("outcome", o));
        }
        out.push_str("</li>\n");
    }
    if street.is_some() {
        out.push_str("</ol>\n");
    }
    out.push_str("</main>\n</body>\n</html>\n");
    Ok(html(out))
}

/// An item's title as the printed board shows it (HTML-escaped): a need a welfare
/// check raised (`welfare_help`) is worded in the sheet's language from its kind.
fn title_of(w: &Words, i: &Value) -> String {
    match i["welfare_help"].as_str() {
        Some("welfare") => w.t("followup.general", &[]),
        Some(kind) => w
            .t("followup.kind", &[])
            .replace("{kind}", &w.name("cat", kind)),
        None => esc(i["title"].as_str().unwrap_or("")),
    }
}

#[cfg(test)]
mod tests {
    use super::{on_the_lan, street_key, street_shown, utc};

    #[test]
    fn the_qr_code_points_only_at_the_local_network() {
        for ok in [
            "http://192.168.1.5:4611/",
            "http://10.0.0.5/",
            "https://172.20.1.1:8443/page",
            "http://100.64.3.2:4611/",
            "http://169.254.10.1/",
            "http://[fd00::5]:4611/",
            "http://[fe80::1]/",
            "http://hub.local:4611/",
            "http://elmstreet/",
            "http://127.0.0.1:4611/",
        ] {
            assert!(on_the_lan(ok), "{ok}");
        }
        for bad in [
            "http://evil.example/",
            "https://8.8.8.8/",
            "http://192.168.1.5@evil.example/",
            "http://[2001:db8::1]/",
            "http://hub.local.evil.example/",
            "http://xn--hb-ska.example/",
        ] {
            assert!(!on_the_lan(bad), "{bad}");
        }
    }

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(1_796_058_300_000), "2026-11-30 17:05 UTC");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00 UTC");
    }

    #[test]
    fn walking_order_is_by_street_then_house_number() {
        let mut places = vec![
            "14 River Rd, 3rd floor",
            "2 Mill Lane",
            "3 River Rd",
            "Mill Lane 40",
            "12 Mill Lane",
        ];
        places.sort_by_cached_key(|p| street_key(p));
        assert_eq!(
            places,
            [
                "2 Mill Lane",
                "12 Mill Lane",
                "Mill Lane 40",
                "3 River Rd",
                "14 River Rd, 3rd floor"
            ]
        );
        assert_eq!(street_key("14a River Rd").0, "river rd");
        assert_eq!(street_shown("14a River Rd, flat 2"), "River Rd");
        assert_eq!(street_shown("Mill Lane 40"), "Mill Lane");
        // Anything people type: no panic, a key for each.
        for odd in [
            "",
            "12",
            ",",
            "١٢ شارع النيل",
            "é",
            "14é Rue",
            "7 ",
            "  ,9",
            "9a",
            "a 1",
        ] {
            let _ = street_key(odd);
            let _ = street_shown(odd);
        }
        assert_eq!(street_key("١٢ شارع النيل").0, "١٢ شارع النيل");
    }
}
