//! Official alerts in: reading a Common Alerting Protocol message (CAP 1.2 or 1.1, as
//! national weather and civil-protection services publish them) into aidmesh
//! [`OfficialAlert`] bodies (kind 9).
//!
//! Each `info` block becomes alert text in its language; blocks in different languages
//! are one alert (the first block of each language together, then the second, ...).
//! Only real public alerts are taken (`status` Actual, `scope` Public, `msgType` Alert
//! or Update); tests, exercises, drafts and restricted messages are refused, naming why.
//!
//! CAP files arrive from anywhere: the parser (roxmltree) refuses any DTD, so no
//! external entity is ever resolved (no local file is read, nothing is fetched) and no
//! entity expansion can blow up; the input is bounded ([`MAX_CAP_BYTES`]) and so is the
//! number of XML nodes. Text is cleaned of what the board refuses (control and
//! invisible characters) and cut to the board's limits rather than refused: official
//! descriptions are often longer than a board note.

use aidmesh_protocol::body::{MAX_DETAILS, MAX_LABEL, MAX_LANGUAGES, MAX_TAG, MAX_TITLE};
use aidmesh_protocol::text::{check, Lines, Required};
use aidmesh_protocol::{AlertText, AlertUrgency, OfficialAlert, Severity};
use roxmltree::{Document, Node, ParsingOptions};
use thiserror::Error;

/// The CAP 1.2 namespace.
pub const CAP_12: &str = "urn:oasis:names:tc:emergency:cap:1.2";
/// The CAP 1.1 namespace.
pub const CAP_11: &str = "urn:oasis:names:tc:emergency:cap:1.1";
/// Largest CAP file read (real ones are a few KiB; NWS's largest some tens).
pub const MAX_CAP_BYTES: usize = 1024 * 1024;
/// Most XML nodes parsed.
const MAX_NODES: u32 = 100_000;
/// How long an alert without `expires` is shown after it was sent (as a local alert).
pub const DEFAULT_EXPIRY_MS: u64 = 86_400_000;

/// Why a file is not a CAP alert this node can post.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CapError {
    /// Larger than [`MAX_CAP_BYTES`].
    #[error("the file is {0} bytes; a CAP alert is at most {MAX_CAP_BYTES} bytes")]
    TooLarge(usize),
    /// Not well-formed XML (or not UTF-8).
    #[error("this is not XML ({0}); a CAP alert is an XML file")]
    NotXml(String),
    /// The file has a DOCTYPE; it is never read.
    #[error("the file has a DOCTYPE (a DTD); CAP alerts have none, and this node reads no DTD, so no entity in it is resolved")]
    Dtd,
    /// The root is not a CAP `alert`.
    #[error("this is not a CAP alert: the root element is <{name}> in namespace '{ns}'; expected <alert> in {CAP_12} (or cap:1.1)")]
    NotCap {
        /// Root element's local name.
        name: String,
        /// Its namespace (empty if none).
        ns: String,
    },
    /// A required element is missing or empty.
    #[error("the CAP alert has no <{0}>, which CAP requires")]
    Missing(&'static str),
    /// An element's value is not one CAP allows.
    #[error("<{element}> is '{value}': {why}")]
    Bad {
        /// The element.
        element: &'static str,
        /// Its value (cut to 60 characters).
        value: String,
        /// What is wrong, and what would do.
        why: String,
    },
    /// A message that is not for the public board.
    #[error("not posted: {0}")]
    NotForTheBoard(String),
}

/// What a CAP message asks of the board.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MsgType {
    /// A new alert.
    Alert,
    /// A new version of the alerts it references: it replaces them.
    Update,
    /// The issuer ends the alerts it references.
    Cancel,
}

