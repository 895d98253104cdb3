//! Identities. An author is an Ed25519 public key; there are no accounts and no
//! registry. People see a short hex prefix of the key, like a git short hash.

use std::fmt;

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::id::hex32_name;

/// Number of hex characters in [`AuthorId::short`].
pub const AUTHOR_SHORT_LEN: usize = 8;

/// The public half of an identity: 32 bytes of Ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AuthorId(pub [u8; 32]);

impl AuthorId {
    /// Full lowercase hex (64 characters).
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Short printable form for people: the first [`AUTHOR_SHORT_LEN`] hex characters.
    pub fn short(&self) -> String {
        self.to_hex()[..AUTHOR_SHORT_LEN].to_string()
    }

    /// Checks a signature made with [`Identity::sign`] over `message`.
    ///
    /// Uses strict verification: rejects small-order keys and non-canonical signatures,
    /// so nobody but the author can make another valid signature for the same bytes.
    /// (The author could sign twice with different nonces; the event id does not cover
    /// the signature, so both copies are the same event and the first one kept wins.)
    pub fn verify(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        let Ok(key) = VerifyingKey::from_bytes(&self.0) else {
            return false;
        };
        let sig = ed25519_dalek::Signature::from_bytes(signature);
        key.verify_strict(message, &sig).is_ok()
    }
}

impl fmt::Display for AuthorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

hex32_name!(AuthorId);

/// A private identity that can sign events. The node stores its 32-byte seed.
///
/// The protocol crate never generates randomness itself: the caller supplies the seed
/// (the node takes it from the operating system's random source).
pub struct Identity {
    key: SigningKey,
}

impl Identity {
    /// Builds the identity whose secret key is `seed`.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self {
            key: SigningKey::from_bytes(&seed),
        }
    }

    /// The secret seed, for storing on disk.
    pub fn seed(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// The public author id.
    pub fn author(&self) -> AuthorId {
        AuthorId(self.key.verifying_key().to_bytes())
    }

    /// Signs `message` (the encoded envelope of an event).
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.key.sign(message).to_bytes()
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the secret.
        write!(f, "Identity({})", self.author().short())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify_round_trip() {
        let id = Identity::from_seed([7; 32]);
        let sig = id.sign(b"hello");
        assert!(id.author().verify(b"hello", &sig));
        assert!(!id.author().verify(b"hellO", &sig));
        let other = Identity::from_seed([8; 32]);
        assert!(!other.author().verify(b"hello", &sig));
    }

    #[test]
    fn hex_round_trip_and_short_form() {
        let a = Identity::from_seed([1; 32]).author();
        let parsed: AuthorId = a.to_hex().parse().unwrap();
        assert_eq!(parsed, a);
        assert_eq!(a.short().len(), AUTHOR_SHORT_LEN);
        assert!(a.to_hex().starts_with(&a.short()));
        assert!("zz".parse::<AuthorId>().is_err());
    }

    #[test]
    fn garbage_public_key_does_not_verify() {
        let bogus = AuthorId([0xff; 32]);
        assert!(!bogus.verify(b"x", &[0; 64]));
    }
}
