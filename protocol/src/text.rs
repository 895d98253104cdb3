//! Text field rules shared by every body.
//!
//! Lengths are counted in Unicode scalar values (characters), not bytes, so a name in
//! Greek or Vietnamese gets the same room as one in English. Control characters are
//! refused: text from the mesh is printed in terminals, where an escape sequence could
//! rewrite the screen. Multi-line fields may contain newlines and tabs.

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
        return Err(FieldError::new(field, "must not be empty"));
    }
    let count = value.chars().count();
    if count > max_chars {
        return Err(FieldError::new(
            field,
            format!("is {count} characters, the limit is {max_chars}"),
        ));
    }
    let bad = value
        .chars()
        .find(|c| c.is_control() && !(lines == Lines::Many && (*c == '\n' || *c == '\t')));
    if let Some(c) = bad {
        return Err(FieldError::new(
            field,
            format!("contains the control character U+{:04X}", c as u32),
        ));
    }
    Ok(())
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
    fn required_fields_must_not_be_blank() {
        assert!(check("t", "  ", 10, Required::Yes, Lines::One).is_err());
        assert!(check("t", "", 10, Required::No, Lines::One).is_ok());
    }
}