/// What a CAP file gives: at most one alert (one CAP message is one alert, however many
/// languages and areas its `info` blocks carry), and what it does to earlier ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapMessage {
    /// "1.2" or "1.1".
    pub version: &'static str,
    /// Alert, Update or Cancel.
    pub msg_type: MsgType,
    /// The alert to post (`None` for a Cancel).
    pub alert: Option<OfficialAlert>,
    /// The CAP identifiers of the earlier messages this one updates or cancels
    /// (`<references>`, cleaned as [`OfficialAlert::identifier`] is).
    pub references: Vec<String>,
    /// The issuer says the threat is over (`responseType` AllClear): the alert is
    /// posted already ended.
    pub all_clear: bool,
    /// Languages of the file the alert does not carry (the board holds at most
    /// [`MAX_LANGUAGES`]; the first ones in the file are kept).
    pub left_out: Vec<String>,
}

/// Furthest an official alert's expiry is taken, from when it is read: a year, as for
/// alerts raised by hand. A later `expires` (9999-12-31) is brought back to it.
pub const MAX_EXPIRY_MS: u64 = 365 * 86_400_000;

/// Reads a CAP message. `now_ms` refuses alerts that have already expired.
pub fn parse(bytes: &[u8], now_ms: u64) -> Result<CapMessage, CapError> {
    if bytes.len() > MAX_CAP_BYTES {
        return Err(CapError::TooLarge(bytes.len()));
    }
    let text = decode(bytes)?;
    let opts = ParsingOptions {
        allow_dtd: false,
        nodes_limit: MAX_NODES,
        ..ParsingOptions::default()
    };
    let doc = Document::parse_with_options(&text, opts).map_err(|e| match e {
        roxmltree::Error::DtdDetected => CapError::Dtd,
        other => CapError::NotXml(other.to_string()),
    })?;
    let root = doc.root_element();
    let ns = root.tag_name().namespace().unwrap_or("");
    let version = match ns {
        CAP_12 => "1.2",
        CAP_11 => "1.1",
        _ => {
            return Err(CapError::NotCap {
                name: root.tag_name().name().to_string(),
                ns: ns.to_string(),
            })
        }
    };
    if root.tag_name().name() != "alert" {
        return Err(CapError::NotCap {
            name: root.tag_name().name().to_string(),
            ns: ns.to_string(),
        });
    }
    let identifier = required(root, ns, "identifier")?;
    let sender = required(root, ns, "sender")?;
    let sent = required(root, ns, "sent")?;
    let sent_ms = date_ms("sent", &sent)?;
    let status = required(root, ns, "status")?;
    let msg_type_s = required(root, ns, "msgType")?;
    let scope = required(root, ns, "scope")?;
    match status.as_str() {
        "Actual" => {}
        "Exercise" | "System" | "Test" | "Draft" => {
            let what = match status.as_str() {
                "Exercise" => "an exercise",
                "System" => "a system message",
                "Test" => "a test",
                _ => "a draft",
            };
            return Err(CapError::NotForTheBoard(format!(
                "this is {what} (status {status}), not a real alert"
            )));
        }
        _ => {
            return Err(bad(
                "status",
                &status,
                "CAP allows Actual, Exercise, System, Test or Draft",
            ))
        }
    }
    let msg_type = match msg_type_s.as_str() {
        "Alert" => MsgType::Alert,
        "Update" => MsgType::Update,
        "Cancel" => MsgType::Cancel,
        "Ack" | "Error" => {
            return Err(CapError::NotForTheBoard(format!(
                "an {msg_type_s} message is for the alert's sender, not a warning for people"
            )))
        }
        _ => {
            return Err(bad(
                "msgType",
                &msg_type_s,
                "CAP allows Alert, Update, Cancel, Ack or Error",
            ))
        }
    };
    match scope.as_str() {
        "Public" => {}
        "Restricted" | "Private" => {
            return Err(CapError::NotForTheBoard(format!(
                "the alert's scope is {scope}: it is not for the public"
            )))
        }
        _ => {
            return Err(bad(
                "scope",
                &scope,
                "CAP allows Public, Restricted or Private",
            ))
        }
    }
    // "sender,identifier,sent" triples separated by spaces; the identifier names the
    // earlier message (the sender is its address, which the board does not keep).
    let references: Vec<String> = child_text(root, ns, "references")
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|r| r.split(',').nth(1))
        .map(|id| cut(&one_line(id), MAX_LABEL))
        .filter(|id| !id.is_empty())
        .collect();
    if msg_type == MsgType::Cancel {
        if references.is_empty() {
            return Err(CapError::NotForTheBoard(
                "this Cancel names no earlier alert in <references>, so there is nothing to end"
                    .into(),
            ));
        }
        return Ok(CapMessage {
            version,
            msg_type,
            alert: None,
            references,
            all_clear: false,
            left_out: Vec::new(),
        });
    }
    let infos: Vec<Node> = children(root, ns, "info").collect();
    if infos.is_empty() {
        return Err(CapError::Missing("info"));
    }
    // One alert: the first block of each language gives that language's text; later
    // blocks of the same language add their areas (and their text when it differs).
    let mut langs: Vec<Info> = Vec::new();
    let mut left_out: Vec<String> = Vec::new();
    let mut all_clear = false;
    let (mut severity, mut urgency, mut expires_ms) = (None, None, 0u64);
    for node in infos {
        let info = read_info(node, ns, sent_ms)?;
        all_clear |= info.all_clear;
        severity = severity.max(Some(info.severity));
        urgency = Some(urgency.map_or(info.urgency, |u: AlertUrgency| u.min(info.urgency)));
        expires_ms = expires_ms.max(info.expires_ms);
        let same = langs
            .iter()
            .position(|i| i.text.language.eq_ignore_ascii_case(&info.text.language));
        match same {
            Some(n) => langs[n].absorb(info),
            None if langs.len() < MAX_LANGUAGES => langs.push(info),
            None => {
                if !left_out.contains(&info.text.language) {
                    left_out.push(info.text.language)
                }
            }
        }
    }
    // From now, not from `sent`: a message may claim to be sent in 9999 too.
    let expires_ms = expires_ms.min(now_ms.saturating_add(MAX_EXPIRY_MS));
    if expires_ms <= now_ms {
        return Err(CapError::NotForTheBoard(
            "the alert has already expired".into(),
        ));
    }
    let sender_name = langs
        .iter()
        .find_map(|i| i.sender_name.clone())
        .unwrap_or(sender.clone());
    // Every language's text shares the event's room: cut each to its share.
    let share = MAX_DETAILS / langs.len();
    let texts = langs
        .into_iter()
        .map(|i| {
            let mut t = i.text;
            t.text = cut(&many_lines(&t.text), share);
            t.area = cut(&one_line(&i.areas.join("; ")), MAX_LABEL);
            t
        })
        .collect();
    let alert = OfficialAlert {
        severity: severity.unwrap_or(Severity::Moderate),
        urgency: urgency.unwrap_or(AlertUrgency::Unknown),
        expires_ms: Some(expires_ms),
        sender: cut(&one_line(&sender_name), MAX_LABEL),
        identifier: cut(&one_line(&identifier), MAX_LABEL),
        texts,
    };
    Ok(CapMessage {
        version,
        msg_type,
        alert: Some(alert),
        references,
        all_clear,
        left_out,
    })
}

