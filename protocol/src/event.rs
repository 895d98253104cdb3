//! The signed event envelope.
//!
//! Wire bytes of an event:
//!
//! ```text
//! signed part = postcard(version: u8, author: [u8; 32], timestamp: u64, kind: u16, body: bytes)
//! event       = signed part || Ed25519 signature (64 bytes) over the signed part
//! id          = BLAKE3(signed part)
//! ```
//!
//! The body travels as opaque bytes behind a kind tag, so a node can check, store and
//! forward an event whose kind or version it does not understand. Signatures are
//! verified over the bytes exactly as received, never over a re-encoding.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::body::Body;
use crate::error::DecodeError;
use crate::identity::{AuthorId, Identity};
use crate::rejection::ValidationError;
use crate::time::Timestamp;

/// The id lives in [`crate::id`] (so that errors and bodies can name it without the
/// envelope); `event::EventId` stays its path too.
pub use crate::id::{EventId, ID_SHORT_LEN};

/// The envelope version this node writes and fully understands.
pub const PROTOCOL_VERSION: u8 = 1;

/// Hard limit on the size of one event, checked before any decoding.
pub const MAX_EVENT_BYTES: usize = 16 * 1024;

/// Length of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;

/// The signed part as postcard sees it. Field order is the wire order.
#[derive(Serialize, Deserialize)]
struct SignedPart<'a> {
    version: u8,
    author: [u8; 32],
    timestamp: u64,
    kind: u16,
    #[serde(borrow)]
    body: &'a [u8],
}

/// An event decoded from wire bytes. Holding one says nothing about its validity:
/// [`crate::validate()`] decides that.
#[derive(Clone, PartialEq, Eq)]
pub struct Event {
    id: EventId,
    version: u8,
    author: AuthorId,
    timestamp: Timestamp,
    kind: u16,
    /// Byte range of the body inside `bytes`.
    body_at: (usize, usize),
    bytes: Vec<u8>,
}

impl Event {
    /// Signs and encodes a new event from a body that is known to keep its limits
    /// (tests, tools). For anything built from outside input use [`Event::try_create`].
    ///
    /// # Panics
    /// If the body breaks a limit so that the event exceeds [`MAX_EVENT_BYTES`].
    pub fn create(identity: &Identity, timestamp: Timestamp, body: &Body) -> Event {
        Self::create_raw(
            identity,
            PROTOCOL_VERSION,
            timestamp,
            body.kind().code(),
            &body.encode(),
        )
    }

    /// Signs and encodes a new event after checking every limit: each field of the body
    /// (the error names the field), then the size of the whole event. Nothing is signed
    /// when a check fails. The caller picks the timestamp from its [`crate::Clock`].
    pub fn try_create(
        identity: &Identity,
        timestamp: Timestamp,
        body: &Body,
    ) -> Result<Event, ValidationError> {
        body.check().map_err(|e| ValidationError::Field {
            id: "(new)".into(),
            field: e.field,
            code: e.code,
            problem: e.problem,
        })?;
        Ok(Self::build(
            identity,
            PROTOCOL_VERSION,
            timestamp,
            body.kind().code(),
            &body.encode(),
        )?)
    }

    /// Signs arbitrary envelope contents. Used for tests and by tools that forward or
    /// produce events of kinds this version does not know.
    ///
    /// # Panics
    /// If the event would exceed [`MAX_EVENT_BYTES`].
    pub fn create_raw(
        identity: &Identity,
        version: u8,
        timestamp: Timestamp,
        kind: u16,
        body: &[u8],
    ) -> Event {
        match Self::build(identity, version, timestamp, kind, body) {
            Ok(e) => e,
            Err(e) => panic!("cannot create this event: {e}"),
        }
    }

    /// Encodes, checks the size, signs.
    fn build(
        identity: &Identity,
        version: u8,
        timestamp: Timestamp,
        kind: u16,
        body: &[u8],
    ) -> Result<Event, DecodeError> {
        let part = SignedPart {
            version,
            author: identity.author().0,
            timestamp: timestamp.0,
            kind,
            body,
        };
        // Encoding into a Vec cannot fail for these types.
        let mut bytes = postcard::to_stdvec(&part).unwrap_or_default();
        let len = bytes.len() + SIGNATURE_LEN;
        if len > MAX_EVENT_BYTES {
            return Err(DecodeError::TooLarge {
                what: "event",
                len,
                max: MAX_EVENT_BYTES,
            });
        }
        let signature = identity.sign(&bytes);
        bytes.extend_from_slice(&signature);
        // Round-trip through the decoder so the value always matches its bytes.
        Event::decode(&bytes)
    }

