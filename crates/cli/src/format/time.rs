//! Time values given on the command line: Go durations and docker's `--since`/`--until`
//! timestamps.
//!
//! [`parse_go_duration`] is Go's `time.ParseDuration` (`300ms`, `-1.5h`, `1h30m`, `2h45m10s`).
//! [`get_timestamp`] is docker's `GetTimestamp`: a duration is taken relative to a reference time
//! (`10m` means ten minutes ago), RFC 3339 forms (`2006-01-02T15:04:05Z`, with or without zone,
//! seconds, minutes, fraction, or a bare date) are parsed, and Unix timestamps
//! (`1700000000`, `1700000000.5`) pass through. It returns the string docker sends to the API;
//! [`parse_timestamp`] turns such a string into seconds and nanoseconds since the epoch, and
//! [`timestamp_seconds`] does both steps.

use berth_build::duration::DurationError;
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone};

/// Errors from parsing durations and timestamps.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    /// Not a Go duration.
    #[error("time: invalid duration \"{input}\"")]
    InvalidDuration { input: String },
    /// A Go duration without a unit.
    #[error("time: missing unit in duration \"{input}\"")]
    MissingUnit { input: String },
    /// A Go duration with an unknown unit.
    #[error("time: unknown unit \"{unit}\" in duration \"{input}\"")]
    UnknownUnit { unit: String, input: String },
    /// A date-like value that does not parse.
    #[error("parsing time \"{input}\": invalid {what}")]
    InvalidTime { input: String, what: &'static str },
    /// Neither a time, a duration nor a Unix timestamp.
    #[error("failed to parse value as time or duration: \"{input}\"")]
    Unrecognized { input: String },
    /// A malformed Unix timestamp.
    #[error("invalid timestamp \"{input}\"")]
    InvalidTimestamp { input: String },
}

/// Go's `time.ParseDuration`, in nanoseconds.
pub fn parse_go_duration(input: &str) -> Result<i64, TimeError> {
    berth_build::duration::parse_go_duration(input).map_err(|e| match e {
        DurationError::Invalid { input } => TimeError::InvalidDuration { input },
        DurationError::MissingUnit { input } => TimeError::MissingUnit { input },
        DurationError::UnknownUnit { unit, input } => TimeError::UnknownUnit { unit, input },
    })
}

/// docker's `GetTimestamp`: the value to send for `since`/`until`, given the reference time
/// (normally now, in the local zone; its offset applies to times without a zone).
pub fn get_timestamp(value: &str, reference: DateTime<FixedOffset>) -> Result<String, TimeError> {
    if value != "0" {
        if let Ok(nanos) = parse_go_duration(value) {
            let t = reference.timestamp_nanos_opt().unwrap_or(0) as i128 - nanos as i128;
            return Ok(t.div_euclid(1_000_000_000).to_string());
        }
    }
    let in_location = !value.contains(['z', 'Z', '+']) && value.matches('-').count() != 3;
    match parse_time(value, in_location, *reference.offset()) {
        Ok(t) => Ok(format!(
            "{}.{:09}",
            t.timestamp(),
            t.timestamp_subsec_nanos()
        )),
        Err(e) => {
            if value.contains('-') {
                return Err(e);
            }
            if parse_timestamp(value).is_err() {
                return Err(TimeError::Unrecognized {
                    input: value.to_string(),
                });
            }
            Ok(value.to_string())
        }
    }
}

/// docker's `ParseTimestamps`: `seconds[.fraction]` into seconds and nanoseconds.
pub fn parse_timestamp(value: &str) -> Result<(i64, i64), TimeError> {
    let bad = || TimeError::InvalidTimestamp {
        input: value.to_string(),
    };
    let (s, n) = match value.split_once('.') {
        Some((s, n)) => (s, Some(n)),
        None => (value, None),
    };
    let secs: i64 = s.parse().map_err(|_| bad())?;
    let Some(n) = n else { return Ok((secs, 0)) };
    let nanos: i64 = n.parse().map_err(|_| bad())?;
    let scaled = nanos as f64 * 10f64.powi(9 - n.len() as i32);
    Ok((secs, scaled as i64))
}

