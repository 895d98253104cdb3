//! The civil calendar: milliseconds since the Unix epoch to a UTC date and time and
//! back, the formats people and other programs read them in, and the one parser of
//! RFC 3339 date-times (CAP alerts'). Proleptic Gregorian, UTC only: a hub computer's
//! time zone is not known, so every time shown says "UTC". Pure: no clock is read.
//!
//! The day arithmetic is Howard Hinnant's (`days_from_civil`, `civil_from_days`,
//! <https://howardhinnant.github.io/date_algorithms.html>).

/// A moment in UTC, split into its calendar and clock fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Utc {
    /// Year (proleptic Gregorian).
    pub year: i64,
    /// Month, 1..=12.
    pub month: u32,
    /// Day of the month, 1..=31.
    pub day: u32,
    /// Hour, 0..=23.
    pub hour: u32,
    /// Minute, 0..=59.
    pub minute: u32,
    /// Second, 0..=59.
    pub second: u32,
}

impl Utc {
    /// The moment `ms` milliseconds after 1970-01-01T00:00:00Z (the milliseconds
    /// themselves are dropped).
    pub fn from_ms(ms: u64) -> Utc {
        let secs = ms / 1000;
        let (year, month, day) = civil_from_days((secs / 86_400) as i64);
        let rem = secs % 86_400;
        Utc {
            year,
            month,
            day,
            hour: (rem / 3600) as u32,
            minute: (rem % 3600 / 60) as u32,
            second: (rem % 60) as u32,
        }
    }
}

/// Days since 1970-01-01 of the proleptic Gregorian date `y`-`m`-`d` (`m` 1..=12).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date (year, month, day) `z` days after 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// ISO 8601 to the second, "2026-11-30T15:00:00Z", as HXL, PFIF and GeoJSON readers
/// expect.
pub fn iso_8601(ms: u64) -> String {
    let t = Utc::from_ms(ms);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

/// For people, to the minute: "2026-11-30 17:05 UTC".
pub fn minute_utc(ms: u64) -> String {
    let t = Utc::from_ms(ms);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        t.year, t.month, t.day, t.hour, t.minute
    )
}

/// The time of day for people: "14:02 UTC".
pub fn clock_utc(ms: u64) -> String {
    let t = Utc::from_ms(ms);
    format!("{:02}:{:02} UTC", t.hour, t.minute)
}

/// The date in ISO 8601's basic format, "20261207": day stamps in keys and file names
/// (the SMS gateway's daily counts and outbox names).
pub fn basic_date(ms: u64) -> String {
    let t = Utc::from_ms(ms);
    format!("{:04}{:02}{:02}", t.year, t.month, t.day)
}

/// The time of day in ISO 8601's basic format, "010203".
pub fn basic_time(ms: u64) -> String {
    let t = Utc::from_ms(ms);
    format!("{:02}{:02}{:02}", t.hour, t.minute, t.second)
}

/// An RFC 3339 date-time ("2026-11-30T18:00:00-05:00"; a seconds fraction and `Z`
/// accepted, a leap second taken as the next second) in ms since the Unix epoch; `None`
/// for anything else, and for a time before 1970.
pub fn parse_rfc3339(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())
            .flatten()
    };
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = &frac[digits..];
    }
    let offset_min = match rest {
        "Z" => 0,
        _ if rest.len() == 6 && rest.as_bytes()[3] == b':' => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let oh: i64 = rest[1..3].parse().ok()?;
            let om: i64 = rest[4..6].parse().ok()?;
            sign * (oh * 60 + om)
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_min * 60;
    u64::try_from(secs).ok().map(|s| s * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(iso_8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso_8601(1_796_058_300_000), "2026-11-30T17:05:00Z");
        assert_eq!(minute_utc(951_782_400_000), "2000-02-29 00:00 UTC");
        assert_eq!(minute_utc(1_796_058_300_999), "2026-11-30 17:05 UTC");
        assert_eq!(clock_utc(1_796_058_300_000), "17:05 UTC");
        assert_eq!(basic_date(0), "19700101");
        assert_eq!(basic_date(951_782_400_000), "20000229");
        assert_eq!(basic_date(1_796_601_600_000), "20261207");
        assert_eq!(basic_time(1_796_601_600_000 + 3_723_000), "010203");
        assert_eq!(basic_time(1_796_601_600_000 - 1), "235959");
    }

    #[test]
    fn rfc3339_offsets_fractions_and_refusals() {
        let at = 1_796_058_300_000;
        assert_eq!(parse_rfc3339("2026-11-30T17:05:00Z"), Some(at));
        assert_eq!(parse_rfc3339("2026-11-30T12:05:00-05:00"), Some(at));
        assert_eq!(parse_rfc3339("2026-11-30T18:05:00.250+01:00"), Some(at));
        for bad in [
            "",
            "2026-11-30 17:05:00Z",
            "2026-13-30T17:05:00Z",
            "2026-11-30T17:05:00",
            "2026-11-30T17:05:00.Z",
            "2026-11-30T17:05:00*05:00",
            "1969-12-31T23:59:59Z",
            "2026-11-3xT17:05:00Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    proptest! {
        #[test]
        fn days_round_trip(z in -1_000_000i64..3_000_000) {
            let (y, m, d) = civil_from_days(z);
            prop_assert!((1..=12).contains(&m) && (1..=31).contains(&d));
            prop_assert_eq!(days_from_civil(y, i64::from(m), i64::from(d)), z);
        }

        #[test]
        fn dates_round_trip(y in 1i64..4000, m in 1u32..=12, d in 1u32..=28) {
            let z = days_from_civil(y, i64::from(m), i64::from(d));
            prop_assert_eq!(civil_from_days(z), (y, m, d));
        }

        #[test]
        fn iso_8601_parses_back_to_the_second(ms in 0u64..253_402_300_799_000) {
            prop_assert_eq!(parse_rfc3339(&iso_8601(ms)), Some(ms / 1000 * 1000));
        }
    }
}
