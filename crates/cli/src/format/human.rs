//! Human-readable values exactly as the docker CLI prints them.
//!
//! Sizes and durations follow `github.com/docker/go-units` (`HumanSize`, `BytesSize`,
//! `HumanDuration`, `RAMInBytes`); the column helpers follow docker/cli's
//! `cli/command/formatter` (`TruncateID`, `Ellipsis`, `Command`, `Names`, `Labels`, `Size`,
//! `DisplayablePorts`) and the daemon's status line (`container.State.String`).
//! Which precision docker uses where: `docker ps`/`docker images` sizes use
//! [`human_size_with_precision`]`(n, 3)` (`5.37MB`), `docker system df` and `HumanSize` use 4
//! digits ([`human_size`]), memory uses binary units ([`bytes_size`]).

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset, TimeZone, Utc};

use super::table::is_wide;
use super::template::go_quote;
use super::template::value::go_float_g;

/// Errors from parsing human-readable sizes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HumanError {
    /// No digits, or a negative size.
    #[error("invalid size: '{input}'")]
    InvalidSize { input: String },
    /// The numeric part is not a number.
    #[error("strconv.ParseFloat: parsing \"{number}\": invalid syntax")]
    InvalidNumber { number: String },
    /// An unknown unit suffix.
    #[error("invalid suffix: '{suffix}'")]
    InvalidSuffix { suffix: String },
}

const DECIMAL_UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
const BINARY_UNITS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];

