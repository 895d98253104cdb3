//! The community: a name and a passphrase shared at the hub. The passphrase derives the
//! 32-byte pre-shared key of the libp2p private network, so a node without it cannot
//! even complete a connection.
//!
//! Derivation: Argon2id (m = 19 MiB, t = 2, p = 1, the RFC 9106 "second choice" and the
//! argon2 crate's default) over the passphrase with the salt
//! `"aidmesh community v1\0" || normalised name`. Argon2 makes guessing a passphrase of
//! a few words from a captured handshake expensive.

use argon2::{Algorithm, Argon2, Params, Version};

/// Salt prefix; changing it changes every key.
const SALT_PREFIX: &[u8] = b"aidmesh community v1\0";

/// Community names are compared after trimming and lowercasing.
pub fn normalise_name(name: &str) -> String {
    name.trim().to_lowercase()
}

/// Passphrases are compared after collapsing whitespace and lowercasing, so
/// "Maple  River otter" and "maple river otter" give the same key.
pub fn normalise_passphrase(passphrase: &str) -> String {
    passphrase
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Derives the 32-byte pre-shared key of community `name` from `passphrase`.
pub fn derive_key(name: &str, passphrase: &str) -> [u8; 32] {
    let mut salt = SALT_PREFIX.to_vec();
    salt.extend_from_slice(normalise_name(name).as_bytes());
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::default());
    let mut key = [0u8; 32];
    // Only fails for out-of-range parameters, and these are the crate's defaults with a
    // salt of at least 21 bytes.
    if let Err(e) =
        argon.hash_password_into(normalise_passphrase(passphrase).as_bytes(), &salt, &mut key)
    {
        panic!("argon2 with default parameters failed: {e}");
    }
    key
}

/// Number of words in a generated passphrase: 6 words of the 2048-word BIP-39 English
/// list carry 66 bits, plenty behind Argon2, and are easy to read aloud at a hub.
pub const PASSPHRASE_WORDS: usize = 6;

/// A passphrase of [`PASSPHRASE_WORDS`] common English words chosen by `entropy`
/// (the caller supplies randomness; 9 bytes are enough, 11 bits per word).
pub fn passphrase_from_entropy(entropy: &[u8; 9]) -> String {
    let words = bip39::Language::English.word_list();
    let mut acc: u128 = 0;
    for b in entropy {
        acc = (acc << 8) | u128::from(*b);
    }
    (0..PASSPHRASE_WORDS)
        .map(|i| words[((acc >> (i * 11)) & 0x7ff) as usize])
        .collect::<Vec<_>>()
        .join(" ")
}

/// Why a typed passphrase is not one this software could have generated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PassphraseProblem {
    /// Not [`PASSPHRASE_WORDS`] words.
    WordCount(usize),
    /// Word number `position` (from 1) is not in the word list; `suggestion` is the
    /// closest word of the list, if one is close.
    UnknownWord {
        /// 1-based position in the passphrase.
        position: usize,
        /// The word as typed (normalised).
        word: String,
        /// The closest list word, if within two edits.
        suggestion: Option<&'static str>,
    },
}

impl std::fmt::Display for PassphraseProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PassphraseProblem::WordCount(n) => write!(
                f,
                "the passphrase has {n} word{}, a community passphrase has {PASSPHRASE_WORDS}; check the card from the hub",
                if *n == 1 { "" } else { "s" }
            ),
            PassphraseProblem::UnknownWord {
                position,
                word,
                suggestion: Some(s),
            } => write!(
                f,
                "word {position} '{word}' is not in the list; did you mean '{s}'?"
            ),
            PassphraseProblem::UnknownWord { position, word, .. } => write!(
                f,
                "word {position} '{word}' is not in the list; check the card from the hub"
            ),
        }
    }
}

/// Checks a typed passphrase against the word list and its length, and returns it
/// normalised. Every passphrase this software generates passes.
pub fn check_passphrase(typed: &str) -> Result<String, PassphraseProblem> {
    let norm = normalise_passphrase(typed);
    let words: Vec<&str> = norm.split(' ').filter(|w| !w.is_empty()).collect();
    if words.len() != PASSPHRASE_WORDS {
        return Err(PassphraseProblem::WordCount(words.len()));
    }
    let list = bip39::Language::English.word_list();
    for (i, w) in words.iter().enumerate() {
        if list.binary_search(w).is_err() {
            let suggestion = list
                .iter()
                .map(|c| (edit_distance(w, c), *c))
                .filter(|(d, _)| *d <= 2)
                .min_by_key(|(d, _)| *d)
                .map(|(_, c)| c);
            return Err(PassphraseProblem::UnknownWord {
                position: i + 1,
                word: (*w).to_string(),
                suggestion,
            });
        }
    }
    Ok(norm)
}

/// Levenshtein distance (words are short, so the quadratic table is cheap).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// A short public tag of the community key, advertised by discovery so that nodes of
/// different communities on one network do not even try to connect. It reveals nothing
/// about the key (a keyed hash of it).
pub fn key_tag(key: &[u8; 32]) -> String {
    let h = blake3::keyed_hash(key, b"aidmesh community tag v1");
    hex::encode(&h.as_bytes()[..8])
}

/// The gossip topic of a community: not secret (the key protects the network), only
/// distinct per community.
pub fn topic(name: &str) -> String {
    format!("aidmesh/1/{}", normalise_name(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passphrases_are_six_words_and_vary() {
        let a = passphrase_from_entropy(&[0; 9]);
        let b = passphrase_from_entropy(&[1, 2, 3, 4, 5, 6, 7, 8, 9]);
        assert_eq!(a.split(' ').count(), PASSPHRASE_WORDS);
        assert_ne!(a, b);
        assert_ne!(key_tag(&derive_key("x", &a)), key_tag(&derive_key("x", &b)));
    }

    #[test]
    fn typed_passphrases_are_checked_word_by_word() {
        let good = passphrase_from_entropy(&[7; 9]);
        assert_eq!(check_passphrase(&good.to_uppercase()), Ok(good.clone()));
        assert_eq!(
            check_passphrase("abandon ability able"),
            Err(PassphraseProblem::WordCount(3))
        );
        let e = check_passphrase("maple harbor ozone rivr ozone harbor").unwrap_err();
        assert_eq!(
            e.to_string(),
            "word 4 'rivr' is not in the list; did you mean 'river'?"
        );
        let e = check_passphrase("river maple ozone xqzzyv ozone harbor").unwrap_err();
        assert!(
            matches!(
                e,
                PassphraseProblem::UnknownWord {
                    position: 4,
                    suggestion: None,
                    ..
                }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn same_words_same_key_whatever_the_spacing_and_case() {
        let a = derive_key("Elm Street", "maple river otter lantern");
        let b = derive_key(" elm street ", "Maple  River otter\tlantern");
        assert_eq!(a, b);
        assert_ne!(a, derive_key("Elm Street", "maple river otter candle"));
        assert_ne!(a, derive_key("Oak Street", "maple river otter lantern"));
    }
}