/// [`get_timestamp`] followed by [`parse_timestamp`]: seconds and nanoseconds since the epoch.
pub fn timestamp_seconds(
    value: &str,
    reference: DateTime<FixedOffset>,
) -> Result<(i64, i64), TimeError> {
    parse_timestamp(&get_timestamp(value, reference)?)
}

/// Parses the RFC 3339 shapes `GetTimestamp` accepts: `2006-01-02`, `2006-01-02Z07:00`,
/// `2006-01-02T15`, `2006-01-02T15:04`, `2006-01-02T15:04:05[.999999999]`, each with a zone
/// (`Z` or `±07:00`) unless `local`, in which case `offset` applies.
fn parse_time(
    value: &str,
    local: bool,
    offset: FixedOffset,
) -> Result<DateTime<FixedOffset>, TimeError> {
    let bad = |what: &'static str| TimeError::InvalidTime {
        input: value.to_string(),
        what,
    };
    let date_part = value.get(..10).ok_or_else(|| bad("date"))?;
    let db = date_part.as_bytes();
    let digits = |r: std::ops::Range<usize>| db[r].iter().all(u8::is_ascii_digit);
    if !(digits(0..4) && db[4] == b'-' && digits(5..7) && db[7] == b'-' && digits(8..10)) {
        return Err(bad("date"));
    }
    let num = |s: &str| s.parse::<u32>().map_err(|_| bad("date"));
    let date = NaiveDate::from_ymd_opt(
        num(&date_part[..4])? as i32,
        num(&date_part[5..7])?,
        num(&date_part[8..10])?,
    )
    .ok_or_else(|| bad("date"))?;
    let mut rest = &value[10..];
    let (mut h, mut m, mut sec, mut nanos) = (0, 0, 0, 0);
    if let Some(t) = rest.strip_prefix('T') {
        let take2 = |s: &str, min: usize| -> Option<(u32, usize)> {
            let n = s.bytes().take(2).take_while(u8::is_ascii_digit).count();
            if n < min {
                return None;
            }
            Some((s[..n].parse().ok()?, n))
        };
        let (hh, n) = take2(t, 1).ok_or_else(|| bad("hour"))?;
        h = hh;
        rest = &t[n..];
        if let Some(r) = rest.strip_prefix(':') {
            let (mm, n) = take2(r, 2).ok_or_else(|| bad("minute"))?;
            m = mm;
            rest = &r[n..];
            if let Some(r) = rest.strip_prefix(':') {
                let (ss, n) = take2(r, 2).ok_or_else(|| bad("second"))?;
                sec = ss;
                rest = &r[n..];
                if let Some(r) = rest.strip_prefix(['.', ',']) {
                    let n = r.bytes().take_while(u8::is_ascii_digit).count();
                    if n == 0 {
                        return Err(bad("fraction"));
                    }
                    let frac: String = r[..n].chars().chain("000000000".chars()).take(9).collect();
                    nanos = frac.parse().map_err(|_| bad("fraction"))?;
                    rest = &r[n..];
                }
            }
        }
    }
    let time = NaiveTime::from_hms_nano_opt(h, m, sec, nanos).ok_or_else(|| bad("time"))?;
    let naive = NaiveDateTime::new(date, time);
    let zone = if local {
        if !rest.is_empty() {
            return Err(bad("zone"));
        }
        offset
    } else {
        parse_zone(rest).ok_or_else(|| bad("zone"))?
    };
    zone.from_local_datetime(&naive)
        .single()
        .ok_or_else(|| bad("time"))
}

