//! Welfare by text: `OK` / `HELP` from a number on the welfare register as a check-in,
//! and the round's question to everyone due one.

use aidmesh_protocol::body::{CheckIn, Outcome};
use aidmesh_protocol::calendar;
use aidmesh_protocol::sms::{self as text, Lang};
use aidmesh_protocol::Body;

use super::db::Suggestion;
use super::inbox::Received;
use super::replies::reply_number;
use super::{lock, Gateway, PassError};

impl Gateway {
    /// `OK` / `HELP` from a number: a check-in if it is on the welfare register, else
    /// review.
    pub(super) fn welfare(
        &self,
        r: &Received,
        fp: &str,
        body: &str,
        help: Option<String>,
        lang: Lang,
        now: u64,
    ) -> Result<&'static str, PassError> {
        let person = self.engine.with_view(|v| {
            v.people()
                .into_iter()
                .find(|p| text::same_number(&p.person.phone, &r.phone))
                .map(|p| p.id)
        });
        let Some(person) = person else {
            let (reason, suggestion) = match &help {
                None => (
                    "OK from a number not on the welfare register".to_string(),
                    None,
                ),
                Some(what) => (
                    "HELP from a number not on the welfare register".to_string(),
                    Some(Suggestion {
                        kind: "need".into(),
                        title: if what.is_empty() {
                            "Help needed (texted HELP)".into()
                        } else {
                            text::one_line(what, aidmesh_protocol::body::MAX_TITLE)
                        },
                        category: text::guess_category(what).name().into(),
                        place: String::new(),
                        urgency: "high".into(),
                    }),
                ),
            };
            self.to_review(r, fp, body, reason, suggestion, lang, now)?;
            return Ok("review");
        };
        let _w = lock(&self.write);
        let known = lock(&self.posted).contains_key(fp);
        if !known {
            let note = format!("by SMS; text {fp}.");
            let check = |outcome| CheckIn {
                person,
                outcome,
                note: note.clone(),
                by: "self".into(),
            };
            let posted = match &help {
                None => self.engine.post(Body::CheckIn(check(Outcome::Safe))),
                Some(what) => {
                    let what = if what.is_empty() {
                        "asked for help by text".to_string()
                    } else {
                        what.chars()
                            .take(aidmesh_protocol::body::MAX_NOTE)
                            .collect()
                    };
                    self.engine
                        .check_in(check(Outcome::NeedsHelp(what)))
                        .map(|(c, _)| c)
                }
            };
            match posted {
                Ok(e) => {
                    lock(&self.posted).insert(fp.to_string(), e.id());
                }
                Err(e) => {
                    self.to_review(
                        r,
                        fp,
                        body,
                        format!("check-in could not be recorded: {e}"),
                        None,
                        lang,
                        now,
                    )?;
                    return Ok("review");
                }
            }
        }
        let hub = self.hub_name();
        self.queue_reply(
            &format!("got:{}", r.key),
            &r.phone,
            &text::reply_checkin(lang, help.is_none(), &hub),
            now,
        )?;
        Ok(if help.is_none() { "safe" } else { "help" })
    }

    /// Texts everyone on the welfare register with a phone who is due a check-in
    /// (standing other than ok) the round's question, once a day each. Returns how many
    /// were queued and how many have no usable number.
    pub fn round(&self) -> Result<(usize, usize), sled::Error> {
        let now = self.engine.now_ms();
        let people = self.engine.with_view(|v| v.people());
        let hub = self.hub_name();
        let (mut queued, mut no_number) = (0, 0);
        for w in aidmesh_protocol::welfare::assess_all(&people, now) {
            if w.standing == aidmesh_protocol::welfare::Standing::Ok {
                continue;
            }
            let phone = w.person.person.phone.trim().to_string();
            if phone.is_empty() {
                continue;
            }
            let Some(number) = reply_number(&phone) else {
                no_number += 1;
                continue;
            };
            let lang = if w.person.person.note.to_lowercase().contains("español") {
                Lang::Es
            } else {
                Lang::En
            };
            let why = format!(
                "round:{}:{}",
                w.person.id.to_hex(),
                calendar::basic_date(now)
            );
            if self.queue_reply(&why, &number, &text::round_question(lang, &hub), now)? {
                queued += 1;
            }
        }
        self.db.flush()?;
        Ok((queued, no_number))
    }
}
