//! The one time format the front door writes, `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC, milliseconds:
//! audit lines, events, error messages), and the one RFC 3339 reader (audit query bounds, the
//! engine's container times). Because every line is written in this
//! one fixed-width format, two times in it compare as strings, so a query normalizes its
//! bounds once and never parses a line's time.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` for a UTC instant (civil-from-days, H. Hinnant).
pub fn rfc3339_utc(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// Days since 1970-01-01 of a proleptic Gregorian date (days-from-civil, H. Hinnant).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Reads an RFC 3339 instant: `2026-11-29T15:04:05Z`, with an optional fraction and a `Z` or
/// `±HH:MM` offset (`t`/`z` and a space for `T` too), or a bare date `2026-11-29` meaning its
/// midnight UTC. `None` for anything else, including instants before 1970.
pub fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let b = text.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let digits = b.get(from..from + len)?;
        digits.iter().all(u8::is_ascii_digit).then(|| {
            digits
                .iter()
                .fold(0i64, |n, d| n * 10 + i64::from(d - b'0'))
        })
    };
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let date_secs = days_from_civil(year, month, day) * 86_400;
    if b.len() == 10 {
        return at(date_secs, 0);
    }
    if !matches!(b.get(10), Some(b'T' | b't' | b' '))
        || b.get(13) != Some(&b':')
        || b.get(16) != Some(&b':')
    {
        return None;
    }
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    // 60 is a leap second; it reads as the next second's start.
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut i = 19;
    let mut nanos = 0u32;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            if i - start < 9 {
                nanos = nanos * 10 + u32::from(b[i] - b'0');
            }
            i += 1;
        }
        let digits = i - start;
        if digits == 0 {
            return None;
        }
        nanos *= 10u32.pow(9u32.saturating_sub(digits as u32));
    }
    let offset = match b.get(i..)? {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let hh = num(i + 1, 2)?;
            let mm = num(i + 4, 2)?;
            if hh > 23 || mm > 59 {
                return None;
            }
            let secs = hh * 3600 + mm * 60;
            if *sign == b'+' {
                secs
            } else {
                -secs
            }
        }
        _ => return None,
    };
    at(
        date_secs + hour * 3600 + minute * 60 + second - offset,
        nanos,
    )
}

fn at(secs: i64, nanos: u32) -> Option<SystemTime> {
    let secs = u64::try_from(secs).ok()?;
    UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339_utc(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(951_782_400_123); // leap day 2000
        assert_eq!(rfc3339_utc(t), "2000-02-29T00:00:00.123Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_795_000_000);
        assert_eq!(rfc3339_utc(t), "2026-11-18T11:06:40.000Z");
    }

    #[test]
    fn reads_what_it_writes_and_common_spellings() {
        for ms in [0u64, 951_782_400_123, 1_795_000_000_000, 4_102_444_799_999] {
            let t = UNIX_EPOCH + Duration::from_millis(ms);
            assert_eq!(parse_rfc3339(&rfc3339_utc(t)), Some(t), "{ms}");
        }
        let t = UNIX_EPOCH + Duration::from_secs(1_795_000_000);
        for text in [
            "2026-11-18T11:06:40Z",
            "2026-11-18t11:06:40z",
            "2026-11-18 11:06:40Z",
            "2026-11-18T12:36:40+01:30",
            "2026-11-18T06:06:40-05:00",
            "2026-11-18T11:06:40.000000000Z",
        ] {
            assert_eq!(parse_rfc3339(text), Some(t), "{text}");
        }
        assert_eq!(
            parse_rfc3339("2026-11-18"),
            Some(UNIX_EPOCH + Duration::from_secs(1_794_960_000))
        );
        assert_eq!(
            parse_rfc3339("2026-11-18T11:06:40.5Z"),
            Some(t + Duration::from_millis(500))
        );
    }

    #[test]
    fn reads_the_engines_container_times() {
        let t = parse_rfc3339("2024-02-29T12:00:01.123456789Z").unwrap();
        let secs = t.duration_since(UNIX_EPOCH).unwrap().as_secs();
        assert_eq!(secs, 1_709_208_001);
        // Docker's zero time: a container that never started.
        assert!(parse_rfc3339("0001-01-01T00:00:00Z").is_none());
        assert!(parse_rfc3339("garbage").is_none());
    }

    #[test]
    fn refuses_what_is_not_an_instant() {
        for text in [
            "",
            "yesterday",
            "2026-11-18T11:06:40",
            "2026-13-01",
            "2026-02-29",
            "2026-11-31T00:00:00Z",
            "2026-11-18T24:00:00Z",
            "2026-11-18T11:06:40.Z",
            "2026-11-18T11:06:40+0100",
            "2026-11-18T11:06:40Z trailing",
            "1969-12-31T23:59:59Z",
            "+2026-11-18",
            "２０２６-11-18",
        ] {
            assert_eq!(parse_rfc3339(text), None, "{text:?}");
        }
        assert!(parse_rfc3339("2024-02-29").is_some(), "a leap day");
    }
}
