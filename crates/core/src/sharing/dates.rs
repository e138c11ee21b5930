//! Expiry dates. Clients send `YYYY-MM-DD` or an ISO-8601 date-time (only the
//! date counts, as in Nextcloud) and read `YYYY-MM-DD 00:00:00`. A share
//! whose date is D is valid until D 00:00 UTC, so the earliest date accepted
//! is tomorrow. All dates are UTC.

use super::ShareError;
use crate::civil_from_days;

const DAY: i64 = 86_400;

/// What a client asked for the expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// Not mentioned: the policy's default applies (on create) or nothing changes.
    Unset,
    /// An empty value: no expiry wanted.
    Never,
    /// 00:00 UTC of the given date, in seconds.
    At(i64),
}

/// Parses a date as clients send it: `YYYY-MM-DD`, optionally followed by
/// `T` or a space and a time (ignored), optionally in quotes.
pub fn parse_date(raw: &str) -> Result<i64, ShareError> {
    let bad = || ShareError::new(400, "Invalid date. Format must be YYYY-MM-DD");
    let s = raw.trim().trim_matches('"');
    let date = s.get(..10).ok_or_else(bad)?;
    let rest = &s[10..];
    if !(rest.is_empty() || rest.starts_with('T') || rest.starts_with(' ')) {
        return Err(bad());
    }
    let b = date.as_bytes();
    if b[4] != b'-' || b[7] != b'-' {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| -> Result<i64, ShareError> {
        let part = &date[r];
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        part.parse().map_err(|_| bad())
    };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return Err(bad());
    }
    Ok(days_from_civil(y, m, d) * DAY)
}

/// `YYYY-MM-DD 00:00:00` for a stored expiry.
pub fn format_date(at: i64) -> String {
    let (y, m, d) = civil_from_days(at.div_euclid(DAY));
    format!("{y:04}-{m:02}-{d:02} 00:00:00")
}

/// 00:00 UTC of the day `now` falls in.
pub fn day_start(now: i64) -> i64 {
    now.div_euclid(DAY) * DAY
}

pub(crate) fn days(n: u32) -> i64 {
    i64::from(n) * DAY
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_and_bad_ones_are_refused() {
        assert_eq!(parse_date("1970-01-02").unwrap(), DAY);
        let t = parse_date("2026-12-24").unwrap();
        assert_eq!(format_date(t), "2026-12-24 00:00:00");
        assert_eq!(parse_date("2026-12-24T15:30:00+01:00").unwrap(), t);
        assert_eq!(parse_date("\"2026-12-24 10:00:00\"").unwrap(), t);
        assert_eq!(parse_date("2024-02-29").map(format_date).unwrap(), "2024-02-29 00:00:00");
        for bad in [
            "",
            "2026-13-01",
            "2026-02-30",
            "2025-02-29",
            "26-12-24",
            "2026/12/24",
            "2026-12-24x",
            "yesterday",
            "2026-1a-01",
        ] {
            assert!(parse_date(bad).is_err(), "{bad}");
        }
        assert_eq!(day_start(t + 5000), t);
    }
}
