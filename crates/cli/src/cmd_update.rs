//! `update`: change resource limits and the restart policy of containers.

use crate::client::{enc, Client};
use crate::format::human;
use anyhow::{anyhow, Result};
use clap::Args;
use serde_json::{json, Map, Value};

#[derive(Args, Debug, Default)]
pub struct UpdateArgs {
    /// Memory limit
    #[arg(short = 'm', long)]
    pub memory: Option<String>,
    /// Swap limit equal to memory plus swap: -1 to enable unlimited swap
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Memory soft limit
    #[arg(long = "memory-reservation")]
    pub memory_reservation: Option<String>,
    /// Number of CPUs
    #[arg(long)]
    pub cpus: Option<String>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares")]
    pub cpu_shares: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) period
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota
    #[arg(long = "cpu-quota", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    /// Restart policy to apply when a container exits
    #[arg(long)]
    pub restart: Option<String>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// The `/containers/{id}/update` body, as the docker CLI builds it (only the flags given).
pub fn update_body(a: &UpdateArgs) -> Result<Value> {
    let mut b = Map::new();
    let bytes = |flag: &str, v: &str| {
        human::parse_bytes(v)
            .map_err(|e| anyhow!("invalid argument {v:?} for \"--{flag}\" flag: {e}"))
    };
    if let Some(m) = &a.memory {
        b.insert("Memory".into(), json!(bytes("memory", m)?));
    }
    if let Some(s) = &a.memory_swap {
        let v = if s == "-1" {
            -1
        } else {
            bytes("memory-swap", s)?
        };
        b.insert("MemorySwap".into(), json!(v));
    }
    if let Some(r) = &a.memory_reservation {
        b.insert(
            "MemoryReservation".into(),
            json!(bytes("memory-reservation", r)?),
        );
    }
    if let Some(c) = &a.cpus {
        let f: f64 = c
            .parse()
            .map_err(|_| anyhow!("invalid argument {c:?} for \"--cpus\" flag"))?;
        b.insert("NanoCpus".into(), json!((f * 1e9).round() as i64));
    }
    for (k, v) in [
        ("CpuShares", a.cpu_shares),
        ("CpuPeriod", a.cpu_period),
        ("CpuQuota", a.cpu_quota),
        ("PidsLimit", a.pids_limit),
    ] {
        if let Some(v) = v {
            b.insert(k.into(), json!(v));
        }
    }
    if let Some(c) = &a.cpuset_cpus {
        b.insert("CpusetCpus".into(), json!(c));
    }
    if let Some(c) = &a.cpuset_mems {
        b.insert("CpusetMems".into(), json!(c));
    }
    if let Some(w) = a.blkio_weight {
        b.insert("BlkioWeight".into(), json!(w));
    }
    if let Some(r) = &a.restart {
        let (name, count) = r.split_once(':').unwrap_or((r.as_str(), "0"));
        b.insert(
            "RestartPolicy".into(),
            json!({"Name": name, "MaximumRetryCount": count.parse::<i64>().map_err(|_| anyhow!("maximum retry count must be an integer"))?}),
        );
    }
    if b.is_empty() {
        return Err(anyhow!(
            "you must provide one or more flags when using this command"
        ));
    }
    Ok(Value::Object(b))
}

pub async fn update(c: &Client, a: UpdateArgs) -> Result<i32> {
    let body = update_body(&a)?;
    let mut failed = false;
    for n in &a.containers {
        match c
            .post_json(&format!("/containers/{}/update", enc(n)), Some(&body))
            .await
        {
            Ok(v) => {
                for w in v["Warnings"].as_array().into_iter().flatten() {
                    eprintln!("{}", w.as_str().unwrap_or(""));
                }
                println!("{n}");
            }
            Err(e) => {
                eprintln!("{e:#}");
                failed = true;
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_given_flags_are_sent() {
        let a = UpdateArgs {
            memory: Some("64m".into()),
            cpus: Some("0.5".into()),
            restart: Some("on-failure:3".into()),
            containers: vec!["c".into()],
            ..Default::default()
        };
        assert_eq!(
            update_body(&a).unwrap(),
            json!({"Memory": 64 << 20, "NanoCpus": 500_000_000, "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3}})
        );
        let none = UpdateArgs {
            containers: vec!["c".into()],
            ..Default::default()
        };
        assert!(update_body(&none).is_err());
    }
}