/// The file's text in the encoding it declares (a byte-order mark, else the XML
/// declaration's `encoding`, else UTF-8): USGS publishes ISO-8859-1.
fn decode(bytes: &[u8]) -> Result<String, CapError> {
    let (encoding, body) = match encoding_rs::Encoding::for_bom(bytes) {
        Some((enc, len)) => (enc, &bytes[len..]),
        None => {
            let declared = declared_encoding(bytes);
            let enc = match &declared {
                None => encoding_rs::UTF_8,
                Some(label) => {
                    encoding_rs::Encoding::for_label(label.as_bytes()).ok_or_else(|| {
                        CapError::NotXml(format!(
                            "the file declares encoding=\"{label}\", which this node does not know"
                        ))
                    })?
                }
            };
            (enc, bytes)
        }
    };
    let text = encoding
        .decode_without_bom_handling_and_without_replacement(body)
        .ok_or_else(|| CapError::NotXml(format!("not {} text", encoding.name())))?;
    Ok(text.into_owned())
}

/// The `encoding` of an XML declaration at the start of `bytes`, if any.
fn declared_encoding(bytes: &[u8]) -> Option<String> {
    let head = &bytes[..bytes.len().min(200)];
    let head: String = head.iter().map(|&b| b as char).collect();
    let decl = head.strip_prefix("<?xml")?;
    let decl = &decl[..decl.find("?>")?];
    let at = decl.find("encoding")?;
    let rest = decl[at + "encoding".len()..]
        .trim_start()
        .strip_prefix('=')?;
    let rest = rest.trim_start();
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let rest = &rest[1..];
    Some(rest[..rest.find(quote)?].trim().to_string())
}

