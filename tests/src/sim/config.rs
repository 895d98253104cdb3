//! The town and the protocol's parameters ([`Config`]), and the seeded [`Rng`] every
//! random choice comes from.

/// SplitMix64: small, fast, and the same sequence on every machine.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Uniform in `lo..=hi`.
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }

    /// Exponentially distributed with the given mean.
    pub fn exp(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.unit()).ln()
    }

    /// `k` distinct items of `v` in random order (all of them if `k >= v.len()`).
    pub(super) fn sample<T: Copy>(&mut self, v: &[T], k: usize) -> Vec<T> {
        let mut v = v.to_vec();
        let k = k.min(v.len());
        for i in 0..k {
            let j = i + self.below(v.len() - i);
            v.swap(i, j);
        }
        v.truncate(k);
        v
    }
}

/// One kind of link.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkSpec {
    /// One-way latency range, ms.
    pub latency_ms: (u64, u64),
    /// Probability that a TCP segment is lost.
    pub loss: f64,
    /// Bits per second, each direction.
    pub bandwidth_bps: u64,
}

/// Gossipsub parameters (defaults: as `node/src/net/transport.rs` configures
/// libp2p-gossipsub 0.50 for LANs since issue 28: mesh degree 4 (3-6), IHAVE of the
/// last heartbeat window to 2 non-mesh peers, publish to the mesh only, 1 s
/// heartbeat (700 ms before); the summaries' mesh is [`super::SummaryParams::mesh`]).
#[derive(Debug, Clone, PartialEq)]
pub struct GossipParams {
    /// Target mesh degree (D).
    pub mesh_n: usize,
    /// Below this, a heartbeat grafts up to D.
    pub mesh_n_low: usize,
    /// At or above this, a heartbeat prunes down to D.
    pub mesh_n_high: usize,
    /// Least number of non-mesh peers sent IHAVE per heartbeat.
    pub gossip_lazy: usize,
    /// Share of non-mesh peers sent IHAVE per heartbeat.
    pub gossip_factor: f64,
    /// Heartbeat windows whose message ids go into IHAVE.
    pub history_gossip: usize,
    /// Heartbeat windows kept to answer IWANT.
    pub history_length: usize,
    /// Heartbeat interval, ms.
    pub heartbeat_ms: u64,
    /// Publish to every connected peer (true), or to the mesh only.
    pub flood_publish: bool,
    /// Long links are gossipsub *explicit peers* at both ends (each end names the
    /// other with `--peer`, which the node makes explicit): every event is sent
    /// across them at once, and they are never in the mesh.
    pub explicit_long: bool,
}

impl Default for GossipParams {
    fn default() -> Self {
        GossipParams {
            mesh_n: 4,
            mesh_n_low: 3,
            mesh_n_high: 6,
            gossip_lazy: 2,
            gossip_factor: 0.0,
            history_gossip: 1,
            history_length: 5,
            heartbeat_ms: 1_000,
            flood_publish: false,
            explicit_long: true,
        }
    }
}

/// Hubs going down and up.
#[derive(Debug, Clone, PartialEq)]
pub struct Churn {
    /// Mean time a hub stays up, s (exponential).
    pub mean_up_s: f64,
    /// Mean time a hub stays down, s (exponential).
    pub mean_down_s: f64,
}

/// The town and the protocol's parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Seed of every random choice.
    pub seed: u64,
    /// Number of hubs.
    pub hubs: usize,
    /// Hubs per LAN segment (cluster), uniform in this range.
    pub cluster_size: (usize, usize),
    /// Long links besides the ones that join the clusters into one tree.
    pub extra_long_links: usize,
    /// Links inside a cluster (every hub of a LAN connects to every other).
    pub lan: LinkSpec,
    /// Long links between clusters (one hub at each end).
    pub long: LinkSpec,
    /// Gossipsub.
    pub gossip: GossipParams,
    /// Periodic anti-entropy per peer (`--sync-every`), ms.
    pub sync_every_ms: u64,
    /// Churn, if any.
    pub churn: Option<Churn>,
    /// Characters of details text in each posted need (sets the event size).
    pub details_chars: usize,
    /// Length of the gossip topic (`aidmesh/1/<community>`).
    pub topic_len: usize,
    /// A hub asks only one of its sessions at a time for an id: ids another session
    /// claimed are looked at once more when the rest is done, then left to it (or to
    /// the next periodic session), as the node's shared sync claims
    /// (`node/src/net/sync.rs`) do. `false`: the old way, each session fetches
    /// whatever the hub does not hold when it checks.
    pub fetch_once: bool,
    /// Hub summaries (issue 11) gossiped on their own topic, if modelled (off in
    /// [`Config::town`]: the node sends them, but the event figures are compared
    /// without them; `bench_sim wire` and `city` turn them on).
    pub summaries: Option<super::SummaryParams>,
}

impl Config {
    /// The town of the report: `hubs` hubs in LANs of 6–14, 10% segment loss on the
    /// LANs (crowded 2.4 GHz), long links of 1 Mbit/s with 5% loss, the node's defaults.
    pub fn town(hubs: usize, seed: u64) -> Config {
        Config {
            seed,
            hubs,
            cluster_size: (6, 14),
            extra_long_links: hubs / 15,
            lan: LinkSpec {
                latency_ms: (1, 5),
                loss: 0.10,
                bandwidth_bps: 10_000_000,
            },
            long: LinkSpec {
                latency_ms: (5, 20),
                loss: 0.05,
                bandwidth_bps: 1_000_000,
            },
            gossip: GossipParams::default(),
            sync_every_ms: 30_000,
            churn: None,
            details_chars: 120,
            topic_len: 19,
            fetch_once: true,
            summaries: None,
        }
    }
}
