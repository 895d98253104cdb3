//! Nodes of another community heard nearby (by their mDNS advert), and what differs
//! (issue 29). The right words in the wrong order, or a community name spelt another
//! way, make another community key: the hub stays alone, and the coordinator must be
//! told where they look (`status`, the page), not only in a log line.
//!
//! Besides `c` (a hash of the community key), an advert carries two tags that tell the
//! cases apart without giving the passphrase away (docs/protocol.md 9, docs/security.md):
//! - `n`: BLAKE3 of the normalised community name (8 bytes, hex): equal names give
//!   equal tags;
//! - `w`: BLAKE3 of Argon2id (as the community key, with its own salt) of the
//!   normalised words *sorted*, without the name (16 bytes, hex): the same six words,
//!   in any order and under any name, give the same tag.
//!
//! Same `n` and `w` but another `c`: the same words in another order. Same `n`,
//! another `w`: other words. Same `w`, another `n`: another community name. Neither:
//! another community (a neighbouring one, maybe on purpose). An advert of an older
//! node has neither tag: "another community".

use std::collections::HashMap;

use serde::Serialize;

/// At most this many nodes are remembered; the one heard longest ago is forgotten.
const MAX_NODES: usize = 16;

/// The context of the name tag.
const NAME_CONTEXT: &str = "aidmesh mdns name tag v1";
/// The context of the words tag.
const WORDS_CONTEXT: &str = "aidmesh mdns sorted words tag v1";
/// Passed to the community key derivation in place of a community name, so the words
/// tag's Argon2id has a salt no community's key has (a normalised name is trimmed, so
/// it never starts with a NUL).
const WORDS_SALT_NAME: &str = "\0sorted words v1";

/// The name tag `n` of a community name.
pub fn name_tag(name: &str) -> String {
    let norm = aidmesh_protocol::community::normalise_name(name);
    let h = blake3::derive_key(NAME_CONTEXT, norm.as_bytes());
    hex::encode(&h[..8])
}

/// The words tag `w` of a passphrase: slow (one Argon2id, as the community key).
pub fn words_tag(passphrase: &str) -> String {
    let norm = aidmesh_protocol::community::normalise_passphrase(passphrase);
    let mut words: Vec<&str> = norm.split(' ').filter(|w| !w.is_empty()).collect();
    words.sort_unstable();
    let k = aidmesh_protocol::community::derive_key(WORDS_SALT_NAME, &words.join(" "));
    let h = blake3::derive_key(WORDS_CONTEXT, &k);
    hex::encode(&h[..16])
}

/// What differs between another community's node and ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Differs {
    /// The same name and the same words, in another order.
    WordOrder,
    /// The same name, other words.
    Words,
    /// The same words (in some order), another community name.
    Name,
    /// Another name and other words (or an older node that does not say).
    Community,
    /// Unknown: only its UDP beacon was heard, and it failed our community key's MAC.
    /// A beacon carries no name or words tag (it is all under that MAC), so it may be
    /// a neighbouring community or one of ours joined with other words, the words in
    /// another order or another name.
    Unknown,
}

/// A beacon-only entry ([`Differs::Unknown`]) not heard again for this long is dropped
/// from the list: beacons come every 30 s, and a hub that joined again with the right
/// words passes the MAC from then on.
pub const BEACON_KEPT_MS: u64 = 3 * 60_000;

/// Our own tags, to compare adverts with.
#[derive(Debug, Clone)]
pub struct Tags {
    /// `c`: the community key's tag.
    pub key: String,
    /// `n`.
    pub name: String,
    /// `w`.
    pub words: String,
}

impl Tags {
    /// What differs in an advert with tags `c`, `n`, `w`; `None`: our community.
    pub fn judge(&self, c: Option<&str>, n: Option<&str>, w: Option<&str>) -> Option<Differs> {
        if c == Some(self.key.as_str()) {
            return None;
        }
        let same_name = n == Some(self.name.as_str());
        let same_words = w == Some(self.words.as_str());
        Some(match (same_name, same_words) {
            (true, true) => Differs::WordOrder,
            (true, false) => Differs::Words,
            (false, true) => Differs::Name,
            (false, false) => Differs::Community,
        })
    }
}

