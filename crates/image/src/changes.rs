//! Dockerfile-style `--change` instructions applied to an image's container config (import).
//!
//! Supported, as `docker import --change` does: `CMD`, `ENTRYPOINT`, `ENV`, `EXPOSE`,
//! `HEALTHCHECK`, `LABEL`, `ONBUILD`, `SHELL`, `STOPSIGNAL`, `USER`, `VOLUME`, `WORKDIR`. JSON
//! (exec) and shell forms are both accepted. Variable substitution (`$VAR`) is not performed.

use serde_json::Value;
use thiserror::Error;

use crate::config::{ContainerConfig, HealthConfig};
use crate::error::ErrorKind;

/// Why a change instruction was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ChangeError {
    /// The instruction is not one `--change` accepts.
    #[error("{instruction} is not a valid change command")]
    Unknown { instruction: String },
    /// The instruction's arguments are malformed.
    #[error("{instruction}: {reason}")]
    Invalid { instruction: String, reason: String },
}

impl ChangeError {
    /// Every change error is the caller's fault.
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidArgument
    }
}

fn invalid(instruction: &str, reason: impl Into<String>) -> ChangeError {
    ChangeError::Invalid {
        instruction: instruction.to_string(),
        reason: reason.into(),
    }
}

/// Applies every change in order.
pub fn apply_changes(config: &mut ContainerConfig, changes: &[String]) -> Result<(), ChangeError> {
    for change in changes {
        apply_change(config, change)?;
    }
    Ok(())
}

fn apply_change(config: &mut ContainerConfig, change: &str) -> Result<(), ChangeError> {
    let change = change.trim();
    let (word, args) = match change.split_once(char::is_whitespace) {
        Some((w, a)) => (w, a.trim()),
        None => (change, ""),
    };
    let ins = word.to_uppercase();
    match ins.as_str() {
        "CMD" => config.cmd = Some(command(&ins, args, config.shell.as_deref(), false)?),
        "ENTRYPOINT" => {
            config.entrypoint = Some(command(&ins, args, config.shell.as_deref(), true)?)
        }
        "SHELL" => match json_array(args) {
            Some(v) if !v.is_empty() => config.shell = Some(v),
            _ => return Err(invalid(&ins, "requires the arguments to be in JSON form")),
        },
        "ENV" => {
            let env = config.env.get_or_insert_with(Vec::new);
            for (k, v) in key_values(&ins, args)? {
                env.retain(|e| e.split_once('=').map(|(ek, _)| ek) != Some(k.as_str()));
                env.push(format!("{k}={v}"));
            }
        }
        "LABEL" => {
            let labels = config.labels.get_or_insert_with(Default::default);
            for (k, v) in key_values(&ins, args)? {
                labels.insert(k, v);
            }
        }
        "EXPOSE" => {
            let words = split_words(&ins, args)?;
            if words.is_empty() {
                return Err(invalid(&ins, "requires at least one argument"));
            }
            let ports = config.exposed_ports.get_or_insert_with(Default::default);
            for w in words {
                for p in expand_port(&ins, &w)? {
                    ports.insert(p, Value::Object(Default::default()));
                }
            }
        }
        "VOLUME" => {
            let list = match json_array(args) {
                Some(v) => v,
                None => split_words(&ins, args)?,
            };
            if list.is_empty() || list.iter().any(|v| v.trim().is_empty()) {
                return Err(invalid(&ins, "specified cannot be an empty string"));
            }
            let vols = config.volumes.get_or_insert_with(Default::default);
            for v in list {
                vols.insert(v, Value::Object(Default::default()));
            }
        }
        "WORKDIR" => {
            if args.is_empty() {
                return Err(invalid(&ins, "requires exactly one argument"));
            }
            let dir = if args.starts_with('/') {
                args.to_string()
            } else {
                let base = config
                    .working_dir
                    .clone()
                    .unwrap_or_else(|| "/".to_string());
                format!("{}/{args}", base.trim_end_matches('/'))
            };
            config.working_dir = Some(dir);
        }
        "USER" | "STOPSIGNAL" => {
            if args.is_empty() || args.contains(char::is_whitespace) {
                return Err(invalid(&ins, "requires exactly one argument"));
            }
            if ins == "USER" {
                config.user = Some(args.to_string());
            } else {
                config.stop_signal = Some(args.to_string());
            }
        }
        "ONBUILD" => {
            let (trigger, _) = args.split_once(char::is_whitespace).unwrap_or((args, ""));
            let t = trigger.to_uppercase();
            if t.is_empty() || matches!(t.as_str(), "ONBUILD" | "FROM" | "MAINTAINER") {
                return Err(invalid(
                    &ins,
                    format!("{t} isn't allowed as an ONBUILD trigger"),
                ));
            }
            config
                .on_build
                .get_or_insert_with(Vec::new)
                .push(args.to_string());
        }
        "HEALTHCHECK" => config.healthcheck = Some(healthcheck(&ins, args)?),
        _ => return Err(ChangeError::Unknown { instruction: ins }),
    }
    Ok(())
}