struct Info {
    text: AlertText,
    /// Area descriptions, each once.
    areas: Vec<String>,
    severity: Severity,
    urgency: AlertUrgency,
    expires_ms: u64,
    sender_name: Option<String>,
    all_clear: bool,
}

impl Info {
    /// Takes in a later block of the same language: its areas, and its headline and
    /// text when they say something this one does not (blocks that differ only in
    /// geocode, as NSW RFS sends, add nothing).
    fn absorb(&mut self, other: Info) {
        for a in other.areas {
            if !self.areas.contains(&a) {
                self.areas.push(a);
            }
        }
        let t = &mut self.text;
        let o = other.text;
        if o.event != t.event || o.headline != t.headline || o.text != t.text {
            let more = [o.headline, o.text]
                .into_iter()
                .filter(|x| !x.is_empty() && !t.text.contains(x.as_str()) && *x != t.headline)
                .collect::<Vec<_>>()
                .join("\n");
            // Bounded: the text is cut to the board's room when the alert is made.
            if !more.is_empty() && t.text.chars().count() <= MAX_DETAILS {
                if !t.text.is_empty() {
                    t.text.push_str("\n\n");
                }
                t.text.push_str(&more);
            }
        }
    }
}

fn read_info(info: Node, ns: &str, sent_ms: u64) -> Result<Info, CapError> {
    let language = child_text(info, ns, "language").unwrap_or_else(|| "en-US".into());
    let event = required(info, ns, "event")?;
    for must in ["category", "certainty"] {
        if child_text(info, ns, must).is_none() {
            return Err(CapError::Missing(if must == "category" {
                "category"
            } else {
                "certainty"
            }));
        }
    }
    let urgency_s = required(info, ns, "urgency")?;
    let urgency = match urgency_s.as_str() {
        "Immediate" => AlertUrgency::Immediate,
        "Expected" => AlertUrgency::Expected,
        "Future" => AlertUrgency::Future,
        "Past" => AlertUrgency::Past,
        "Unknown" => AlertUrgency::Unknown,
        _ => {
            return Err(bad(
                "urgency",
                &urgency_s,
                "CAP allows Immediate, Expected, Future, Past or Unknown",
            ))
        }
    };
    let severity_s = required(info, ns, "severity")?;
    let severity = match severity_s.as_str() {
        "Extreme" => Severity::Extreme,
        "Severe" => Severity::Severe,
        // Unknown severity is shown as moderate: neither hidden nor played down.
        "Moderate" | "Unknown" => Severity::Moderate,
        "Minor" => Severity::Minor,
        _ => {
            return Err(bad(
                "severity",
                &severity_s,
                "CAP allows Extreme, Severe, Moderate, Minor or Unknown",
            ))
        }
    };
    let expires_ms = match child_text(info, ns, "expires") {
        Some(e) => date_ms("expires", &e)?,
        None => sent_ms.saturating_add(DEFAULT_EXPIRY_MS),
    };
    let headline = child_text(info, ns, "headline").unwrap_or_else(|| event.clone());
    let mut text = child_text(info, ns, "description").unwrap_or_default();
    if let Some(instr) = child_text(info, ns, "instruction") {
        if !text.is_empty() {
            text.push_str("\n\n");
        }
        text.push_str(&instr);
    }
    let mut areas: Vec<String> = Vec::new();
    for area in children(info, ns, "area") {
        let a = one_line(&required(area, ns, "areaDesc")?);
        if !areas.contains(&a) {
            areas.push(a);
        }
    }
    let all_clear = children(info, ns, "responseType")
        .any(|r| r.text().is_some_and(|t| t.trim() == "AllClear"));
    let language = one_line(&language);
    if language.is_empty() || language.chars().count() > MAX_TAG {
        return Err(bad(
            "language",
            &language,
            "not a language tag such as en-US",
        ));
    }
    Ok(Info {
        text: AlertText {
            language,
            event: cut(&one_line(&event), MAX_TITLE),
            headline: cut(&one_line(&headline), MAX_TITLE),
            text: many_lines(&text),
            area: String::new(),
        },
        areas,
        severity,
        urgency,
        expires_ms,
        sender_name: child_text(info, ns, "senderName").map(|s| one_line(&s)),
        all_clear,
    })
}