/// What a coordinator reads, in plain words.
pub fn says(ip: &str, d: Differs) -> String {
    match d {
        Differs::WordOrder => format!(
            "a hub at {ip} has this community's name and the same six words in another order, so it cannot connect: the order counts; check the card on both hubs (`aidmesh passphrase`) and join again with the words in the card's order"
        ),
        Differs::Words => format!(
            "a hub at {ip} has this community's name but other words, so it cannot connect: check the six words on both hubs (`aidmesh passphrase`)"
        ),
        Differs::Name => format!(
            "a hub at {ip} has the same six words but another community name, so it cannot connect: check the name on both hubs (`aidmesh passphrase`; spelling counts, case and spaces do not)"
        ),
        Differs::Community => format!(
            "a hub of another community (another name and other words) is at {ip}; it is not one of ours"
        ),
        Differs::Unknown => format!(
            "a hub at {ip} is in another community, or has other words (or the words in another order, or another community name): its beacons are not made with this community's key, so it cannot connect; if it should be one of ours, check the card on both hubs (`aidmesh passphrase`)"
        ),
    }
}

/// One node of another community heard nearby.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Nearby {
    /// Its IP address (the first its advert gave).
    pub ip: String,
    /// What differs.
    pub differs: Differs,
    /// The same in plain words.
    pub says: String,
    /// Wall-clock ms when last heard.
    pub last_ms: u64,
    #[serde(skip)]
    peer: String,
}

/// The record the network task keeps, bounded.
#[derive(Debug, Default)]
pub struct NearbyLog {
    by_peer: HashMap<String, Nearby>,
}

impl NearbyLog {
    /// Notes node `peer` at `ip`, of another community differing by `d`, heard at
    /// `now_ms`. Returns whether it is new (or now differs otherwise), to log once.
    pub fn note(&mut self, peer: &str, ip: &str, d: Differs, now_ms: u64) -> bool {
        if !self.by_peer.contains_key(peer) && self.by_peer.len() >= MAX_NODES {
            if let Some(oldest) = self
                .by_peer
                .values()
                .min_by_key(|n| n.last_ms)
                .map(|n| n.peer.clone())
            {
                self.by_peer.remove(&oldest);
            }
        }
        let fresh = self.by_peer.get(peer).is_none_or(|n| n.differs != d);
        self.by_peer.insert(
            peer.to_string(),
            Nearby {
                ip: ip.to_string(),
                differs: d,
                says: says(ip, d),
                last_ms: now_ms,
                peer: peer.to_string(),
            },
        );
        fresh
    }

    /// A node of another community that is now one of ours (it joined again) is
    /// forgotten.
    pub fn forget(&mut self, peer: &str) {
        self.by_peer.remove(peer);
    }