fn json_array(args: &str) -> Option<Vec<String>> {
    if !args.starts_with('[') {
        return None;
    }
    serde_json::from_str::<Vec<String>>(args).ok()
}

fn command(
    ins: &str,
    args: &str,
    shell: Option<&[String]>,
    allow_empty: bool,
) -> Result<Vec<String>, ChangeError> {
    if let Some(v) = json_array(args) {
        return Ok(v);
    }
    if args.is_empty() {
        if allow_empty {
            return Ok(Vec::new());
        }
        return Err(invalid(ins, "requires at least one argument"));
    }
    let mut v: Vec<String> = match shell {
        Some(s) if !s.is_empty() => s.to_vec(),
        _ => vec!["/bin/sh".to_string(), "-c".to_string()],
    };
    v.push(args.to_string());
    Ok(v)
}

/// Splits on whitespace honouring double/single quotes and backslash escapes.
fn split_words(ins: &str, s: &str) -> Result<Vec<String>, ChangeError> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') | (None, '\\') => match chars.next() {
                Some(n) => cur.push(n),
                None => return Err(invalid(ins, "trailing backslash")),
            },
            (Some(_), c) => cur.push(c),
            (None, '"') | (None, '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
        if quote.is_some() {
            in_word = true;
        }
    }
    if quote.is_some() {
        return Err(invalid(ins, "unterminated quote"));
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// `K=V K2="v 2"`, or the legacy `K value with spaces`.
fn key_values(ins: &str, args: &str) -> Result<Vec<(String, String)>, ChangeError> {
    let words = split_words(ins, args)?;
    let Some(first) = words.first() else {
        return Err(invalid(ins, "requires at least one argument"));
    };
    if !first.contains('=') {
        let (k, rest) = args.split_once(char::is_whitespace).unwrap_or((args, ""));
        let value = split_words(ins, rest.trim())?.join(" ");
        if rest.trim().is_empty() {
            return Err(invalid(ins, "must have two arguments"));
        }
        return Ok(vec![(k.to_string(), value)]);
    }
    words
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(invalid(ins, format!("{w:?} is not of the form key=value"))),
        })
        .collect()
}

