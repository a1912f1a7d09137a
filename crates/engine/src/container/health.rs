//! Health checks (`HEALTHCHECK` in the image, `--health-*` flags): while a container runs, its test command is
//! exec'd every interval; the state goes `starting` → `healthy` / `unhealthy` after `retries` failures in a
//! row (failures during the start period do not count), with the last five probes kept for inspect and a
//! `health_status` event at each change, as dockerd does.

use super::{Handle, Status};
use crate::exec::ExecConfig;
use crate::Engine;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// `State.Health`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Health {
    pub status: String,
    pub failing_streak: i64,
    pub log: Vec<Probe>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Probe {
    pub start: String,
    pub end: String,
    pub exit_code: i64,
    pub output: String,
}

/// The probe settings, Docker's defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub cmd: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub start_period: Duration,
    pub retries: i64,
}

/// The check of a container, if it has one (`NONE` disables an image's).
pub fn check_of(cfg: &bollard_stubs::models::ContainerConfig) -> Option<Check> {
    let hc = cfg.healthcheck.as_ref()?;
    let test = hc.test.clone().unwrap_or_default();
    let cmd = match test.first().map(String::as_str) {
        Some("CMD") => test[1..].to_vec(),
        Some("CMD-SHELL") => vec!["/bin/sh".into(), "-c".into(), test[1..].join(" ")],
        _ => return None,
    };
    if cmd.is_empty() {
        return None;
    }
    let d = |ns: Option<i64>, default: u64| match ns {
        Some(n) if n > 0 => Duration::from_nanos(n as u64),
        _ => Duration::from_secs(default),
    };
    Some(Check {
        cmd,
        interval: d(hc.interval, 30),
        timeout: d(hc.timeout, 30),
        start_period: d(hc.start_period, 0),
        retries: hc.retries.filter(|r| *r > 0).unwrap_or(3),
    })
}

/// The next state after a probe (`ok`), given the current one and whether the start period is over.
pub fn next_state(h: &Health, ok: bool, in_start_period: bool, retries: i64) -> Health {
    let mut n = h.clone();
    if ok {
        n.failing_streak = 0;
        n.status = "healthy".into();
    } else if !in_start_period || h.status != "starting" {
        n.failing_streak += 1;
        if n.failing_streak >= retries {
            n.status = "unhealthy".into();
        }
    }
    n
}

impl Engine {
    /// Start probing a container that has just started (no-op without a health check).
    pub(crate) fn start_health(&self, h: &Arc<Handle>) {
        let rec = h.record();
        let Some(check) = check_of(&rec.config) else {
            return;
        };
        h.update(|r| {
            r.state.health = Some(Health {
                status: "starting".into(),
                ..Default::default()
            })
        });
        let _ = self.save(h);
        let engine = self.clone();
        let h = h.clone();
        let started = std::time::Instant::now();
        let exits = rec.exits;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(check.interval).await;
                let rec = h.record();
                if rec.state.status != Status::Running || rec.exits != exits {
                    return;
                }
                let start = super::now_rfc3339();
                let (code, output) = engine.probe(&h.id, &check).await;
                let probe = Probe {
                    start,
                    end: super::now_rfc3339(),
                    exit_code: code,
                    output,
                };
                let old = rec.state.health.clone().unwrap_or_default();
                let mut new = next_state(
                    &old,
                    code == 0,
                    started.elapsed() < check.start_period,
                    check.retries,
                );
                new.log.push(probe);
                if new.log.len() > 5 {
                    new.log.remove(0);
                }
                let changed = new.status != old.status;
                h.update(|r| r.state.health = Some(new.clone()));
                let _ = engine.save(&h);
                if changed {
                    engine.container_event(&h, &format!("health_status: {}", new.status), &[]);
                }
            }
        });
    }

    async fn probe(&self, id: &str, check: &Check) -> (i64, String) {
        let cfg = ExecConfig {
            cmd: check.cmd.clone(),
            attach_stdout: true,
            attach_stderr: true,
            ..Default::default()
        };
        let exec = match self.exec_create(id, cfg).await {
            Ok(e) => e,
            Err(e) => return (-1, e.to_string()),
        };
        let mut stream = match self.exec_start(&exec).await {
            Ok(s) => s,
            Err(e) => return (-1, e.to_string()),
        };
        let mut output = Vec::new();
        let run = async {
            while let Some(o) = stream.output.recv().await {
                match o {
                    super::Output::Stdout(d) | super::Output::Stderr(d) => {
                        if output.len() < 4096 {
                            output.extend_from_slice(&d);
                        }
                    }
                    super::Output::Exit(code) => return code as i64,
                }
            }
            -1
        };
        let code = match tokio::time::timeout(check.timeout, run).await {
            Ok(c) => c,
            Err(_) => {
                return (
                    -1,
                    format!("Health check exceeded timeout ({:?})", check.timeout),
                )
            }
        };
        (code, String::from_utf8_lossy(&output).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_come_from_docker_config() {
        let cfg: bollard_stubs::models::ContainerConfig = serde_json::from_value(serde_json::json!({
            "Healthcheck": {"Test": ["CMD-SHELL", "test -f /ok"], "Interval": 200_000_000, "Retries": 2}
        }))
        .unwrap();
        let c = check_of(&cfg).unwrap();
        assert_eq!(c.cmd, vec!["/bin/sh", "-c", "test -f /ok"]);
        assert_eq!(
            (c.interval, c.timeout, c.retries),
            (Duration::from_millis(200), Duration::from_secs(30), 2)
        );
        let none: bollard_stubs::models::ContainerConfig =
            serde_json::from_value(serde_json::json!({"Healthcheck": {"Test": ["NONE"]}})).unwrap();
        assert!(check_of(&none).is_none());
    }

    #[test]
    fn streaks_turn_unhealthy_after_retries_and_reset_on_success() {
        let s = Health {
            status: "starting".into(),
            ..Default::default()
        };
        let s = next_state(&s, false, true, 2);
        assert_eq!(
            (s.status.as_str(), s.failing_streak),
            ("starting", 0),
            "start period failures do not count"
        );
        let s = next_state(&s, false, false, 2);
        assert_eq!((s.status.as_str(), s.failing_streak), ("starting", 1));
        let s = next_state(&s, false, false, 2);
        assert_eq!(s.status, "unhealthy");
        let s = next_state(&s, true, false, 2);
        assert_eq!((s.status.as_str(), s.failing_streak), ("healthy", 0));
    }
}
