//! Replies: queued once per reason in the gateway's database, cut to one segment,
//! written into the daemon's outbox in order within the daily cap, and the texts that
//! tell a sender their item was claimed, is in progress or fulfilled.

use std::io::Write;
use std::path::Path;

use aidmesh_protocol::body::Status;
use aidmesh_protocol::calendar;
use aidmesh_protocol::sms::{self as text, Kind, Lang};
use aidmesh_protocol::EventId;

use super::db::{self, Reply, Sender};
use super::{Gateway, PassError};

/// A number fit for an outbox file name: `+` and digits, spaces, dashes, dots and
/// brackets dropped. `None`: no reply can go there (an operator's name such as
/// "Vodafone" or "BANK123", an empty sender).
pub(super) fn reply_number(phone: &str) -> Option<String> {
    let p = phone.trim();
    if p.chars().any(|c| c.is_alphabetic()) {
        return None;
    }
    aidmesh_protocol::sms::normalise_number(p)
}

impl Gateway {
    /// Queues a reply (once per `why`); none to a number that said STOP or is not a
    /// phone number.
    pub(super) fn queue_reply(
        &self,
        why: &str,
        phone: &str,
        body: &str,
        now: u64,
    ) -> Result<bool, sled::Error> {
        let Some(to) = reply_number(phone) else {
            return Ok(false);
        };
        if self.db.stopped.contains_key(db::number_key(phone))? {
            return Ok(false);
        }
        let seq = self.db.next_id()?;
        let file = format!(
            "OUTB{}_{}_{:03}_{to}_aidmesh{seq}.txt",
            calendar::basic_date(now),
            calendar::basic_time(now),
            seq % 1000
        );
        self.db.queue(
            why,
            &Reply {
                to,
                text: text::one_segment(body),
                file,
                queued_ms: now,
            },
        )
    }

    /// This hub's name: its newest announced hub, else "<community> hub".
    pub(super) fn hub_name(&self) -> String {
        let me = self.engine.identity().author();
        self.engine
            .with_view(|v| {
                v.hubs()
                    .into_iter()
                    .filter(|h| h.author == me)
                    .max_by_key(|h| h.at)
                    .map(|h| h.hub.name)
            })
            .unwrap_or_else(|| format!("{} hub", self.engine.community()))
    }

    /// Writes waiting replies into the daemon's outbox, in order, within the day's cap.
    pub(super) fn hand_over(&self) -> Result<usize, PassError> {
        let today = format!("out:{}", calendar::basic_date(self.engine.now_ms()));
        let mut written = 0;
        for kv in self.db.outq.iter() {
            let (k, v) = kv?;
            let Some(reply) = db::parse::<Reply>(&v) else {
                self.db.outq.remove(k)?;
                continue;
            };
            if self.db.stopped.contains_key(db::number_key(&reply.to))? {
                self.db.outq.remove(k)?;
                continue;
            }
            let already = [
                Some(&self.cfg.outbox),
                self.cfg.sent.as_ref(),
                self.cfg.error.as_ref(),
            ]
            .into_iter()
            .flatten()
            .any(|d| d.join(&reply.file).exists());
            if !already {
                if self
                    .opts
                    .daily_cap
                    .is_some_and(|cap| self.db.counted(&today) >= u64::from(cap))
                {
                    break; // waits, in order, for tomorrow
                }
                write_outbox(&self.cfg.outbox, &reply).map_err(|source| PassError::File {
                    path: reply.file.clone().into(),
                    source,
                })?;
                self.db.count(&today)?;
                written += 1;
            }
            self.db.outq.remove(k)?;
        }
        if written > 0 {
            if let Ok(d) = std::fs::File::open(&self.cfg.outbox) {
                let _ = d.sync_all();
            }
        }
        self.db.flush()?;
        Ok(written)
    }

    /// Texts the senders of every texted item that changed since they were last told.
    pub(super) fn tell_all_changes(&self) -> Result<(), sled::Error> {
        let ids: Vec<EventId> = self
            .db
            .senders
            .iter()
            .keys()
            .filter_map(|k| k.ok().and_then(|k| <[u8; 32]>::try_from(k.as_ref()).ok()))
            .map(EventId)
            .collect();
        for id in ids {
            self.tell_changes(&id)?;
        }
        Ok(())
    }

    /// Texts the sender of item `id` (if it came by text to this hub) once per applied
    /// change to claimed, in progress or fulfilled that they were not told of yet.
    pub(super) fn tell_changes(&self, id: &EventId) -> Result<(), sled::Error> {
        let Some(raw) = self.db.senders.get(id.0)? else {
            return Ok(());
        };
        let Some(mut sender) = db::parse::<Sender>(&raw) else {
            return Ok(());
        };
        let now = self.engine.now_ms();
        let Some(item) = self.engine.with_view(|v| v.item(id, now)) else {
            return Ok(());
        };
        let hubs = self.engine.with_view(|v| v.hubs());
        let mut changed = false;
        for c in item.history.iter().filter(|c| c.applied) {
            let hex = c.id.to_hex();
            if sender.notified.contains(&hex) {
                continue;
            }
            let change = match c.status {
                Status::Claimed => text::Change::Claimed,
                Status::InProgress => text::Change::InProgress,
                Status::Fulfilled => text::Change::Fulfilled,
                _ => {
                    sender.notified.push(hex);
                    changed = true;
                    continue;
                }
            };
            let hub = hubs
                .iter()
                .filter(|h| h.author == c.author)
                .max_by_key(|h| h.at)
                .map_or_else(|| "a hub".to_string(), |h| h.hub.name.clone());
            let kind = if sender.kind == "offer" {
                Kind::Offer
            } else {
                Kind::Need
            };
            let body = text::reply_change(
                Lang::from_code(&sender.lang),
                kind,
                change,
                c.by().unwrap_or(""),
                &hub,
                &sender.title,
                &sender.reference,
            );
            self.queue_reply(&format!("change:{hex}"), &sender.phone, &body, now)?;
            sender.notified.push(hex);
            changed = true;
        }
        if changed {
            self.db.senders.insert(id.0, db::json(&sender))?;
            self.db.flush()?;
        }
        Ok(())
    }
}

/// Writes a reply into the outbox: UTF-16LE with a byte-order mark (read the same
/// whatever the daemon's locale), under a dot name first and renamed into place, so
/// the daemon never reads half a file.
pub(super) fn write_outbox(outbox: &Path, reply: &Reply) -> std::io::Result<()> {
    let tmp = outbox.join(format!(".aidmesh-{}", reply.file));
    let mut bytes = vec![0xff, 0xfe];
    for u in reply.text.encode_utf16() {
        bytes.extend_from_slice(&u.to_le_bytes());
    }
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, outbox.join(&reply.file))
}