fn scale(mut size: f64, base: f64, units: &[&'static str]) -> (f64, &'static str) {
    let mut i = 0;
    while size >= base && i < units.len() - 1 {
        size /= base;
        i += 1;
    }
    (size, units[i])
}

/// go-units `HumanSizeWithPrecision`: decimal units, `%.*g` (`5.37MB` at precision 3).
pub fn human_size_with_precision(size: f64, precision: usize) -> String {
    let (v, unit) = scale(size, 1000.0, &DECIMAL_UNITS);
    format!("{}{unit}", go_float_g(v, Some(precision)))
}

/// go-units `HumanSize`: decimal units, 4 significant digits (`2.746MB`, `796kB`, `0B`).
pub fn human_size(size: f64) -> String {
    human_size_with_precision(size, 4)
}

/// go-units `BytesSize`: binary units, 4 significant digits (`1KiB`, `64MiB`, `1.5GiB`).
pub fn bytes_size(size: f64) -> String {
    let (v, unit) = scale(size, 1024.0, &BINARY_UNITS);
    format!("{}{unit}", go_float_g(v, Some(4)))
}

fn parse_size(input: &str, binary: bool) -> Result<i64, HumanError> {
    let (num, suffix) = match input.split_once(' ') {
        Some((n, s)) => (n, s),
        None => match input.rfind(|c: char| c.is_ascii_digit() || c == '.') {
            Some(i) => (&input[..=i], &input[i + 1..]),
            None => {
                return Err(HumanError::InvalidSize {
                    input: input.to_string(),
                })
            }
        },
    };
    let valid_float = !num.is_empty()
        && num
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'));
    let size: f64 = match num.parse() {
        Ok(v) if valid_float => v,
        _ => {
            return Err(HumanError::InvalidNumber {
                number: num.to_string(),
            })
        }
    };
    if size < 0.0 {
        return Err(HumanError::InvalidSize {
            input: input.to_string(),
        });
    }
    if suffix.is_empty() {
        return Ok(size as i64);
    }
    let bad = || HumanError::InvalidSuffix {
        suffix: suffix.to_string(),
    };
    if suffix.len() > 3 {
        return Err(bad());
    }
    let lower = suffix.to_ascii_lowercase();
    let bytes = lower.as_bytes();
    if bytes[0] == b'b' {
        return if bytes.len() > 1 {
            Err(HumanError::InvalidSuffix { suffix: lower })
        } else {
            Ok(size as i64)
        };
    }
    let base: f64 = if binary { 1024.0 } else { 1000.0 };
    let power = match bytes[0] {
        b'k' => 1,
        b'm' => 2,
        b'g' => 3,
        b't' => 4,
        b'p' => 5,
        _ => return Err(HumanError::InvalidSuffix { suffix: lower }),
    };
    let ok = match bytes.len() {
        1 => true,
        2 => bytes[1] == b'b',
        _ => &lower[1..] == "ib",
    };
    if !ok {
        return Err(HumanError::InvalidSuffix { suffix: lower });
    }
    Ok((size * base.powi(power)) as i64)
}

/// go-units `RAMInBytes`, used for `--memory` and friends: `512m`, `1g`, `1.5GiB`, `64 kb`;
/// 1024-based, case-insensitive, optional `b`/`ib`.
pub fn parse_bytes(input: &str) -> Result<i64, HumanError> {
    parse_size(input, true)
}

/// go-units `FromHumanSize`: like [`parse_bytes`] but 1000-based (`44kB`, `17MB`).
pub fn parse_human_size(input: &str) -> Result<i64, HumanError> {
    parse_size(input, false)
}

/// go-units `HumanDuration`: "Less than a second", "1 second", "About a minute", "3 minutes",
/// "About an hour", "2 hours", "2 days", "3 weeks", "4 months", "2 years".
pub fn human_duration(seconds: i64) -> String {
    if seconds < 1 {
        return "Less than a second".to_string();
    }
    if seconds == 1 {
        return "1 second".to_string();
    }
    if seconds < 60 {
        return format!("{seconds} seconds");
    }
    let minutes = seconds / 60;
    if minutes == 1 {
        return "About a minute".to_string();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    let hours = (seconds as f64 / 3600.0 + 0.5) as i64;
    if hours == 1 {
        return "About an hour".to_string();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", seconds / 3600 / 24 / 365)
}

/// The `CREATED` column: `human_duration(now - then) + " ago"` ("5 seconds ago").
pub fn time_ago(then: DateTime<Utc>, now: DateTime<Utc>) -> String {
    format!("{} ago", human_duration((now - then).num_seconds()))
}

/// What the daemon's status line is computed from (`container.State`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateSummary {
    pub running: bool,
    pub paused: bool,
    pub restarting: bool,
    pub removal_in_progress: bool,
    pub dead: bool,
    pub exit_code: i64,
    /// `None` when the container never started (Go's zero time).
    pub started_at: Option<DateTime<Utc>>,
    /// `None` when the container never finished.
    pub finished_at: Option<DateTime<Utc>>,
    /// Health status (`starting`, `healthy`, `unhealthy`) when a healthcheck is configured.
    pub health: Option<String>,
}

/// The `STATUS` column as the daemon writes it: `Up 3 seconds`, `Up About a minute (Paused)`,
/// `Up 2 hours (healthy)`, `Up 5 seconds (health: starting)`, `Restarting (1) 3 seconds ago`,
/// `Exited (0) 5 seconds ago`, `Created`, `Removal In Progress`, `Dead`.
pub fn container_status(state: &StateSummary, now: DateTime<Utc>) -> String {
    let since = |t: Option<DateTime<Utc>>| {
        let secs = t.map_or(i64::MAX / 2, |t| (now - t).num_seconds());
        human_duration(secs)
    };
    if state.running {
        let up = since(state.started_at);
        if state.paused {
            return format!("Up {up} (Paused)");
        }
        if state.restarting {
            return format!(
                "Restarting ({}) {} ago",
                state.exit_code,
                since(state.finished_at)
            );
        }
        return match state.health.as_deref() {
            Some("starting") => format!("Up {up} (health: starting)"),
            Some(h) => format!("Up {up} ({h})"),
            None => format!("Up {up}"),
        };
    }
    if state.removal_in_progress {
        return "Removal In Progress".to_string();
    }
    if state.dead {
        return "Dead".to_string();
    }
    if state.started_at.is_none() {
        return "Created".to_string();
    }
    if state.finished_at.is_none() {
        return String::new();
    }
    format!(
        "Exited ({}) {} ago",
        state.exit_code,
        since(state.finished_at)
    )
}

/// docker's `TruncateID`: drops an algorithm prefix (`sha256:`) and keeps 12 characters.
pub fn truncate_id(id: &str) -> &str {
    let id = id.split_once(':').map_or(id, |(_, rest)| rest);
    match id.char_indices().nth(12) {
        Some((i, _)) => &id[..i],
        None => id,
    }
}

/// docker's `Ellipsis`: cuts `s` to `max_width` display columns, ending with `…`.
pub fn ellipsis(s: &str, max_width: usize) -> String {
    if max_width == 0 {
        return String::new();
    }
    let chars: Vec<char> = s.chars().collect();
    if max_width == 1 {
        return chars.first().map(char::to_string).unwrap_or_default();
    }
    if s.is_ascii() {
        if s.len() <= max_width {
            return s.to_string();
        }
        return format!("{}…", &s[..max_width - 1]);
    }
    let mut display = Vec::with_capacity(chars.len());
    let mut width = 0;
    for c in &chars {
        width += if is_wide(*c as u32) { 2 } else { 1 };
        display.push(width);
    }
    if width <= max_width {
        return s.to_string();
    }
    let limit = max_width - 1;
    for i in 0..display.len().saturating_sub(1) {
        if display[i] <= limit && display[i + 1] > limit {
            let head: String = chars[..=i].iter().collect();
            return format!("{head}…");
        }
    }
    s.to_string()
}

/// The `COMMAND` column: Go-quoted, cut to 20 columns unless `--no-trunc`
/// (`"sh -c 'echo hi'"`, `"/docker-entrypoint.…"`).
pub fn command_column(command: &str, trunc: bool) -> String {
    if trunc {
        go_quote(&ellipsis(command, 20))
    } else {
        go_quote(command)
    }
}

/// The `NAMES` column: names without their `/`; truncated output shows only the first name
/// that is not a legacy link (`/other/alias`).
pub fn names_column(names: &[String], trunc: bool) -> String {
    let stripped = names.iter().map(|n| n.strip_prefix('/').unwrap_or(n));
    if trunc {
        return stripped
            .clone()
            .find(|n| !n.contains('/'))
            .unwrap_or("")
            .to_string();
    }
    stripped.collect::<Vec<_>>().join(",")
}

/// The `LABELS` column: sorted `key=value` pairs joined by commas.
pub fn labels_column(labels: &BTreeMap<String, String>) -> String {
    let mut pairs: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    pairs.sort();
    pairs.join(",")
}

/// The `MOUNTS` column: names (or sources of unnamed mounts), each cut to 15 columns.
pub fn mounts_column<'m>(mounts: impl IntoIterator<Item = &'m str>, trunc: bool) -> String {
    mounts
        .into_iter()
        .map(|m| {
            if trunc {
                ellipsis(m, 15)
            } else {
                m.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The `SIZE` column of `docker ps -s`: `2B (virtual 21.5MB)`.
pub fn container_size_column(size_rw: i64, size_root_fs: i64) -> String {
    let rw = human_size_with_precision(size_rw as f64, 3);
    if size_root_fs > 0 {
        format!(
            "{rw} (virtual {})",
            human_size_with_precision(size_root_fs as f64, 3)
        )
    } else {
        rw
    }
}

/// Go's `time.Time.String()` for a whole-second Unix time in the given zone
/// (`2024-05-01 10:00:00 +0000 UTC`), as in the `CreatedAt` column. `zone` is the zone's
/// abbreviation; for a zero offset `UTC` is used when `zone` is empty.
pub fn go_time_string(unix_secs: i64, offset: FixedOffset, zone: &str) -> String {
    let Some(t) = offset.timestamp_opt(unix_secs, 0).single() else {
        return unix_secs.to_string();
    };
    let zone = if zone.is_empty() {
        if offset.local_minus_utc() == 0 {
            "UTC".to_string()
        } else {
            t.format("%z").to_string()
        }
    } else {
        zone.to_string()
    };
    format!("{} {zone}", t.format("%Y-%m-%d %H:%M:%S %z"))
}

/// One entry of a container's port list (the API's `Port`/`PortSummary`).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct PortSummary {
    /// Host IP of a published port; empty for a port that is only exposed.
    pub ip: String,
    pub private_port: u16,
    pub public_port: u16,
    /// `tcp`, `udp` or `sctp`.
    pub protocol: String,
}

fn join_host_port(host: &str, port: &str) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The `PORTS` column (docker's `DisplayablePorts`): consecutive ports compacted into ranges,
/// `0.0.0.0:8080->80/tcp, [::]:8080->80/tcp, 443/tcp`.
pub fn ports_column(ports: &[PortSummary]) -> String {
    let mut ports = ports.to_vec();
    ports.sort_by(|a, b| {
        a.private_port
            .cmp(&b.private_port)
            .then_with(|| a.ip.cmp(&b.ip))
            .then_with(|| a.public_port.cmp(&b.public_port))
            .then_with(|| a.protocol.cmp(&b.protocol))
    });
    let mut groups: BTreeMap<String, (u16, u16)> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut result = Vec::new();
    let mut host_mappings = Vec::new();
    for p in &ports {
        let current = p.private_port;
        let mut key = p.protocol.clone();
        if !p.ip.is_empty() {
            if p.public_port != current {
                host_mappings.push(format!(
                    "{}->{}/{}",
                    join_host_port(&p.ip, &p.public_port.to_string()),
                    p.private_port,
                    p.protocol
                ));
                continue;
            }
            key = format!("{}/{}", p.ip, p.protocol);
        }
        match groups.get_mut(&key) {
            None => {
                groups.insert(key.clone(), (current, current));
                order.push(key);
            }
            Some(group) if group.1.checked_add(1) == Some(current) => group.1 = current,
            Some(group) => {
                result.push(form_group(&key, group.0, group.1));
                *group = (current, current);
            }
        }
    }
    for key in &order {
        if let Some((first, last)) = groups.get(key) {
            result.push(form_group(key, *first, *last));
        }
    }
    result.extend(host_mappings);
    result.join(", ")
}

fn form_group(key: &str, first: u16, last: u16) -> String {
    let parts: Vec<&str> = key.split('/').collect();
    let (ip, proto) = match parts.as_slice() {
        [proto] => ("", *proto),
        [ip, proto, ..] => (*ip, *proto),
        [] => ("", ""),
    };
    let mut group = first.to_string();
    if first != last {
        group = format!("{group}-{last}");
    }
    if !ip.is_empty() {
        group = format!("{}->{group}", join_host_port(ip, &group));
    }
    format!("{group}/{proto}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_go_units() {
        assert_eq!(human_size(0.0), "0B");
        assert_eq!(human_size(1000.0), "1kB");
        assert_eq!(human_size(1024.0), "1.024kB");
        assert_eq!(human_size(2_746_000.0), "2.746MB");
        assert_eq!(human_size(796_000.0), "796kB");
        assert_eq!(human_size(3.5e9), "3.5GB");
        assert_eq!(human_size(999_999.0), "1000kB");
        assert_eq!(human_size(1e30), "1e+06YB");
        let p3 = |n: f64| human_size_with_precision(n, 3);
        assert_eq!(p3(5_368_709.0), "5.37MB");
        assert_eq!(p3(1200.0), "1.2kB");
        assert_eq!(p3(77_800_000.0), "77.8MB");
        assert_eq!(p3(187_654_321.0), "188MB");
        assert_eq!(p3(2.0), "2B");
        assert_eq!(p3(999_999.0), "1e+03kB");
        assert_eq!(bytes_size(1024.0), "1KiB");
        assert_eq!(bytes_size(64.0 * 1024.0 * 1024.0), "64MiB");
        assert_eq!(bytes_size(1.5 * 1024.0 * 1024.0 * 1024.0), "1.5GiB");
        assert_eq!(bytes_size(1023.0), "1023B");
        assert_eq!(bytes_size(5.0 * 1024f64.powi(4)), "5TiB");
    }

    #[test]
    fn parse_bytes_like_ram_in_bytes() {
        assert_eq!(parse_bytes("32"), Ok(32));
        assert_eq!(parse_bytes("32b"), Ok(32));
        assert_eq!(parse_bytes("32B"), Ok(32));
        assert_eq!(parse_bytes("32k"), Ok(32 * 1024));
        assert_eq!(parse_bytes("32Kb"), Ok(32 * 1024));
        assert_eq!(parse_bytes("32KiB"), Ok(32 * 1024));
        assert_eq!(parse_bytes("512m"), Ok(512 * 1024 * 1024));
        assert_eq!(parse_bytes("512 MB"), Ok(512 * 1024 * 1024));
        assert_eq!(parse_bytes("1g"), Ok(1 << 30));
        assert_eq!(parse_bytes("1.5g"), Ok(3 << 29));
        assert_eq!(parse_bytes("2t"), Ok(2 << 40));
        assert_eq!(parse_bytes("1p"), Ok(1 << 50));
        assert_eq!(parse_bytes("0.3k"), Ok(307));
        assert_eq!(parse_human_size("44kB"), Ok(44_000));
        assert_eq!(parse_human_size("17MB"), Ok(17_000_000));
        let err = |s: &str| parse_bytes(s).map_err(|e| e.to_string());
        assert_eq!(err(""), Err("invalid size: ''".to_string()));
        assert_eq!(err("hello"), Err("invalid size: 'hello'".to_string()));
        assert_eq!(err("-32"), Err("invalid size: '-32'".to_string()));
        assert_eq!(err("32x"), Err("invalid suffix: 'x'".to_string()));
        assert_eq!(err("32kbb"), Err("invalid suffix: 'kbb'".to_string()));
        assert_eq!(err("32mm"), Err("invalid suffix: 'mm'".to_string()));
        assert_eq!(err("32bb"), Err("invalid suffix: 'bb'".to_string()));
        assert_eq!(err("32 mib x"), Err("invalid suffix: 'mib x'".to_string()));
        assert_eq!(
            err("1..2m"),
            Err("strconv.ParseFloat: parsing \"1..2\": invalid syntax".to_string())
        );
    }

    #[test]
    fn durations_like_go_units() {
        let cases = [
            (-5, "Less than a second"),
            (0, "Less than a second"),
            (1, "1 second"),
            (2, "2 seconds"),
            (59, "59 seconds"),
            (60, "About a minute"),
            (119, "About a minute"),
            (120, "2 minutes"),
            (3599, "59 minutes"),
            (3600, "About an hour"),
            (5399, "About an hour"),
            (5400, "2 hours"),
            (47 * 3600, "47 hours"),
            (48 * 3600 - 1801, "47 hours"),
            (48 * 3600 - 1800, "2 days"),
            (13 * 86400, "13 days"),
            (14 * 86400, "2 weeks"),
            (59 * 86400, "8 weeks"),
            (60 * 86400, "2 months"),
            (364 * 86400, "12 months"),
            (729 * 86400, "24 months"),
            (730 * 86400, "2 years"),
            (3 * 365 * 86400 + 10, "3 years"),
        ];
        for (secs, want) in cases {
            assert_eq!(human_duration(secs), want, "{secs}s");
        }
    }

    fn t(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + secs, 0)
            .single()
            .unwrap_or_default()
    }

    #[test]
    fn status_lines() {
        let now = t(0);
        let running = StateSummary {
            running: true,
            started_at: Some(t(-3)),
            ..StateSummary::default()
        };
        assert_eq!(container_status(&running, now), "Up 3 seconds");
        let s = StateSummary {
            started_at: Some(t(-90)),
            ..running.clone()
        };
        assert_eq!(container_status(&s, now), "Up About a minute");
        let s = StateSummary {
            paused: true,
            started_at: Some(t(-7200)),
            ..running.clone()
        };
        assert_eq!(container_status(&s, now), "Up 2 hours (Paused)");
        let s = StateSummary {
            health: Some("healthy".into()),
            ..running.clone()
        };
        assert_eq!(container_status(&s, now), "Up 3 seconds (healthy)");
        let s = StateSummary {
            health: Some("starting".into()),
            ..running.clone()
        };
        assert_eq!(container_status(&s, now), "Up 3 seconds (health: starting)");
        let s = StateSummary {
            restarting: true,
            exit_code: 1,
            finished_at: Some(t(-3)),
            ..running.clone()
        };
        assert_eq!(container_status(&s, now), "Restarting (1) 3 seconds ago");
        let exited = StateSummary {
            started_at: Some(t(-10)),
            finished_at: Some(t(-5)),
            ..StateSummary::default()
        };
        assert_eq!(container_status(&exited, now), "Exited (0) 5 seconds ago");
        let s = StateSummary {
            exit_code: 137,
            finished_at: Some(t(-3 * 86400)),
            ..exited.clone()
        };
        assert_eq!(container_status(&s, now), "Exited (137) 3 days ago");
        assert_eq!(container_status(&StateSummary::default(), now), "Created");
        let s = StateSummary {
            removal_in_progress: true,
            ..exited.clone()
        };
        assert_eq!(container_status(&s, now), "Removal In Progress");
        let s = StateSummary {
            dead: true,
            ..exited.clone()
        };
        assert_eq!(container_status(&s, now), "Dead");
        assert_eq!(time_ago(t(-5), now), "5 seconds ago");
        assert_eq!(time_ago(t(-86400), now), "24 hours ago");
    }

    #[test]
    fn ids_and_ellipsis() {
        let full = "sha256:4f2a9c1d3b5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a";
        assert_eq!(truncate_id(full), "4f2a9c1d3b5e");
        assert_eq!(truncate_id("abc"), "abc");
        assert_eq!(truncate_id("4f2a9c1d3b5e6f7a"), "4f2a9c1d3b5e");
        let cases = [
            ("teststring", 0, ""),
            ("teststring", 1, "t"),
            ("teststring", 2, "t…"),
            ("teststring", 6, "tests…"),
            ("teststring", 20, "teststring"),
            ("t🐳ststring", 0, ""),
            ("t🐳ststring", 1, "t"),
            ("t🐳ststring", 2, "t…"),
            ("t🐳ststring", 6, "t🐳st…"),
            ("t🐳ststring", 20, "t🐳ststring"),
            ("你好世界teststring", 1, "你"),
            ("你好世界teststring", 3, "你…"),
            ("你好世界teststring", 6, "你好…"),
            ("你好世界teststring", 20, "你好世界teststring"),
        ];
        for (s, w, want) in cases {
            assert_eq!(ellipsis(s, w), want, "{s} {w}");
        }
    }

    #[test]
    fn command_names_labels_mounts_size() {
        assert_eq!(
            command_column("sh -c 'echo hi'", true),
            "\"sh -c 'echo hi'\""
        );
        assert_eq!(
            command_column("/docker-entrypoint.sh nginx -g 'daemon off;'", true),
            "\"/docker-entrypoint.…\""
        );
        assert_eq!(
            command_column("/docker-entrypoint.sh nginx", false),
            "\"/docker-entrypoint.sh nginx\""
        );
        assert_eq!(command_column("", true), "\"\"");
        assert_eq!(command_column("echo \"x\"", true), r#""echo \"x\"""#);
        let names = vec!["/web".to_string(), "/other/alias".to_string()];
        assert_eq!(names_column(&names, true), "web");
        assert_eq!(names_column(&names, false), "web,other/alias");
        let names = vec!["/a/link".to_string(), "/real".to_string()];
        assert_eq!(names_column(&names, true), "real");
        let labels: BTreeMap<String, String> = [("b", "2"), ("a", "1")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(labels_column(&labels), "a=1,b=2");
        assert_eq!(
            mounts_column(["data", "/var/lib/docker/volumes/abc"], true),
            "data,/var/lib/docke…"
        );
        assert_eq!(container_size_column(2, 21_500_000), "2B (virtual 21.5MB)");
        assert_eq!(container_size_column(0, 0), "0B");
    }

    #[test]
    fn go_time_strings() {
        let utc = FixedOffset::east_opt(0).unwrap_or_else(|| unreachable!());
        assert_eq!(
            go_time_string(1_700_000_000, utc, ""),
            "2023-11-14 22:13:20 +0000 UTC"
        );
        let cet = FixedOffset::east_opt(3600).unwrap_or_else(|| unreachable!());
        assert_eq!(
            go_time_string(1_700_000_000, cet, "CET"),
            "2023-11-14 23:13:20 +0100 CET"
        );
        assert_eq!(
            go_time_string(1_700_000_000, cet, ""),
            "2023-11-14 23:13:20 +0100 +0100"
        );
    }

    fn p(ip: &str, private_port: u16, public_port: u16, protocol: &str) -> PortSummary {
        PortSummary {
            ip: ip.to_string(),
            private_port,
            public_port,
            protocol: protocol.to_string(),
        }
    }

    #[test]
    fn ports_like_docker_displayable_ports() {
        let cases: Vec<(Vec<PortSummary>, &str)> = vec![
            (vec![p("", 9988, 0, "tcp")], "9988/tcp"),
            (vec![p("", 9988, 0, "udp")], "9988/udp"),
            (vec![p("0.0.0.0", 9988, 0, "tcp")], "0.0.0.0:0->9988/tcp"),
            (vec![p("::", 9988, 0, "tcp")], "[::]:0->9988/tcp"),
            (vec![p("", 9988, 8899, "tcp")], "9988/tcp"),
            (vec![p("4.3.2.1", 9988, 8899, "tcp")], "4.3.2.1:8899->9988/tcp"),
            (vec![p("::1", 9988, 8899, "tcp")], "[::1]:8899->9988/tcp"),
            (vec![p("4.3.2.1", 9988, 9988, "tcp")], "4.3.2.1:9988->9988/tcp"),
            (vec![p("::1", 9988, 9988, "tcp")], "[::1]:9988->9988/tcp"),
            (
                vec![p("", 9988, 0, "udp"), p("", 9988, 0, "udp")],
                "9988/udp, 9988/udp",
            ),
            (
                vec![p("1.2.3.4", 9998, 9998, "udp"), p("1.2.3.4", 9999, 9999, "udp")],
                "1.2.3.4:9998-9999->9998-9999/udp",
            ),
            (
                vec![p("::1", 9998, 9998, "udp"), p("::1", 9999, 9999, "udp")],
                "[::1]:9998-9999->9998-9999/udp",
            ),
            (
                vec![p("1.2.3.4", 9998, 8887, "udp"), p("1.2.3.4", 9999, 8888, "udp")],
                "1.2.3.4:8887->9998/udp, 1.2.3.4:8888->9999/udp",
            ),
            (
                vec![p("", 9998, 0, "udp"), p("", 9999, 0, "udp")],
                "9998-9999/udp",
            ),
            (
                vec![p("1.2.3.4", 6677, 7766, "tcp"), p("", 9988, 8899, "udp")],
                "9988/udp, 1.2.3.4:7766->6677/tcp",
            ),
            (
                vec![
                    p("1.2.3.4", 9988, 8899, "udp"),
                    p("1.2.3.4", 9988, 8899, "tcp"),
                    p("4.3.2.1", 2233, 3322, "tcp"),
                    p("::1", 2233, 3322, "tcp"),
                ],
                "4.3.2.1:3322->2233/tcp, [::1]:3322->2233/tcp, 1.2.3.4:8899->9988/tcp, 1.2.3.4:8899->9988/udp",
            ),
            (
                vec![
                    p("", 9988, 8899, "udp"),
                    p("1.2.3.4", 6677, 7766, "tcp"),
                    p("4.3.2.1", 2233, 3322, "tcp"),
                ],
                "9988/udp, 4.3.2.1:3322->2233/tcp, 1.2.3.4:7766->6677/tcp",
            ),
            (
                vec![
                    p("0.0.0.0", 80, 8080, "tcp"),
                    p("::", 80, 8080, "tcp"),
                    p("", 443, 0, "tcp"),
                ],
                "443/tcp, 0.0.0.0:8080->80/tcp, [::]:8080->80/tcp",
            ),
            (
                vec![
                    p("0.0.0.0", 8000, 8000, "tcp"),
                    p("0.0.0.0", 8001, 8001, "tcp"),
                    p("0.0.0.0", 8003, 8003, "tcp"),
                ],
                "0.0.0.0:8000-8001->8000-8001/tcp, 0.0.0.0:8003->8003/tcp",
            ),
            (vec![], ""),
        ];
        for (ports, want) in cases {
            assert_eq!(ports_column(&ports), want, "{ports:?}");
        }
    }
}
