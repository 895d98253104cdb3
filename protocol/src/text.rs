//! Text field rules shared by every body.
//!
//! Lengths are counted in Unicode scalar values (characters), not bytes, so a name in
//! Greek or Vietnamese gets the same room as one in English. Control characters are
//! refused: text from the mesh is printed in terminals, where an escape sequence could
//! rewrite the screen. Multi-line fields may contain newlines and tabs.
//!
//! Characters that make text display differently from what it is are refused too, so
//! nobody can write a name that looks like someone else's:
//! - bidirectional controls (U+061C, U+200E, U+200F, U+202A..U+202E, U+2066..U+2069)
//!   in every field: they reorder what is shown (a name, a phone number, a place), and
//!   Arabic or Hebrew text displays right without them;
//! - invisible characters (U+00AD, U+034F, U+115F, U+1160, U+180E, U+200B, U+2028,
//!   U+2029, U+2060..U+2064, U+3164, U+FEFF, U+FFA0, U+FFF9..U+FFFB) in every field;
//! - the joiners U+200C (ZWNJ) and U+200D (ZWJ) and the tag characters
//!   U+E0000..U+E007F in one-line fields (names, titles, places, tags, phone): there
//!   they only hide differences between names. Multi-line text (details, notes) may
//!   hold them, since emoji sequences (ZWJ, flag tags) and Persian or Indic writing
//!   (ZWNJ, ZWJ) need them.

use crate::error::FieldError;

/// Whether a field may be empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Required {
    /// At least one non-blank character.
    Yes,
    /// May be empty.
    No,
}

/// Whether a field may span lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lines {
    /// One line: no control characters at all.
    One,
    /// Newlines and tabs allowed; other control characters are not.
    Many,
}

/// Checks one text field against its limit.
pub fn check(
    field: &'static str,
    value: &str,
    max_chars: usize,
    required: Required,
    lines: Lines,
) -> Result<(), FieldError> {
    if required == Required::Yes && value.trim().is_empty() {
        return Err(FieldError::new(field, "required", "must not be empty"));
    }
    let count = value.chars().count();
    if count > max_chars {
        return Err(FieldError::new(
            field,
            "too_long",
            format!("is {count} characters, the limit is {max_chars}"),
        ));
    }
    for c in value.chars() {
        if let Some(what) = refused(c, lines) {
            return Err(FieldError::new(
                field,
                "bad_character",
                format!("contains the {what} U+{:04X}", c as u32),
            ));
        }
    }
    Ok(())
}

/// Why `c` may not appear in a field of this kind, if it may not.
fn refused(c: char, lines: Lines) -> Option<&'static str> {
    let many = lines == Lines::Many;
    match c {
        '\n' | '\t' if many => None,
        c if c.is_control() => Some("control character"),
        '\u{061C}'
        | '\u{200E}'
        | '\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2066}'..='\u{2069}' => {
            Some("bidirectional control character (it changes the order text is shown in)")
        }
        '\u{00AD}'
        | '\u{034F}'
        | '\u{115F}'
        | '\u{1160}'
        | '\u{180E}'
        | '\u{200B}'
        | '\u{2028}'
        | '\u{2029}'
        | '\u{2060}'..='\u{2064}'
        | '\u{3164}'
        | '\u{FEFF}'
        | '\u{FFA0}'
        | '\u{FFF9}'..='\u{FFFB}' => Some("invisible character"),
        '\u{200C}' | '\u{200D}' | '\u{E0000}'..='\u{E007F}' if !many => {
            Some("invisible joiner or tag character (allowed in multi-line text only)")
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_count_characters_not_bytes() {
        assert!(check("t", "ΩΩΩ", 3, Required::Yes, Lines::One).is_ok());
        assert!(check("t", "ΩΩΩΩ", 3, Required::Yes, Lines::One).is_err());
    }

    #[test]
    fn control_characters_are_refused() {
        let e = check("t", "a\u{1b}[2J", 10, Required::No, Lines::Many).unwrap_err();
        assert!(e.to_string().contains("U+001B"));
        assert!(check("t", "a\nb", 10, Required::No, Lines::One).is_err());
        assert!(check("t", "a\nb\tc", 10, Required::No, Lines::Many).is_ok());
    }

    #[test]
    fn bidi_controls_are_refused_everywhere() {
        // "Ada" + RLO + "evoL": displays as another name.
        for c in [
            '\u{061C}', '\u{200E}', '\u{200F}', '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}',
            '\u{202E}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}',
        ] {
            let v = format!("Ada{c}evoL");
            for lines in [Lines::One, Lines::Many] {
                let e = check("name", &v, 50, Required::Yes, lines).unwrap_err();
                assert!(e.problem.contains("bidirectional"), "{c:?}: {e}");
                assert!(e.problem.contains(&format!("U+{:04X}", c as u32)), "{e}");
            }
        }
    }

    #[test]
    fn invisible_characters_are_refused_everywhere() {
        for c in [
            '\u{00AD}', '\u{034F}', '\u{115F}', '\u{1160}', '\u{180E}', '\u{200B}', '\u{2028}',
            '\u{2029}', '\u{2060}', '\u{2064}', '\u{3164}', '\u{FEFF}', '\u{FFA0}', '\u{FFF9}',
        ] {
            let v = format!("Ada{c} Lovelace");
            for lines in [Lines::One, Lines::Many] {
                let e = check("name", &v, 50, Required::Yes, lines).unwrap_err();
                assert!(e.problem.contains("invisible"), "{c:?}: {e}");
            }
        }
    }

    #[test]
    fn joiners_and_tags_only_in_multi_line_text() {
        // A family emoji (ZWJ), Persian with ZWNJ, the flag of Scotland (tags).
        let family = "\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}";
        let persian = "\u{0645}\u{06CC}\u{200C}\u{062E}\u{0648}\u{0627}\u{0647}\u{0645}";
        let scotland = "\u{1F3F4}\u{E0067}\u{E0062}\u{E0073}\u{E0063}\u{E0074}\u{E007F}";
        for v in [family, persian, scotland] {
            assert!(
                check("note", v, 50, Required::No, Lines::Many).is_ok(),
                "{v}"
            );
            let e = check("name", v, 50, Required::Yes, Lines::One).unwrap_err();
            assert!(e.problem.contains("joiner or tag"), "{e}");
        }
        // Ordinary text in other scripts is untouched.
        for v in ["Zoë Ångström", "محمد", "שלום", "नमस्ते", "李小龙", "🙂 ok"]
        {
            assert!(
                check("name", v, 50, Required::Yes, Lines::One).is_ok(),
                "{v}"
            );
        }
    }

    #[test]
    fn required_fields_must_not_be_blank() {
        assert!(check("t", "  ", 10, Required::Yes, Lines::One).is_err());
        assert!(check("t", "", 10, Required::No, Lines::One).is_ok());
    }
}