    /// Parses wire bytes. Checks the size limit first, then the envelope layout;
    /// does *not* check the signature or the body (see [`crate::validate()`]).
    pub fn decode(bytes: &[u8]) -> Result<Event, DecodeError> {
        Self::decode_as(bytes, None)
    }

    /// [`Event::decode`] of bytes whose id is known already: an event read back from
    /// this node's own store, which keys each event by the id computed when it was
    /// validated. The layout is checked as by [`Event::decode`]; the id is taken
    /// instead of hashed again (a start reads every stored event: a million hashes).
    /// Never for bytes from outside: their id is whatever they hash to.
    pub fn decode_known(bytes: &[u8], id: EventId) -> Result<Event, DecodeError> {
        Self::decode_as(bytes, Some(id))
    }

    fn decode_as(bytes: &[u8], id: Option<EventId>) -> Result<Event, DecodeError> {
        const WHAT: &str = "event";
        if bytes.len() > MAX_EVENT_BYTES {
            return Err(DecodeError::TooLarge {
                what: WHAT,
                len: bytes.len(),
                max: MAX_EVENT_BYTES,
            });
        }
        if bytes.len() <= SIGNATURE_LEN {
            return Err(DecodeError::Truncated {
                what: WHAT,
                len: bytes.len(),
            });
        }
        let signed_len = bytes.len() - SIGNATURE_LEN;
        let signed = &bytes[..signed_len];
        if signed[0] == 0 {
            return Err(DecodeError::Version {
                what: WHAT,
                version: 0,
                supported: "1 and later",
            });
        }
        let (part, rest) = postcard::take_from_bytes::<SignedPart>(signed).map_err(|e| {
            DecodeError::Malformed {
                what: WHAT,
                reason: e.to_string(),
            }
        })?;
        if !rest.is_empty() {
            return Err(DecodeError::TrailingBytes {
                what: WHAT,
                extra: rest.len(),
            });
        }
        // The body is the last field, so it ends where the signed part ends.
        let body_at = (signed_len - part.body.len(), signed_len);
        Ok(Event {
            id: id.unwrap_or_else(|| EventId(*blake3::hash(signed).as_bytes())),
            version: part.version,
            author: AuthorId(part.author),
            timestamp: Timestamp(part.timestamp),
            kind: part.kind,
            body_at,
            bytes: bytes.to_vec(),
        })
    }

    /// The event id.
    pub fn id(&self) -> EventId {
        self.id
    }

    /// Envelope version.
    pub fn version(&self) -> u8 {
        self.version
    }

    /// Who signed it.
    pub fn author(&self) -> AuthorId {
        self.author
    }

    /// Hybrid-logical-clock timestamp chosen by the author.
    pub fn timestamp(&self) -> Timestamp {
        self.timestamp
    }

    /// Body kind code (see [`crate::BodyKind`]).
    pub fn kind(&self) -> u16 {
        self.kind
    }

    /// The body's bytes, as signed.
    pub fn body_bytes(&self) -> &[u8] {
        &self.bytes[self.body_at.0..self.body_at.1]
    }

    /// The complete wire bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Consumes the event, returning its wire bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// Whether the signature verifies over the signed part as received.
    pub fn signature_ok(&self) -> bool {
        let split = self.bytes.len() - SIGNATURE_LEN;
        let mut sig = [0u8; SIGNATURE_LEN];
        sig.copy_from_slice(&self.bytes[split..]);
        self.author.verify(&self.bytes[..split], &sig)
    }

