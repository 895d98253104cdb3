//! Hub summaries on gossip (issue 11): the network task's side of
//! [`crate::delivery`]. It publishes our summary when one is due (soon after a change,
//! else as a keep-alive), judges the summaries peers gossip (a signature check, no
//! disk), and keeps the delivery counts up with what we store and who is connected.

use std::sync::Arc;
use std::time::{Duration, Instant};

use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance, TopicHash};
use libp2p::PeerId;
use tracing::debug;

use crate::delivery::{Delivery, Received};
use crate::engine::{Engine, NewEvent};

/// Our hub summaries and the peers'.
pub(super) struct Summaries {
    engine: Arc<Engine>,
    delivery: Arc<Delivery>,
    /// The summaries' gossip topic ([`super::delivery_topic`]).
    topic: IdentTopic,
    /// Whether our summaries are published (off only in the test bed's measurements
    /// of event gossip alone, [`super::transport::GossipProfile`]).
    publish: bool,
}

impl Summaries {
    /// Summaries on `topic`; ours published only if `publish`.
    pub(super) fn new(
        engine: Arc<Engine>,
        delivery: Arc<Delivery>,
        topic: IdentTopic,
        publish: bool,
    ) -> Summaries {
        Summaries {
            engine,
            delivery,
            topic,
            publish,
        }
    }

    /// Counts an event we stored.
    pub(super) fn observe(&self, ne: &NewEvent) {
        self.delivery.observe(&ne.event, self.engine.wall_ms());
    }

    /// Notes whether `peer` is connected.
    pub(super) fn set_connected(&self, peer: PeerId, connected: bool) {
        self.delivery.set_connected(peer, connected);
    }

    /// When our next summary is due.
    pub(super) fn next_due(&self, now: Instant) -> Instant {
        let wall = self.engine.wall_ms();
        now + Duration::from_millis(self.delivery.next_summary_ms().saturating_sub(wall))
    }

    /// Publishes our hub summary if one is due.
    pub(super) fn send_due(&self, gossipsub: &mut gossipsub::Behaviour) {
        let (wall, made) = (self.engine.wall_ms(), self.engine.now_ms_unlocked());
        let Some(bytes) = self
            .delivery
            .summary_due(self.engine.identity(), wall, made)
        else {
            return;
        };
        if !self.publish {
            return;
        }
        match gossipsub.publish(self.topic.clone(), bytes) {
            Ok(_) | Err(gossipsub::PublishError::Duplicate) => {}
            Err(e) => tracing::trace!(error = %e, "hub summary not sent; the next one will be"),
        }
    }

    /// Whether a gossip message on `topic` is a hub summary.
    pub(super) fn is_summary(&self, topic: &TopicHash) -> bool {
        *topic == self.topic.hash()
    }

    /// Takes a peer's hub summary; passed on only if it is new knowledge.
    pub(super) fn receive(&self, data: &[u8], source: PeerId) -> MessageAcceptance {
        let got = self.delivery.receive(
            data,
            Some(source),
            self.engine.wall_ms(),
            self.engine.now_ms_unlocked(),
        );
        match got {
            Received::Newer => MessageAcceptance::Accept,
            Received::Stale => MessageAcceptance::Ignore,
            Received::Refused(e) => {
                debug!(peer = %source, error = %e, "refused a hub summary");
                MessageAcceptance::Reject
            }
        }
    }

    /// Some new events were missed: what delivery counted from them is dropped
    /// (delivery reads what we hold from the store's index, so nothing is re-read).
    pub(super) fn reload(&self) {
        self.delivery.mark_stale();
        self.delivery.reload();
    }
}
