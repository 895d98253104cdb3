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
    ///
    /// The author's key is decompressed once per thread and kept (a few hundred
    /// recent authors; a hub's events come from few): decompressing it is a tenth of
    /// a check, and the answer is the same either way.
    pub fn verify(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        let Some(key) = verifying_key(&self.0) else {
            return false;
        };
        let sig = ed25519_dalek::Signature::from_bytes(signature);
        key.verify_strict(message, &sig).is_ok()
    }
}

/// Slots of the per-thread cache of decompressed keys (about 200 bytes each).
const KEY_SLOTS: usize = 256;

/// `VerifyingKey::from_bytes(bytes)`, from a small per-thread cache (a slot per
/// key's first byte: keys are uniform). A key that does not decompress is not kept.
fn verifying_key(bytes: &[u8; 32]) -> Option<VerifyingKey> {
    use std::cell::RefCell;
    thread_local! {
        static KEYS: RefCell<Vec<Option<VerifyingKey>>> = RefCell::new(vec![None; KEY_SLOTS]);
    }
    let slot = usize::from(bytes[0]) % KEY_SLOTS;
    KEYS.with(|keys| {
        let mut keys = keys.borrow_mut();
        if let Some(k) = keys[slot].as_ref().filter(|k| k.as_bytes() == bytes) {
            return Some(*k);
        }
        let k = VerifyingKey::from_bytes(bytes).ok()?;
        keys[slot] = Some(k);
        Some(k)
    })
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
    fn kept_keys_give_the_same_answers() {
        // More authors than the cache has slots, so slots are shared and replaced,
        // asked in turn: each key verifies its own signatures and no other's.
        let ids: Vec<Identity> = (0..600u16)
            .map(|n| {
                let mut seed = [0u8; 32];
                seed[..2].copy_from_slice(&n.to_le_bytes());
                Identity::from_seed(seed)
            })
            .collect();
        for round in 0..2 {
            for (i, id) in ids.iter().enumerate() {
                let msg = [round as u8, (i % 251) as u8];
                let sig = id.sign(&msg);
                assert!(id.author().verify(&msg, &sig));
                let other = &ids[(i + 1) % ids.len()];
                assert!(!other.author().verify(&msg, &sig));
                let mut forged = sig;
                forged[0] ^= 1;
                assert!(!id.author().verify(&msg, &forged));
            }
        }
    }

    #[test]
    fn garbage_public_key_does_not_verify() {
        let bogus = AuthorId([0xff; 32]);
        assert!(!bogus.verify(b"x", &[0; 64]));
    }
}