fn bad(element: &'static str, value: &str, why: &str) -> CapError {
    CapError::Bad {
        element,
        value: value.chars().take(60).collect(),
        why: why.into(),
    }
}

fn children<'a, 'i>(
    node: Node<'a, 'i>,
    ns: &'a str,
    name: &'a str,
) -> impl Iterator<Item = Node<'a, 'i>> + 'a {
    node.children().filter(move |c| {
        c.is_element() && c.tag_name().name() == name && c.tag_name().namespace() == Some(ns)
    })
}

/// The trimmed text of the first child element `name`, if it has any.
fn child_text(node: Node, ns: &str, name: &str) -> Option<String> {
    let c = children(node, ns, name).next()?;
    let t: String = c
        .descendants()
        .filter(|d| d.is_text())
        .filter_map(|d| d.text())
        .collect();
    let t = t.trim();
    (!t.is_empty()).then(|| t.to_string())
}

fn required(node: Node, ns: &str, name: &'static str) -> Result<String, CapError> {
    child_text(node, ns, name).ok_or(CapError::Missing(name))
}

/// Whether the board takes `c` in a field of `lines`.
fn allowed(c: char, lines: Lines) -> bool {
    let mut b = [0u8; 4];
    check("text", c.encode_utf8(&mut b), 1, Required::No, lines).is_ok()
}

/// One line: runs of whitespace become one space; what the board refuses goes.
fn one_line(s: &str) -> String {
    let cleaned: String = s
        .chars()
        .map(|c| if c.is_whitespace() { ' ' } else { c })
        .filter(|c| allowed(*c, Lines::One))
        .collect();
    cleaned.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Several lines: line ends normalised, trailing spaces and runs of blank lines gone.
fn many_lines(s: &str) -> String {
    let s = s.replace("\r\n", "\n").replace('\r', "\n");
    let mut out: Vec<String> = Vec::new();
    for line in s.lines() {
        let l: String = line.chars().filter(|c| allowed(*c, Lines::Many)).collect();
        let l = l.trim().to_string();
        if l.is_empty() && out.last().is_none_or(String::is_empty) {
            continue;
        }
        out.push(l);
    }
    while out.last().is_some_and(String::is_empty) {
        out.pop();
    }
    out.join("\n")
}

/// `s` cut to `max` characters, with an ellipsis when cut.
fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out = out.trim_end().to_string();
    out.push('…');
    out
}