    /// Decodes the body, if this version and kind are understood.
    /// `Ok(None)` means "unknown to this node": keep and forward, do not interpret.
    pub fn body(&self) -> Result<Option<Body>, DecodeError> {
        if self.version != PROTOCOL_VERSION {
            return Ok(None);
        }
        Body::decode(self.kind, self.body_bytes())
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("id", &self.id)
            .field("version", &self.version)
            .field("author", &self.author)
            .field("timestamp", &self.timestamp)
            .field("kind", &self.kind)
            .field("len", &self.bytes.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ident() -> Identity {
        Identity::from_seed([3; 32])
    }

    #[test]
    fn an_oversized_body_is_refused_before_signing_naming_the_field() {
        use crate::body::{Place, Post, Urgency};
        use crate::category::Category;
        // ~20,000 characters of details: the HTTP body fits 64 KiB, the event does not
        // fit 16 KiB. This used to panic inside `create`.
        let body = Body::Need(Post {
            title: "water".into(),
            category: Category::Water,
            details: "x".repeat(20_000),
            quantity: None,
            unit: String::new(),
            urgency: Urgency::Normal,
            place: Place::default(),
            contact: String::new(),
            expires_ms: None,
            related: None,
        });
        let e = Event::try_create(&ident(), Timestamp(1), &body).unwrap_err();
        assert!(
            matches!(
                &e,
                ValidationError::Field {
                    field: "details",
                    ..
                }
            ),
            "{e}"
        );
        // And the size bound holds for raw bodies too: an error, not a panic.
        let big = vec![0u8; MAX_EVENT_BYTES];
        let e = Event::build(&ident(), 1, Timestamp(1), 900, &big).unwrap_err();
        assert!(matches!(e, DecodeError::TooLarge { .. }), "{e}");
    }

    #[test]
    fn round_trip_and_stable_id() {
        let e = Event::create_raw(&ident(), 1, Timestamp(42), 900, b"opaque");
        let d = Event::decode(e.bytes()).unwrap();
        assert_eq!(d, e);
        assert_eq!(d.body_bytes(), b"opaque");
        assert!(d.signature_ok());
        // The id is the hash of the signed part only.
        let signed = &e.bytes()[..e.bytes().len() - SIGNATURE_LEN];
        assert_eq!(d.id().0, *blake3::hash(signed).as_bytes());
    }

    #[test]
    fn an_event_decoded_with_its_known_id_is_the_event_decoded() {
        let e = Event::create_raw(&ident(), 1, Timestamp(42), 900, b"opaque");
        assert_eq!(Event::decode_known(e.bytes(), e.id()).unwrap(), e);
        // The same checks of the layout.
        assert!(matches!(
            Event::decode_known(&[1; 10], e.id()),
            Err(DecodeError::Truncated { .. })
        ));
    }

    #[test]
    fn hex_prefixes() {
        let id = EventId([0xab; 32]);
        assert!(id.has_hex_prefix("abab"));
        assert!(id.has_hex_prefix("ababa"));
        assert!(!id.has_hex_prefix("abac"));
        assert!(id.has_hex_prefix(&id.to_hex()));
        assert!(!id.has_hex_prefix(&format!("{}0", id.to_hex())));
    }

    #[test]
    fn version_byte_is_first() {
        let e = Event::create_raw(&ident(), 7, Timestamp(1), 1, b"");
        assert_eq!(e.bytes()[0], 7);
        assert_eq!(e.version(), 7);
    }

    #[test]
    fn trailing_bytes_in_the_signed_part_are_rejected() {
        let e = Event::create_raw(&ident(), 1, Timestamp(1), 1, b"x");
        let mut b = e.bytes().to_vec();
        b.insert(b.len() - SIGNATURE_LEN, 0);
        assert!(matches!(
            Event::decode(&b),
            Err(DecodeError::TrailingBytes { extra: 1, .. })
        ));
    }

    #[test]
    fn size_limit_is_checked_first() {
        let b = vec![1u8; MAX_EVENT_BYTES + 1];
        assert!(matches!(
            Event::decode(&b),
            Err(DecodeError::TooLarge { .. })
        ));
        assert!(matches!(
            Event::decode(&[1; 10]),
            Err(DecodeError::Truncated { .. })
        ));
    }

    #[test]
    fn flipping_any_bit_breaks_the_signature_or_the_decoding() {
        let e = Event::create_raw(&ident(), 1, Timestamp(99), 1, b"need water");
        for i in 0..e.bytes().len() {
            let mut b = e.bytes().to_vec();
            b[i] ^= 0x01;
            if let Ok(d) = Event::decode(&b) {
                assert!(!d.signature_ok(), "bit flip at byte {i} still verifies");
            }
        }
    }
}
