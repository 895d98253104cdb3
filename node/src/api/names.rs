//! Hub names for authors and peers: where a hub has announced itself, the API shows its
//! name next to (never instead of) the key, so people read "Riverside hub", not
//! `12D3KooW…` or hex. A node's libp2p key is its author key, so one announcement names
//! both.

use std::collections::HashMap;

use aidmesh_protocol::identity::AuthorId;
use aidmesh_protocol::time::Timestamp;
use aidmesh_protocol::view::{Item, View};
use serde_json::{json, Value};

use crate::net::PeerStatus;

/// The newest announced hub name of each author.
#[derive(Debug, Default)]
pub(super) struct HubNames {
    by_author: HashMap<AuthorId, String>,
}

impl HubNames {
    /// Names from every hub announcement on the board.
    pub(super) fn of(view: &View) -> HubNames {
        let mut newest: HashMap<AuthorId, (Timestamp, String)> = HashMap::new();
        for h in view.hubs() {
            let slot = newest.entry(h.author).or_insert((h.at, h.hub.name.clone()));
            if h.at > slot.0 {
                *slot = (h.at, h.hub.name.clone());
            }
        }
        HubNames {
            by_author: newest.into_iter().map(|(a, (_, n))| (a, n)).collect(),
        }
    }

    /// The hub name of an author, if it announced one.
    pub(super) fn author(&self, a: &AuthorId) -> Option<&str> {
        self.by_author.get(a).map(String::as_str)
    }

    /// Adds `author_hub`, `holder_hub` and each history entry's `hub` to an item's JSON.
    pub(super) fn name_item(&self, out: &mut Value, item: &Item) {
        out["author_hub"] = json!(self.author(&item.author));
        out["holder_hub"] = json!(item.holder.and_then(|h| self.author(&h)));
        if let Some(hist) = out["history"].as_array_mut() {
            for (h, c) in hist.iter_mut().zip(&item.history) {
                h["hub"] = json!(self.author(&c.author));
            }
        }
    }

    /// Peers as JSON, each with the `hub` it announced (or null).
    pub(super) fn peers(&self, peers: &[PeerStatus]) -> Vec<Value> {
        // Peer ids are derived here, not in `of`, which runs under the engine's lock.
        let by_peer: HashMap<String, &str> = self
            .by_author
            .iter()
            .filter_map(|(a, n)| Some((peer_id_of(a)?, n.as_str())))
            .collect();
        peers
            .iter()
            .map(|p| {
                let mut v = json!(p);
                v["hub"] = json!(by_peer.get(&p.peer_id));
                v
            })
            .collect()
    }
}

/// The libp2p peer id of a node whose author key is `a` (both come from one seed).
fn peer_id_of(a: &AuthorId) -> Option<String> {
    let key = libp2p::identity::ed25519::PublicKey::try_from_bytes(&a.0).ok()?;
    Some(
        libp2p::identity::PublicKey::from(key)
            .to_peer_id()
            .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use aidmesh_protocol::Identity;

    #[test]
    fn an_author_key_gives_the_peer_id_of_the_same_seed() {
        let seed = [9u8; 32];
        let author = Identity::from_seed(seed).author();
        let kp = libp2p::identity::Keypair::ed25519_from_bytes(seed).unwrap();
        assert_eq!(
            peer_id_of(&author),
            Some(kp.public().to_peer_id().to_string())
        );
    }
}
