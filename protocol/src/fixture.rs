//! Test fixtures shared by this crate's tests, its integration tests and benches, and
//! the multi-node tests and bench binaries (the `test-util` feature; always built under
//! `cfg(test)`): the post of `docs/protocol.md` §4.3 and its signed event, a registered
//! person, and a seeded generator of realistic posts for boards of any size.

use crate::body::{Body, Consent, Coords, PersonRegistered, Place, Post, Urgency};
use crate::category::Category;
use crate::event::Event;
use crate::identity::Identity;
use crate::time::Timestamp;

/// The seed of the identity that signs the §4.3 worked example.
pub const SPEC_SEED: [u8; 32] = [1; 32];

/// The timestamp of the §4.3 worked example, in milliseconds.
pub const SPEC_MILLIS: u64 = 1_790_000_000_000;

/// The post of §4.3 titled `title`: 20 litres of water, high urgency, at 12 Mill Lane.
pub fn post(title: &str) -> Post {
    Post {
        title: title.into(),
        category: Category::Water,
        details: String::new(),
        quantity: Some(20),
        unit: "litres".into(),
        urgency: Urgency::High,
        place: Place {
            label: "12 Mill Lane".into(),
            coords: Coords::from_degrees(51.5, -0.12),
        },
        contact: String::new(),
        expires_ms: None,
        related: None,
    }
}

/// The worked example of §4.3: `post("water")` as a need signed with [`SPEC_SEED`] at
/// [`SPEC_MILLIS`].
pub fn spec_event() -> Event {
    Event::create(
        &Identity::from_seed(SPEC_SEED),
        Timestamp::from_millis(SPEC_MILLIS),
        &Body::Need(post("water")),
    )
}

/// A person registered as `name`, nowhere in particular, by their own consent, to be
/// checked on every hour.
pub fn person(name: &str) -> Body {
    Body::Person(PersonRegistered {
        name: name.into(),
        place: Place::default(),
        risks: vec![],
        check_every_secs: 3600,
        consent: Consent::Own,
        phone: String::new(),
        note: String::new(),
    })
}

/// xorshift: the same boards on every run and every machine.
#[derive(Debug, Clone)]
pub struct Xorshift(pub u64);

impl Xorshift {
    /// A number below `n`.
    pub fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// The `i`th post of a realistic board (about 300 bytes signed): 1 to 20 litres of
/// drinking water somewhere along Mill Lane, all within about 11 km × 7 km, of a random
/// urgency. The category is drawn from `categories`; with `None` it is water and
/// nothing is drawn for it (boards of water alone keep the figures they always had).
pub fn mill_lane_post(rng: &mut Xorshift, i: usize, categories: Option<&[Category]>) -> Post {
    let n = 1 + rng.below(20) as u32;
    let category = match categories {
        None => Category::Water,
        Some(all) => all[rng.below(all.len())],
    };
    Post {
        title: format!("Drinking water, {n} litres, near Mill Lane ({i})"),
        category,
        details: "Ground floor flooded since Tuesday night; 4 people here including \
                  two children. Ring the bell at the side gate."
            .into(),
        quantity: Some(n),
        unit: "litres".into(),
        urgency: Urgency::ALL[rng.below(Urgency::ALL.len())],
        place: Place {
            label: format!("{} Mill Lane", 1 + rng.below(200)),
            coords: Coords::from_degrees(
                51.44 + rng.below(10_000) as f64 * 1e-5,
                -2.60 + rng.below(10_000) as f64 * 1e-5,
            ),
        },
        contact: "Ask for Sam at the Mill Lane hub, 07700 900123".into(),
        expires_ms: None,
        related: None,
    }
}
