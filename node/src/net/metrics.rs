//! What the peer connections carry, counted by libp2p itself (issue 10, gossip
//! amplification): gossipsub's own metrics (messages received per topic, duplicates
//! included, and their bytes) and libp2p's bandwidth meter (every byte read from or
//! written to any stream of a peer connection: gossip with its IHAVE/IWANT/IDONTWANT/
//! GRAFT/PRUNE control, sync, peer exchange and protocol negotiation, above yamux and
//! noise). Both live in one prometheus registry owned by the network task; status
//! reads it through [`Meter::read`].

use std::sync::atomic::Ordering;
use std::sync::Arc;

use prometheus_client::registry::Registry;

use super::framed::Counters;

/// The counters of one node's peer connections since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Metered {
    /// Gossip messages received on the event topic, every copy (duplicates included).
    pub gossip_msgs_in: u64,
    /// Their bytes (each message's protobuf encoding: the event, the topic, framing).
    pub gossip_bytes_in: u64,
    /// Hub summaries received on the delivery topic (issue 11), every copy.
    pub summary_msgs_in: u64,
    /// Their bytes.
    pub summary_bytes_in: u64,
    /// Bytes of peer exchange read (counted by its codec: libp2p does not count
    /// per protocol).
    pub pex_bytes_in: u64,
    /// Bytes read from every stream of every peer connection.
    pub stream_bytes_in: u64,
    /// Bytes written to every stream of every peer connection.
    pub stream_bytes_out: u64,
}

/// The registry libp2p counts into, and the two topics read back from it.
pub struct Meter {
    registry: Registry,
    pex: Arc<Counters>,
    topic: String,
    delivery_topic: String,
}

impl std::fmt::Debug for Meter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Meter")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

/// gossipsub's names for a message received, duplicates included.
const MSGS: &str = "gossipsub_topic_msg_recv_counts_unfiltered_total";
const BYTES: &str = "gossipsub_topic_msg_recv_bytes_unfiltered_total";
/// libp2p-metrics' bandwidth counter (unit bytes).
const BANDWIDTH: &str = "libp2p_bandwidth_bytes_total";

impl Meter {
    /// An empty registry for the event topic `topic` and the summaries' topic.
    pub fn new(topic: &str, delivery_topic: &str) -> Meter {
        Meter {
            registry: Registry::default(),
            pex: Arc::default(),
            topic: topic.to_string(),
            delivery_topic: delivery_topic.to_string(),
        }
    }

    /// Where gossipsub registers its metrics.
    pub fn gossipsub(&mut self) -> &mut Registry {
        self.registry.sub_registry_with_prefix("gossipsub")
    }

    /// Where the bandwidth meter registers (it adds its own `libp2p` prefix).
    pub fn transport(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// The counters the peer-exchange codec counts into.
    pub fn pex_counters(&self) -> Arc<Counters> {
        self.pex.clone()
    }

    /// The counters now. prometheus-client has no way to read a value back but its
    /// text encoding, so this encodes the registry (a few kB) and picks the lines.
    pub fn read(&self) -> Metered {
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, &self.registry).is_err() {
            return Metered::default();
        }
        Metered {
            pex_bytes_in: self.pex.bytes_in.load(Ordering::Relaxed),
            ..parse(&text, &self.topic, &self.delivery_topic)
        }
    }
}

/// Picks the counters out of a registry's text encoding. A sample line is
/// `name{label="value",...} number`; a name absent (nothing received yet) reads 0.
fn parse(text: &str, topic: &str, delivery_topic: &str) -> Metered {
    let mut m = Metered::default();
    let hash = |t: &str| format!("hash=\"{t}\"");
    let (event_hash, delivery_hash) = (hash(topic), hash(delivery_topic));
    for line in text.lines() {
        let Some((name, rest)) = line.split_once('{') else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once('}') else {
            continue;
        };
        let Ok(value) = value.trim().parse::<f64>() else {
            continue;
        };
        let value = value as u64;
        let has = |l: &str| labels.split(',').any(|x| x == l);
        match name {
            MSGS if has(&event_hash) => m.gossip_msgs_in += value,
            BYTES if has(&event_hash) => m.gossip_bytes_in += value,
            MSGS if has(&delivery_hash) => m.summary_msgs_in += value,
            BYTES if has(&delivery_hash) => m.summary_bytes_in += value,
            BANDWIDTH if has("direction=\"Inbound\"") => m.stream_bytes_in += value,
            BANDWIDTH if has("direction=\"Outbound\"") => m.stream_bytes_out += value,
            _ => {}
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_each_topic_and_direction_and_ignores_the_rest() {
        let text = "\
# HELP gossipsub_topic_msg_recv_bytes_unfiltered Bytes received
# TYPE gossipsub_topic_msg_recv_bytes_unfiltered counter
gossipsub_topic_msg_recv_counts_unfiltered_total{hash=\"aidmesh/1/test\"} 7
gossipsub_topic_msg_recv_bytes_unfiltered_total{hash=\"aidmesh/1/test\"} 2000
gossipsub_topic_msg_recv_bytes_unfiltered_total{hash=\"aidmesh/1/test/delivery\"} 900
gossipsub_topic_msg_recv_counts_unfiltered_total{hash=\"aidmesh/1/test/delivery\"} 3
gossipsub_topic_msg_recv_bytes_total{hash=\"aidmesh/1/test\"} 555
libp2p_bandwidth_bytes_total{protocols=\"/ip4/tcp\",direction=\"Inbound\"} 10000
libp2p_bandwidth_bytes_total{protocols=\"/ip6/tcp\",direction=\"Inbound\"} 5
libp2p_bandwidth_bytes_total{protocols=\"/ip4/tcp\",direction=\"Outbound\"} 12000
garbage{ line
other{hash=\"aidmesh/1/test\"} notanumber
# EOF
";
        let m = parse(text, "aidmesh/1/test", "aidmesh/1/test/delivery");
        assert_eq!(
            m,
            Metered {
                gossip_msgs_in: 7,
                gossip_bytes_in: 2000,
                summary_msgs_in: 3,
                summary_bytes_in: 900,
                pex_bytes_in: 0,
                stream_bytes_in: 10_005,
                stream_bytes_out: 12_000,
            }
        );
    }
}