fn parse_zone(s: &str) -> Option<FixedOffset> {
    if s == "Z" {
        return FixedOffset::east_opt(0);
    }
    let b = s.as_bytes();
    if b.len() != 6 || !(b[0] == b'+' || b[0] == b'-') || b[3] != b':' {
        return None;
    }
    let hh: i32 = s[1..3].parse().ok()?;
    let mm: i32 = s[4..6].parse().ok()?;
    if hh > 24 || mm > 59 {
        return None;
    }
    let secs = (hh * 3600 + mm * 60) * if b[0] == b'-' { -1 } else { 1 };
    FixedOffset::east_opt(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("0"), Ok(0));
        assert_eq!(parse_go_duration("10m"), Ok(600 * S));
        assert_eq!(parse_go_duration("1h30m"), Ok(5400 * S));
        assert_eq!(
            parse_go_duration("2h45m10s"),
            Ok((2 * 3600 + 45 * 60 + 10) * S)
        );
        assert_eq!(parse_go_duration("300ms"), Ok(300_000_000));
        assert_eq!(parse_go_duration("-1.5h"), Ok(-5400 * S));
        assert_eq!(parse_go_duration("1.5s"), Ok(1_500_000_000));
        assert_eq!(parse_go_duration(".5m"), Ok(30 * S));
        assert_eq!(parse_go_duration("1us"), Ok(1_000));
        assert_eq!(parse_go_duration("1µs"), Ok(1_000));
        assert_eq!(parse_go_duration("+5ns"), Ok(5));
        let err = |s: &str| parse_go_duration(s).map_err(|e| e.to_string());
        assert_eq!(err(""), Err("time: invalid duration \"\"".into()));
        assert_eq!(
            err("10"),
            Err("time: missing unit in duration \"10\"".into())
        );
        assert_eq!(
            err("3d"),
            Err("time: unknown unit \"d\" in duration \"3d\"".into())
        );
        assert_eq!(err("."), Err("time: invalid duration \".\"".into()));
        assert_eq!(err("h"), Err("time: invalid duration \"h\"".into()));
        assert!(parse_go_duration("9999999999h").is_err());
    }

    fn reference() -> DateTime<FixedOffset> {
        let utc = FixedOffset::east_opt(0).unwrap_or_else(|| unreachable!());
        utc.timestamp_opt(1_700_000_000, 0)
            .single()
            .unwrap_or_else(|| unreachable!())
    }

    #[test]
    fn timestamps_like_docker() {
        let r = reference();
        let get = |v: &str| get_timestamp(v, r).map_err(|e| e.to_string());
        assert_eq!(get("10m"), Ok("1699999400".into()));
        assert_eq!(get("1h30m"), Ok("1699994600".into()));
        assert_eq!(
            get("2023-11-14T22:13:20Z"),
            Ok("1700000000.000000000".into())
        );
        assert_eq!(
            get("2023-11-14T22:13:20.5Z"),
            Ok("1700000000.500000000".into())
        );
        assert_eq!(
            get("2023-11-14T23:13:20+01:00"),
            Ok("1700000000.000000000".into())
        );
        assert_eq!(
            get("2023-11-14T22:13:20"),
            Ok("1700000000.000000000".into())
        );
        assert_eq!(get("2023-11-14T22:13"), Ok("1699999980.000000000".into()));
        assert_eq!(get("2023-11-14T22"), Ok("1699999200.000000000".into()));
        assert_eq!(get("2023-11-14"), Ok("1699920000.000000000".into()));
        assert_eq!(get("2023-11-14Z"), Ok("1699920000.000000000".into()));
        assert_eq!(get("2023-11-14T22:13Z"), Ok("1699999980.000000000".into()));
        assert_eq!(get("1700000000"), Ok("1700000000".into()));
        assert_eq!(get("1700000000.123"), Ok("1700000000.123".into()));
        assert_eq!(get("0"), Ok("0".into()));
        assert!(get("2023-13-14").is_err());
        assert_eq!(
            get("yesterday"),
            Err("failed to parse value as time or duration: \"yesterday\"".into())
        );
        let cet = FixedOffset::east_opt(3600).unwrap_or_else(|| unreachable!());
        let local_ref = r.with_timezone(&cet);
        assert_eq!(
            get_timestamp("2023-11-14T23:13:20", local_ref),
            Ok("1700000000.000000000".into())
        );
    }

    #[test]
    fn unix_timestamps() {
        assert_eq!(parse_timestamp("1700000000"), Ok((1_700_000_000, 0)));
        assert_eq!(
            parse_timestamp("1700000000.5"),
            Ok((1_700_000_000, 500_000_000))
        );
        assert_eq!(parse_timestamp("1.000000001"), Ok((1, 1)));
        assert!(parse_timestamp("x").is_err());
        assert!(parse_timestamp("1.x").is_err());
        assert_eq!(
            timestamp_seconds("10m", reference()),
            Ok((1_699_999_400, 0))
        );
        assert_eq!(
            timestamp_seconds("2023-11-14T22:13:20.25Z", reference()),
            Ok((1_700_000_000, 250_000_000))
        );
    }
}
