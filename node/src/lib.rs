//! # aidmesh-node
//!
//! The I/O half of aidmesh: a node that stores events durably ([`store`]), runs every
//! event through one validate → store → fan-out path ([`engine`]), talks to peers over
//! libp2p ([`net`]), finds them with mDNS and a broadcast beacon ([`net::discovery`],
//! [`net::beacon`]) and serves the HTTP API ([`api`]), and reads and writes sneakernet
//! [`bundle`]s. The rules themselves live in `aidmesh-protocol`.

pub mod api;
pub mod bundle;
pub mod cap;
pub mod delivery;
pub mod disk;
pub mod engine;
pub mod export;
pub mod input;
pub mod matchmaking;
pub mod net;
pub mod node;
pub mod sms;
pub mod store;
