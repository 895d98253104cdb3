//! Bytes on the wire: the kinds of traffic counted ([`Cat`]) and the encoded sizes of
//! gossip RPCs and sync messages, with their framing.

use super::EPOCH_MS;

/// Kinds of traffic, for the byte counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cat {
    /// Gossip messages carrying events (first copies and duplicates).
    GossipData = 0,
    /// IHAVE, IWANT, GRAFT, PRUNE, subscriptions.
    GossipControl = 1,
    /// Sync reconciliation rounds.
    SyncReconcile = 2,
    /// Sync fetch requests and the events answered.
    SyncFetch = 3,
    /// Hub summaries and their mesh's GRAFT/PRUNE.
    Summary = 4,
}

pub(super) const CATS: usize = 5;

/// Framing per gossip RPC on the wire: a yamux header (12) and a noise frame (2-byte
/// length, 16-byte tag).
const FRAME: u64 = 30;
/// Per sync request or response: a new yamux stream (SYN/ACK/FIN headers), the
/// multistream-select exchange for `/aidmesh/sync/1` (37 bytes each way), noise frames
/// and the 4-byte length prefix.
pub(super) const STREAM: u64 = 110;

fn varint_len(mut v: u64) -> u64 {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

/// A protobuf length-delimited field of `len` bytes.
fn field(len: u64) -> u64 {
    1 + varint_len(len) + len
}

pub(super) fn gossip_data_bytes(event_len: u64, topic: u64) -> u64 {
    let msg = field(event_len) + field(topic);
    let rpc = field(msg);
    varint_len(rpc) + rpc + FRAME
}

pub(super) fn ihave_bytes(ids: usize, topic: u64) -> u64 {
    let ih = field(topic) + ids as u64 * field(32);
    let ctrl = field(ih);
    let rpc = field(ctrl);
    varint_len(rpc) + rpc + FRAME
}

pub(super) fn iwant_bytes(ids: usize) -> u64 {
    let iw = ids as u64 * field(32);
    let ctrl = field(iw);
    let rpc = field(ctrl);
    varint_len(rpc) + rpc + FRAME
}

pub(super) fn control_bytes(topic: u64) -> u64 {
    // GRAFT, PRUNE (with a back-off varint) or a subscription: a topic and a few bytes.
    let rpc = field(field(field(topic) + 2));
    varint_len(rpc) + rpc + FRAME
}

/// Encoded bytes of a `SyncRequest::Fetch` of `n` ids (version byte, postcard), as
/// `SyncRequest::encode` makes it; the test `sizes_match_the_real_encoding` checks.
pub fn fetch_bytes(n: usize) -> u64 {
    1 + 1 + varint_len(n as u64) + 32 * n as u64
}

/// Encoded bytes of a `SyncResponse::Events` holding events of these sizes.
pub fn events_bytes(sizes: impl IntoIterator<Item = u64>) -> u64 {
    let (mut n, mut sum) = (0u64, 0u64);
    for s in sizes {
        n += 1;
        sum += varint_len(s) + s;
    }
    1 + 1 + varint_len(n) + sum
}

/// Encoded bytes of a reconciliation message (either direction: same layout) and its
/// length prefix.
pub(super) fn reconcile_bytes(message: &[u8]) -> u64 {
    let wall = varint_len(EPOCH_MS);
    1 + 1 + wall + varint_len(message.len() as u64) + message.len() as u64 + 4
}
