//! The doors: everything that enters or leaves the node in a format of its own, minus
//! the HTTP (that is [`crate::api`]'s). What a person typed ([`input`], used by every
//! door), sneakernet bundles ([`bundle`]), official alerts in ([`cap`]), exports for
//! responders out ([`export`]), the match query's pages ([`matchmaking`]) and offline
//! maps in ([`pmtiles`]) and the printed board's overview drawn from them ([`overview`]).

pub mod backup;
pub mod bundle;
pub mod cap;
pub mod export;
pub mod input;
pub mod matchmaking;
pub mod overview;
pub mod pmtiles;