/// A CAP dateTime (`2026-11-30T18:00:00-05:00`; seconds fraction and `Z` accepted) in
/// ms since the Unix epoch.
fn date_ms(element: &'static str, s: &str) -> Result<u64, CapError> {
    aidmesh_protocol::calendar::parse_rfc3339(s).ok_or_else(|| {
        bad(
            element,
            s,
            "not a CAP date and time such as 2026-11-30T18:00:00-05:00",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2027-03-14T16:00Z: the samples in tests/data/cap are current then.
    const NOW: u64 = 1_805_040_000_000;

    fn sample(name: &str) -> Vec<u8> {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/data/cap")
            .join(name);
        std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    #[test]
    fn a_national_weather_service_warning_becomes_one_official_alert() {
        let m = parse(&sample("nws-flood-warning.xml"), NOW).unwrap();
        assert_eq!(m.version, "1.2");
        assert_eq!(m.msg_type, MsgType::Alert);
        assert!(!m.all_clear && m.references.is_empty() && m.left_out.is_empty());
        let Some(a) = &m.alert else { panic!("{m:?}") };
        assert_eq!(a.severity, Severity::Severe);
        assert_eq!(a.urgency, AlertUrgency::Immediate);
        assert_eq!(a.sender, "NWS Houston/Galveston TX");
        assert_eq!(a.expires_ms, Some(1_805_101_200_000)); // 2027-03-15T09:00Z
        let t = &a.texts[0];
        assert_eq!(
            (t.language.as_str(), t.event.as_str()),
            ("en-US", "Flood Warning")
        );
        assert!(
            t.headline.starts_with("Flood Warning issued March 14"),
            "{}",
            t.headline
        );
        assert!(t.text.contains("* WHAT...Moderate flooding") && t.text.contains("Turn around"));
        assert_eq!(t.area, "Wharton, TX");
        assert!(aidmesh_protocol::Body::OfficialAlert(a.clone())
            .check()
            .is_ok());
    }

    #[test]
    fn english_and_spanish_blocks_make_one_alert_in_both_languages() {
        let m = parse(&sample("nws-hurricane-en-es.xml"), NOW).unwrap();
        let Some(a) = &m.alert else { panic!("{m:?}") };
        assert_eq!(a.severity, Severity::Extreme);
        let langs: Vec<&str> = a.texts.iter().map(|t| t.language.as_str()).collect();
        assert_eq!(langs, ["en-US", "es-US"]);
        assert_eq!(a.text_for("es").unwrap().event, "Aviso de Huracán");
        assert_eq!(
            a.text_for("es-MX").unwrap().area,
            "San Juan y sus alrededores; Noreste"
        );
        assert_eq!(a.text_for("fr").unwrap().event, "Hurricane Warning");
        // CAP 1.1 with a namespace prefix reads the same.
        let m = parse(&sample("meteoalarm-wind-1.1.xml"), NOW).unwrap();
        assert_eq!(m.version, "1.1");
        let a = m.alert.unwrap();
        assert_eq!(a.texts.len(), 2);
        assert_eq!(
            a.text_for("en").unwrap().headline,
            "Orange warning: severe wind gusts in Zeeland"
        );
        assert_eq!(a.urgency, AlertUrgency::Future);
    }

    #[test]
    fn hostile_and_wrong_files_are_refused_by_name_without_reading_anything() {
        let t = std::time::Instant::now();
        assert_eq!(parse(&sample("hostile-xxe.xml"), NOW), Err(CapError::Dtd));
        assert_eq!(
            parse(&sample("hostile-billion-laughs.xml"), NOW),
            Err(CapError::Dtd)
        );
        assert!(
            t.elapsed() < std::time::Duration::from_secs(1),
            "took {:?}",
            t.elapsed()
        );
        assert!(matches!(
            parse(&sample("not-cap-atom.xml"), NOW),
            Err(CapError::NotCap { ref name, .. }) if name == "feed"
        ));
        assert_eq!(
            parse(&sample("missing-event.xml"), NOW),
            Err(CapError::Missing("event"))
        );
        assert!(
            matches!(parse(&sample("exercise.xml"), NOW), Err(CapError::NotForTheBoard(ref w)) if w.contains("an exercise"))
        );
        assert!(matches!(
            parse(b"water, bread", NOW),
            Err(CapError::NotXml(_))
        ));
        assert!(matches!(
            parse(&[0xff, 0xfe, 0], NOW),
            Err(CapError::NotXml(_))
        ));
        // Expired by now.
        let later = NOW + 30 * 86_400_000;
        assert!(
            matches!(parse(&sample("nws-flood-warning.xml"), later), Err(CapError::NotForTheBoard(ref w)) if w.contains("expired"))
        );
        // An alert without the namespace is not CAP.
        let bare = String::from_utf8(sample("nws-flood-warning.xml"))
            .unwrap()
            .replace(" xmlns=\"urn:oasis:names:tc:emergency:cap:1.2\"", "");
        assert!(
            matches!(parse(bare.as_bytes(), NOW), Err(CapError::NotCap { ref ns, .. }) if ns.is_empty())
        );
    }

    #[test]
    fn cap_dates_with_offsets() {
        assert_eq!(date_ms("sent", "1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(
            date_ms("sent", "2026-11-30T18:00:00-05:00"),
            date_ms("sent", "2026-11-30T23:00:00+00:00")
        );
        assert_eq!(
            date_ms("sent", "2000-03-01T00:00:00.250+00:00"),
            Ok(951_868_800_000)
        );
        for bad in [
            "2026-11-30",
            "2026-13-01T00:00:00Z",
            "2026-11-30T18:00:00+5",
            "x",
        ] {
            assert!(date_ms("sent", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn real_files_as_the_services_send_them() {
        // USGS, ISO-8859-1 as declared.
        let m = parse(&sample("usgs-earthquake-iso-8859-1.xml"), 1_350_259_200_000).unwrap();
        let a = m.alert.unwrap();
        assert!(a.texts[0].headline.contains("Usulután"), "{a:?}");
        // Environment Canada: an all-clear update of two earlier messages.
        let m = parse(
            &sample("ec-thunderstorm-allclear-update.xml"),
            1_336_001_400_000,
        )
        .unwrap();
        assert_eq!(m.msg_type, MsgType::Update);
        assert!(m.all_clear);
        assert_eq!(
            m.references,
            ["2.49.0.1.124.a3f342a4.2012", "2.49.0.1.124.60f31a3a.2012"]
        );
        assert_eq!(m.alert.unwrap().texts.len(), 2);
        // A declared encoding that is not what the bytes are is refused, naming it.
        let lie = b"<?xml version='1.0' encoding='UTF-8'?><alert>\xe1</alert>";
        assert!(matches!(parse(lie, 0), Err(CapError::NotXml(ref w)) if w.contains("UTF-8")));
        assert_eq!(
            declared_encoding(b"<?xml version=\"1.0\" encoding = 'ISO-8859-1' ?><a/>"),
            Some("ISO-8859-1".into())
        );
        assert_eq!(declared_encoding(b"<a/>"), None);
    }

    #[test]
    fn expiry_is_bounded_to_a_year() {
        let far = String::from_utf8(sample("nws-flood-warning.xml"))
            .unwrap()
            .replace("2027-03-15T03:00:00-06:00", "9999-12-31T23:59:59Z");
        let a = parse(far.as_bytes(), NOW).unwrap().alert.unwrap();
        assert_eq!(a.expires_ms, Some(NOW + MAX_EXPIRY_MS));
        let later = far.replace(
            "<sent>2027-03-14T09:51:00-06:00",
            "<sent>9999-01-01T00:00:00Z",
        );
        assert_ne!(later, far);
        let a = parse(later.as_bytes(), NOW).unwrap().alert.unwrap();
        assert_eq!(a.expires_ms, Some(NOW + MAX_EXPIRY_MS));
    }

    #[test]
    fn text_is_cleaned_and_cut_not_refused() {
        assert_eq!(
            one_line("  Flood\tWarning \u{202E}\n issued "),
            "Flood Warning issued"
        );
        assert_eq!(many_lines("a\r\n\r\n\r\nb  \n\n"), "a\n\nb");
        assert_eq!(cut("abcdef", 4), "abc…");
    }
}
