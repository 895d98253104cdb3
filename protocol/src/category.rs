//! The fixed list of categories. Each maps to a humanitarian cluster where one exists,
//! so exports line up with what relief organisations use once connectivity returns.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// What a need or offer is about. The order of variants is part of the wire format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Category {
    /// Drinking water, washing, sanitation, hygiene kits.
    Water,
    /// Food and cooking.
    Food,
    /// Medical care, first aid and medication (insulin, oxygen...).
    Medical,
    /// Shelter, beds and bedding.
    Shelter,
    /// Power, charging and communications.
    Power,
    /// Transport and fuel.
    Transport,
    /// Rescue and evacuation.
    Rescue,
    /// Care: childcare, elder care, pets.
    Care,
    /// Welfare and protection of people at risk.
    Welfare,
    /// Cleanup and repairs.
    Cleanup,
    /// Anything else.
    Other,
}

/// Unknown category name; the message lists the valid ones.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown category '{given}'; valid categories: {}", Category::names().join(", "))]
pub struct UnknownCategory {
    /// What was given.
    pub given: String,
}

impl Category {
    /// Every category, in wire order.
    pub const ALL: [Category; 11] = [
        Category::Water,
        Category::Food,
        Category::Medical,
        Category::Shelter,
        Category::Power,
        Category::Transport,
        Category::Rescue,
        Category::Care,
        Category::Welfare,
        Category::Cleanup,
        Category::Other,
    ];

    /// The name used on the command line, in the API and in exports.
    pub fn name(self) -> &'static str {
        match self {
            Category::Water => "water",
            Category::Food => "food",
            Category::Medical => "medical",
            Category::Shelter => "shelter",
            Category::Power => "power",
            Category::Transport => "transport",
            Category::Rescue => "rescue",
            Category::Care => "care",
            Category::Welfare => "welfare",
            Category::Cleanup => "cleanup",
            Category::Other => "other",
        }
    }

    /// All names, for error messages and help.
    pub fn names() -> Vec<&'static str> {
        Self::ALL.iter().map(|c| c.name()).collect()
    }

    /// A one-line description for people.
    pub fn description(self) -> &'static str {
        match self {
            Category::Water => "water and hygiene",
            Category::Food => "food",
            Category::Medical => "medical care and medication",
            Category::Shelter => "shelter and bedding",
            Category::Power => "power, charging and communications",
            Category::Transport => "transport and fuel",
            Category::Rescue => "rescue and evacuation",
            Category::Care => "childcare, elder care, pets",
            Category::Welfare => "welfare of people at risk",
            Category::Cleanup => "cleanup and repairs",
            Category::Other => "other",
        }
    }

    /// The IASC humanitarian cluster (HXL `#sector`), where one applies.
    pub fn cluster(self) -> Option<&'static str> {
        match self {
            Category::Water => Some("WASH"),
            Category::Food => Some("Food Security"),
            Category::Medical => Some("Health"),
            Category::Shelter => Some("Shelter"),
            Category::Power => Some("Emergency Telecommunications"),
            Category::Transport => Some("Logistics"),
            Category::Welfare => Some("Protection"),
            Category::Cleanup => Some("Early Recovery"),
            Category::Rescue | Category::Care | Category::Other => None,
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Category {
    type Err = UnknownCategory;

    /// Accepts the names, case-insensitively, and a few common synonyms
    /// ("wash", "health", "medication", "charging", "fuel", "protection", ...).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let key = s.trim().to_lowercase().replace(['_', ' '], "-");
        let c = match key.as_str() {
            "water" | "wash" | "hygiene" => Category::Water,
            "food" | "food-security" => Category::Food,
            "medical" | "health" | "medication" | "medicine" => Category::Medical,
            "shelter" | "bedding" | "beds" => Category::Shelter,
            "power" | "charging" | "communications" | "comms" | "telecommunications" => {
                Category::Power
            }
            "transport" | "fuel" | "logistics" => Category::Transport,
            "rescue" | "evacuation" => Category::Rescue,
            "care" | "childcare" | "eldercare" | "elder-care" | "pets" => Category::Care,
            "welfare" | "protection" => Category::Welfare,
            "cleanup" | "repairs" | "early-recovery" => Category::Cleanup,
            "other" => Category::Other,
            _ => {
                return Err(UnknownCategory {
                    given: s.to_string(),
                })
            }
        };
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for c in Category::ALL {
            assert_eq!(c.name().parse::<Category>().unwrap(), c);
        }
    }

    #[test]
    fn synonyms_and_case() {
        assert_eq!("WASH".parse::<Category>().unwrap(), Category::Water);
        assert_eq!("Medication".parse::<Category>().unwrap(), Category::Medical);
        assert_eq!(
            "early recovery".parse::<Category>().unwrap(),
            Category::Cleanup
        );
    }

    #[test]
    fn unknown_category_lists_the_valid_ones() {
        let e = "blankets".parse::<Category>().unwrap_err().to_string();
        assert!(e.contains("'blankets'"));
        for name in Category::names() {
            assert!(e.contains(name), "{e} should list {name}");
        }
    }
}
