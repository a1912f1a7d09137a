//! `ps`: listing with Docker's filters.

use super::{Record, Status};
use crate::error::{EngineError, Result};
use crate::Engine;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    pub all: bool,
    /// Show only the `limit` most recently created (all states), when > 0.
    pub limit: usize,
    pub size: bool,
    /// Docker's filters: status, name, id, label, ancestor, exited, before, since.
    pub filters: BTreeMap<String, Vec<String>>,
}

/// A listed container.
#[derive(Debug, Clone)]
pub struct Summary {
    pub record: Record,
    pub size_rw: Option<u64>,
    pub size_root_fs: Option<u64>,
}

/// `k` or `k=v` label filters, all of which must match.
pub fn labels_match(labels: &BTreeMap<String, String>, filters: &[String]) -> bool {
    filters.iter().all(|f| match f.split_once('=') {
        Some((k, v)) => labels.get(k).map(String::as_str) == Some(v),
        None => labels.contains_key(f.as_str()),
    })
}

/// `network=NAME|ID`, `volume=NAME|DEST`, `publish=PORT[/PROTO]`, `expose=PORT[/PROTO]` (any value matches).
fn network_volume_port_match(
    r: &Record,
    networks: &[String],
    volumes: &[String],
    publish: &[String],
    expose: &[String],
) -> bool {
    let net_ok = networks.is_empty()
        || networks.iter().any(|n| {
            r.endpoints.iter().any(|(name, ep)| {
                name == n || (!n.is_empty() && ep.network_id.starts_with(n.as_str()))
            })
        });
    let vol_ok = volumes.is_empty()
        || volumes.iter().any(|v| {
            r.mounts
                .iter()
                .any(|m| &m.name == v || &m.destination == v || &m.source == v)
        });
    let key = |p: &str| {
        if p.contains('/') {
            p.to_string()
        } else {
            format!("{p}/tcp")
        }
    };
    let pub_ok = publish.is_empty()
        || publish.iter().any(|p| {
            let k = key(p);
            r.ports.contains_key(&k) || r.ports.values().flatten().any(|b| key(&b.host_port) == k)
        });
    let exp_ok = expose.is_empty()
        || expose.iter().any(|p| {
            r.config
                .exposed_ports
                .as_ref()
                .is_some_and(|e| e.contains(&key(p)))
        });
    net_ok && vol_ok && pub_ok && exp_ok
}

const FILTERS: &[&str] = &[
    "status", "name", "id", "label", "ancestor", "exited", "before", "since", "network", "volume",
    "health", "is-task", "publish", "expose",
];

impl Engine {
    pub async fn list(&self, opts: &ListOptions) -> Result<Vec<Summary>> {
        for k in opts.filters.keys() {
            if !FILTERS.contains(&k.as_str()) {
                return Err(EngineError::Invalid(format!("invalid filter '{k}'")));
            }
        }
        if let Some(st) = opts.filters.get("status") {
            for s in st {
                if ![
                    "created",
                    "restarting",
                    "running",
                    "removing",
                    "paused",
                    "exited",
                    "dead",
                ]
                .contains(&s.as_str())
                {
                    return Err(EngineError::Invalid(format!("invalid filter 'status={s}'")));
                }
            }
        }
        let mut recs: Vec<Record> = {
            let map = self.inner.containers.read().await;
            map.values().map(|h| h.record()).collect()
        };
        recs.sort_by(|a, b| b.created.cmp(&a.created));
        let mut ancestors: Vec<String> = Vec::new();
        for a in opts.filters.get("ancestor").cloned().unwrap_or_default() {
            match self.resolve_image(&a).await {
                Ok(img) => ancestors.push(img.id),
                Err(_) => ancestors.push(a),
            }
        }
        let find = |key: &str| -> Option<String> {
            let v = opts.filters.get(key)?.first()?.clone();
            recs.iter()
                .find(|r| r.id.starts_with(&v) || r.short_name() == v)
                .map(|r| r.created.clone())
        };
        let before = find("before");
        let since = find("since");
        let f = |key: &str| opts.filters.get(key).cloned().unwrap_or_default();
        let show_all = opts.all
            || opts.limit > 0
            || opts.filters.contains_key("status")
            || opts.filters.contains_key("exited");
        let mut out = Vec::new();
        for r in recs {
            let status = r.state.status;
            if !show_all
                && status != Status::Running
                && status != Status::Paused
                && status != Status::Restarting
            {
                continue;
            }
            let st = f("status");
            if !st.is_empty() && !st.iter().any(|s| s == status.as_str()) {
                continue;
            }
            let names = f("name");
            if !names.is_empty()
                && !names
                    .iter()
                    .any(|n| r.short_name().contains(n.trim_start_matches('/')))
            {
                continue;
            }
            let ids = f("id");
            if !ids.is_empty() && !ids.iter().any(|i| r.id.starts_with(i.as_str())) {
                continue;
            }
            if !labels_match(&r.labels(), &f("label")) {
                continue;
            }
            if !ancestors.is_empty() && !ancestors.iter().any(|a| *a == r.image_id || *a == r.image)
            {
                continue;
            }
            let exited = f("exited");
            let exit_matches = status == Status::Exited
                && exited
                    .iter()
                    .any(|e| e.parse::<i32>().ok() == Some(r.state.exit_code));
            if !exited.is_empty() && !exit_matches {
                continue;
            }
            if let Some(b) = &before {
                if r.created >= *b {
                    continue;
                }
            }
            if let Some(s) = &since {
                if r.created <= *s {
                    continue;
                }
            }
            if !network_volume_port_match(
                &r,
                &f("network"),
                &f("volume"),
                &f("publish"),
                &f("expose"),
            ) {
                continue;
            }
            let (size_rw, size_root_fs) = if opts.size {
                let rw = super::remove::dir_size(&self.paths(&r.id).dir.join("upper"));
                let image_size = self
                    .resolve_image(&r.image_id)
                    .await
                    .map(|i| i.size)
                    .unwrap_or(0);
                (Some(rw), Some(rw + image_size))
            } else {
                (None, None)
            };
            out.push(Summary {
                record: r,
                size_rw,
                size_root_fs,
            });
            if opts.limit > 0 && out.len() >= opts.limit {
                break;
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_filters_need_all() {
        let mut l = BTreeMap::new();
        l.insert("a".to_string(), "1".to_string());
        l.insert("b".to_string(), "2".to_string());
        assert!(labels_match(&l, &["a".into(), "b=2".into()]));
        assert!(!labels_match(&l, &["a=2".into()]));
        assert!(!labels_match(&l, &["c".into()]));
        assert!(labels_match(&l, &[]));
    }
}
