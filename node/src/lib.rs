//! # aidmesh-node
//!
//! The I/O half of aidmesh: a node that stores events durably ([`store`]), runs every
//! event through one validate → store → fan-out path ([`engine`]), talks to peers over
//! libp2p ([`net`]), finds them with mDNS and a broadcast beacon ([`net::discovery`],
//! [`net::beacon`]) and serves the HTTP API ([`api`]); bundles, official alerts,
//! exports and what people type pass through its [`doors`]. The rules themselves live
//! in `aidmesh-protocol`.

pub mod api;
pub mod delivery;
pub mod doors;
pub mod engine;
pub mod net;
pub mod node;
pub mod sms;
pub mod store;
/// The disk guard lives with the store it guards; `crate::disk` still names it.
pub use store::disk;