    /// Every node, the ones that look like a mistake first (word order, name, words),
    /// then most recent first. A beacon-only entry ([`Differs::Unknown`]) is left out
    /// when an mDNS advert from the same address says more, or when it was last heard
    /// more than [`BEACON_KEPT_MS`] before `now_ms`.
    pub fn list(&self, now_ms: u64) -> Vec<Nearby> {
        let rank = |d: Differs| match d {
            Differs::WordOrder => 0,
            Differs::Name => 1,
            Differs::Words => 2,
            Differs::Unknown => 3,
            Differs::Community => 4,
        };
        let told: std::collections::HashSet<&str> = self
            .by_peer
            .values()
            .filter(|n| n.differs != Differs::Unknown)
            .map(|n| n.ip.as_str())
            .collect();
        let mut v: Vec<Nearby> = self
            .by_peer
            .values()
            .filter(|n| {
                n.differs != Differs::Unknown
                    || (!told.contains(n.ip.as_str())
                        && now_ms.saturating_sub(n.last_ms) <= BEACON_KEPT_MS)
            })
            .cloned()
            .collect();
        v.sort_by(|a, b| {
            rank(a.differs)
                .cmp(&rank(b.differs))
                .then(b.last_ms.cmp(&a.last_ms))
                .then_with(|| a.ip.cmp(&b.ip))
        });
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WORDS: &str = "river ocean garden lemon rocket harbor";

    fn tags(name: &str, words: &str) -> Tags {
        Tags {
            key: hex::encode(aidmesh_protocol::community::derive_key(name, words)),
            name: name_tag(name),
            words: words_tag(words),
        }
    }

    #[test]
    fn each_mistake_is_told_apart_and_our_community_is_not_one() {
        let ours = tags("Elm Street", WORDS);
        let judge = |t: &Tags| ours.judge(Some(&t.key), Some(&t.name), Some(&t.words));
        assert_eq!(
            judge(&tags(
                " elm street ",
                "River  OCEAN garden lemon rocket harbor"
            )),
            None
        );
        assert_eq!(
            judge(&tags(
                "Elm Street",
                "ocean river garden lemon rocket harbor"
            )),
            Some(Differs::WordOrder)
        );
        assert_eq!(
            judge(&tags(
                "Elm Street",
                "river ocean garden lemon rocket tunnel"
            )),
            Some(Differs::Words)
        );
        assert_eq!(judge(&tags("Elm St", WORDS)), Some(Differs::Name));
        assert_eq!(
            judge(&tags("Elm St", "harbor ocean garden lemon rocket river")),
            Some(Differs::Name)
        );
        assert_eq!(
            judge(&tags("Oak Road", "able about above absent absorb abstract")),
            Some(Differs::Community)
        );
        // An older node's advert: only `c`.
        assert_eq!(ours.judge(Some("00"), None, None), Some(Differs::Community));
    }

    #[test]
    fn the_tags_give_neither_the_key_nor_the_words() {
        let t = tags("Elm Street", WORDS);
        let key = hex::encode(aidmesh_protocol::community::derive_key("Elm Street", WORDS));
        assert_eq!(t.words.len(), 32);
        assert_eq!(t.name.len(), 16);
        assert!(!key.contains(&t.words) && !key.contains(&t.name));
        for w in WORDS.split(' ') {
            assert!(!t.words.contains(&hex::encode(w)));
        }
    }

    #[test]
    fn the_log_is_bounded_and_says_each_node_once() {
        let mut log = NearbyLog::default();
        assert!(log.note("p1", "10.0.0.7", Differs::WordOrder, 1));
        assert!(!log.note("p1", "10.0.0.7", Differs::WordOrder, 2));
        for i in 0..40 {
            log.note(&format!("x{i}"), "10.0.0.9", Differs::Community, 10 + i);
        }
        assert_eq!(log.list(50).len(), MAX_NODES);
        log.forget("x39");
        assert!(log.list(50).iter().all(|n| n.last_ms != 49));
    }

    #[test]
    fn a_beacon_only_hub_is_named_by_address_until_an_advert_says_more_or_it_stops() {
        let mut log = NearbyLog::default();
        log.note("beacon 10.0.0.7", "10.0.0.7", Differs::Unknown, 1_000);
        let l = log.list(1_000);
        assert_eq!(l.len(), 1);
        assert!(
            l[0].says
                .contains("a hub at 10.0.0.7 is in another community, or has other words"),
            "{}",
            l[0].says
        );
        // Beacons stop (it joined again with the right words, or left).
        assert!(log.list(1_000 + BEACON_KEPT_MS + 1).is_empty());
        // Its mDNS advert says what differs: the beacon's line goes.
        log.note("p7", "10.0.0.7", Differs::WordOrder, 2_000);
        let l = log.list(2_000);
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].differs, Differs::WordOrder);
    }
}