fn expand_port(ins: &str, spec: &str) -> Result<Vec<String>, ChangeError> {
    let (ports, proto) = match spec.split_once('/') {
        Some((p, proto)) => (p, proto.to_lowercase()),
        None => (spec, "tcp".to_string()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(invalid(ins, format!("invalid proto: {proto}")));
    }
    let bad = || invalid(ins, format!("invalid containerPort: {ports}"));
    let parse = |s: &str| s.parse::<u16>().ok().filter(|p| *p > 0);
    let (start, end) = match ports.split_once('-') {
        Some((a, b)) => (parse(a).ok_or_else(bad)?, parse(b).ok_or_else(bad)?),
        None => {
            let p = parse(ports).ok_or_else(bad)?;
            (p, p)
        }
    };
    if end < start {
        return Err(bad());
    }
    Ok((start..=end).map(|p| format!("{p}/{proto}")).collect())
}

fn healthcheck(ins: &str, args: &str) -> Result<HealthConfig, ChangeError> {
    let mut hc = HealthConfig::default();
    let mut rest = args;
    while let Some(opt) = rest.strip_prefix("--") {
        let (word, tail) = opt.split_once(char::is_whitespace).unwrap_or((opt, ""));
        let (name, value) = word
            .split_once('=')
            .ok_or_else(|| invalid(ins, format!("option --{word} needs a value")))?;
        match name {
            "interval" => hc.interval = Some(duration(ins, value)?),
            "timeout" => hc.timeout = Some(duration(ins, value)?),
            "start-period" => hc.start_period = Some(duration(ins, value)?),
            "start-interval" => hc.start_interval = Some(duration(ins, value)?),
            "retries" => {
                hc.retries = Some(
                    value
                        .parse()
                        .map_err(|_| invalid(ins, format!("invalid retries {value:?}")))?,
                )
            }
            other => return Err(invalid(ins, format!("unknown flag: --{other}"))),
        }
        rest = tail.trim_start();
    }
    let (kind, cmd) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let cmd = cmd.trim();
    hc.test = Some(match kind.to_uppercase().as_str() {
        "NONE" if cmd.is_empty() => vec!["NONE".to_string()],
        "CMD" if !cmd.is_empty() => match json_array(cmd) {
            Some(v) => std::iter::once("CMD".to_string()).chain(v).collect(),
            None => vec!["CMD-SHELL".to_string(), cmd.to_string()],
        },
        _ => return Err(invalid(ins, "expects NONE or CMD <command>")),
    });
    Ok(hc)
}

/// Parses a Go duration (`1h30m`, `500ms`, `1.5s`) into nanoseconds.
fn duration(ins: &str, s: &str) -> Result<i64, ChangeError> {
    let bad = || invalid(ins, format!("invalid duration {s:?}"));
    if s == "0" {
        return Ok(0);
    }
    let mut total: f64 = 0.0;
    let mut rest = s;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let num: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        total += num * mult;
        rest = &rest[unit_len..];
    }
    if total > i64::MAX as f64 {
        return Err(bad());
    }
    Ok(total as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(changes: &[&str]) -> Result<ContainerConfig, ChangeError> {
        let mut c = ContainerConfig::default();
        let v: Vec<String> = changes.iter().map(|s| s.to_string()).collect();
        apply_changes(&mut c, &v)?;
        Ok(c)
    }

    #[test]
    fn forms() {
        let c = apply(&[
            r#"CMD ["sh", "-c", "echo hi"]"#,
            "ENTRYPOINT /init --flag",
            "ENV A=b C=\"d e\"",
            "ENV A z",
            "LABEL k=v other=\"x y\"",
            "EXPOSE 80 53/udp 8000-8001",
            "VOLUME [\"/data\"]",
            "VOLUME /a /b",
            "WORKDIR /srv",
            "WORKDIR app",
            "USER nobody",
            "STOPSIGNAL SIGINT",
            "ONBUILD RUN echo hi",
            "HEALTHCHECK --interval=1m30s --retries=3 CMD curl -f http://localhost/",
        ])
        .expect("apply");
        assert_eq!(
            c.cmd,
            Some(vec!["sh".into(), "-c".into(), "echo hi".into()])
        );
        assert_eq!(
            c.entrypoint,
            Some(vec!["/bin/sh".into(), "-c".into(), "/init --flag".into()])
        );
        assert_eq!(c.env, Some(vec!["C=d e".to_string(), "A=z".to_string()]));
        let labels = c.labels.expect("labels");
        assert_eq!(labels.get("other").map(String::as_str), Some("x y"));
        let ports: Vec<_> = c.exposed_ports.expect("ports").into_keys().collect();
        assert_eq!(ports, ["53/udp", "80/tcp", "8000/tcp", "8001/tcp"]);
        let vols: Vec<_> = c.volumes.expect("vols").into_keys().collect();
        assert_eq!(vols, ["/a", "/b", "/data"]);
        assert_eq!(c.working_dir.as_deref(), Some("/srv/app"));
        assert_eq!(c.user.as_deref(), Some("nobody"));
        assert_eq!(c.stop_signal.as_deref(), Some("SIGINT"));
        assert_eq!(c.on_build, Some(vec!["RUN echo hi".to_string()]));
        let hc = c.healthcheck.expect("hc");
        assert_eq!(hc.interval, Some(90_000_000_000));
        assert_eq!(hc.retries, Some(3));
        assert_eq!(
            hc.test,
            Some(vec!["CMD-SHELL".into(), "curl -f http://localhost/".into()])
        );
    }

    #[test]
    fn refusals() {
        assert_eq!(
            apply(&["RUN echo"]).expect_err("run"),
            ChangeError::Unknown {
                instruction: "RUN".into()
            }
        );
        assert_eq!(
            apply(&["FROM x"]).expect_err("from").to_string(),
            "FROM is not a valid change command"
        );
        assert!(apply(&["EXPOSE 99999"]).is_err());
        assert!(apply(&["EXPOSE 80/xyz"]).is_err());
        assert!(apply(&["ENV"]).is_err());
        assert!(apply(&["ENV A=\"b"]).is_err());
        assert!(apply(&["USER"]).is_err());
        assert!(apply(&["SHELL sh -c"]).is_err());
        assert!(apply(&["HEALTHCHECK --interval=abc CMD x"]).is_err());
        assert!(apply(&["ONBUILD FROM x"]).is_err());
        let hc = apply(&["healthcheck none"])
            .expect("none")
            .healthcheck
            .expect("hc");
        assert_eq!(hc.test, Some(vec!["NONE".to_string()]));
    }
}
