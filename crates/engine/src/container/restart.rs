//! Restart policies (`--restart no|always|on-failure[:N]|unless-stopped`), as dockerd applies them: after an
//! exit that the user did not ask for, with a back-off that starts at 100 ms, doubles up to a minute and
//! resets when the container ran for 10 s; and again when the daemon starts.

use super::{Handle, Record, Status};
use crate::Engine;
use std::sync::Arc;
use std::time::Duration;

/// A container's restart policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Policy {
    No,
    Always,
    UnlessStopped,
    OnFailure { max: i64 },
}

impl Policy {
    pub fn of(rec: &Record) -> Policy {
        let Some(rp) = &rec.host_config.restart_policy else {
            return Policy::No;
        };
        let name = rp
            .name
            .as_ref()
            .and_then(|n| serde_json::to_value(n).ok())
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        match name.as_str() {
            "always" => Policy::Always,
            "unless-stopped" => Policy::UnlessStopped,
            "on-failure" => Policy::OnFailure {
                max: rp.maximum_retry_count.unwrap_or(0),
            },
            _ => Policy::No,
        }
    }
}

/// Whether a container that just exited with `code` is restarted.
pub fn should_restart(policy: &Policy, rec: &Record, code: i32) -> bool {
    if rec.manually_stopped {
        return false;
    }
    match policy {
        Policy::No => false,
        Policy::Always | Policy::UnlessStopped => true,
        Policy::OnFailure { max } => code != 0 && (*max <= 0 || rec.restart_count < *max),
    }
}

/// Whether the daemon starts this container when it starts itself.
pub fn start_with_daemon(policy: &Policy, rec: &Record) -> bool {
    match policy {
        Policy::Always => true,
        Policy::UnlessStopped => !rec.manually_stopped,
        _ => false,
    }
}

/// The next back-off: doubled from `last` (100 ms first), at most a minute; back to 100 ms after a run of
/// 10 s or more.
pub fn next_delay(last: Duration, ran: Duration) -> Duration {
    const FIRST: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(60);
    if ran >= Duration::from_secs(10) || last.is_zero() {
        FIRST
    } else {
        (last * 2).min(MAX)
    }
}

fn ran_for(rec: &Record) -> Duration {
    let t = |s: &str| chrono::DateTime::parse_from_rfc3339(s).ok();
    match (t(&rec.state.started_at), t(&rec.state.finished_at)) {
        (Some(a), Some(b)) => (b - a).to_std().unwrap_or_default(),
        _ => Duration::ZERO,
    }
}

impl Engine {
    /// Called after an exit was recorded: restart the container later if its policy says so. Returns
    /// whether a restart was scheduled.
    pub(crate) fn maybe_restart(&self, h: &Arc<Handle>, code: i32) -> bool {
        let rec = h.record();
        let policy = Policy::of(&rec);
        if !should_restart(&policy, &rec, code) {
            return false;
        }
        let delay = {
            let mut d = h.restart_delay.lock().unwrap_or_else(|p| p.into_inner());
            *d = next_delay(*d, ran_for(&rec));
            *d
        };
        h.update(|r| {
            r.state.status = Status::Restarting;
            r.restart_count += 1;
        });
        let _ = self.save(h);
        h.publish_wait();
        let engine = self.clone();
        let h = h.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            // A stop, kill or rm in the meantime cancels the restart.
            let rec = h.record();
            if rec.state.status != Status::Restarting || rec.manually_stopped {
                return;
            }
            if let Err(e) = engine.start(&h.id).await {
                tracing::warn!(id = %h.id, "restart failed: {e}");
                h.update(|r| {
                    if r.state.status == Status::Restarting {
                        r.state.status = Status::Exited;
                    }
                });
                let _ = engine.save(&h);
                h.publish_wait();
            } else {
                engine.container_event(&h, "restart", &[]);
            }
        });
        true
    }

    /// At daemon start: start what `always` and `unless-stopped` keep running.
    pub(crate) async fn restart_on_boot(&self) {
        let handles: Vec<_> = self
            .inner
            .containers
            .read()
            .await
            .values()
            .cloned()
            .collect();
        for h in handles {
            let rec = h.record();
            if matches!(
                rec.state.status,
                Status::Exited | Status::Restarting | Status::Created
            ) && rec.state.started_at != super::ZERO_TIME
                && start_with_daemon(&Policy::of(&rec), &rec)
            {
                if let Err(e) = self.start(&h.id).await {
                    tracing::warn!(id = %h.id, "restart at daemon start failed: {e}");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(policy: &str, max: i64, stopped: bool, count: i64) -> Record {
        let hc = bollard_stubs::models::HostConfig {
            restart_policy: serde_json::from_value(
                serde_json::json!({"Name": policy, "MaximumRetryCount": max}),
            )
            .ok(),
            ..Default::default()
        };
        Record {
            id: "x".into(),
            name: "/x".into(),
            created: String::new(),
            image_id: String::new(),
            image: String::new(),
            path: "sh".into(),
            args: vec![],
            config: Default::default(),
            host_config: hc,
            state: Default::default(),
            restart_count: count,
            log_path: String::new(),
            hostname_path: String::new(),
            hosts_path: String::new(),
            resolv_conf_path: String::new(),
            exits: 0,
            manually_stopped: stopped,
            mounts: vec![],
            endpoints: Default::default(),
            sandbox_key: String::new(),
            ports: Default::default(),
        }
    }

    #[test]
    fn policies_decide_like_docker() {
        let r = rec("always", 0, false, 0);
        assert!(should_restart(&Policy::of(&r), &r, 0));
        let r = rec("always", 0, true, 0);
        assert!(!should_restart(&Policy::of(&r), &r, 1));
        assert!(
            start_with_daemon(&Policy::of(&r), &r),
            "always comes back with the daemon even after a stop"
        );
        let r = rec("unless-stopped", 0, true, 0);
        assert!(!start_with_daemon(&Policy::of(&r), &r));
        let r = rec("on-failure", 2, false, 1);
        assert!(should_restart(&Policy::of(&r), &r, 3));
        assert!(!should_restart(&Policy::of(&r), &r, 0));
        let r = rec("on-failure", 2, false, 2);
        assert!(
            !should_restart(&Policy::of(&r), &r, 3),
            "retry count exhausted"
        );
        let r = rec("no", 0, false, 0);
        assert!(!should_restart(&Policy::of(&r), &r, 1));
    }

    #[test]
    fn back_off_doubles_caps_and_resets() {
        let z = Duration::ZERO;
        let d1 = next_delay(z, z);
        assert_eq!(d1, Duration::from_millis(100));
        let d2 = next_delay(d1, Duration::from_secs(1));
        assert_eq!(d2, Duration::from_millis(200));
        assert_eq!(
            next_delay(Duration::from_secs(50), z),
            Duration::from_secs(60)
        );
        assert_eq!(
            next_delay(Duration::from_secs(50), Duration::from_secs(11)),
            Duration::from_millis(100)
        );
    }
}
