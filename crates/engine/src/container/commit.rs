//! `docker commit`: a container's changes (its overlay upper directory, turned into an OCI diff) as a new layer
//! on its image, with a config made like Docker's: the request's config, then `--change` instructions, then
//! whatever the container's config has that the request left unset. A running container is paused meanwhile
//! unless asked otherwise.

use super::Status;
use crate::error::{EngineError, Result};
use crate::Engine;
use berth_image::{apply_changes, CommitOptions, ContainerConfig, Image, Reference};
use std::collections::BTreeMap;

/// `POST /commit` decoded.
#[derive(Debug, Clone, Default)]
pub struct CommitRequest {
    pub container: String,
    /// `repo` and `tag` query parameters (an image without a tag when `repo` is empty).
    pub repo: String,
    pub tag: String,
    pub comment: String,
    pub author: String,
    /// Pause a running container during the commit (Docker's default).
    pub pause: bool,
    /// Dockerfile instructions (`CMD ["sh"]`, `ENV A=b`...).
    pub changes: Vec<String>,
    /// The request body: a container config whose set fields win over the container's.
    pub config: Option<serde_json::Value>,
}

/// Docker's `merge(userConf, imageConf)`: fill what the user left unset from the container's config.
pub fn merge_config(user: &mut ContainerConfig, container: &ContainerConfig) {
    if user.user.as_deref().unwrap_or("").is_empty() {
        user.user = container.user.clone();
    }
    match (&mut user.exposed_ports, &container.exposed_ports) {
        (Some(mine), Some(theirs)) if !mine.is_empty() => {
            for (k, v) in theirs {
                mine.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        (mine, theirs) => *mine = theirs.clone(),
    }
    let key = |e: &String| {
        e.split_once('=')
            .map(|(k, _)| k.to_string())
            .unwrap_or(e.clone())
    };
    match (&mut user.env, &container.env) {
        (Some(mine), Some(theirs)) if !mine.is_empty() => {
            for e in theirs {
                if !mine.iter().any(|m| key(m) == key(e)) {
                    mine.push(e.clone());
                }
            }
        }
        (mine, theirs) => *mine = theirs.clone(),
    }
    let labels = user.labels.get_or_insert_with(BTreeMap::new);
    for (k, v) in container.labels.clone().unwrap_or_default() {
        labels.entry(k).or_insert(v);
    }
    if user.entrypoint.as_ref().is_none_or(Vec::is_empty) {
        if user.cmd.as_ref().is_none_or(Vec::is_empty) {
            user.cmd = container.cmd.clone();
        }
        if user.entrypoint.is_none() {
            user.entrypoint = container.entrypoint.clone();
        }
    }
    if let Some(theirs) = &container.healthcheck {
        match &mut user.healthcheck {
            None => user.healthcheck = Some(theirs.clone()),
            Some(mine) => {
                if mine.test.as_ref().is_none_or(Vec::is_empty) {
                    mine.test = theirs.test.clone();
                }
                for (m, t) in [
                    (&mut mine.interval, theirs.interval),
                    (&mut mine.timeout, theirs.timeout),
                    (&mut mine.start_period, theirs.start_period),
                    (&mut mine.start_interval, theirs.start_interval),
                    (&mut mine.retries, theirs.retries),
                ] {
                    if m.unwrap_or(0) == 0 {
                        *m = t;
                    }
                }
            }
        }
    }
    if user.working_dir.as_deref().unwrap_or("").is_empty() {
        user.working_dir = container.working_dir.clone();
    }
    match (&mut user.volumes, &container.volumes) {
        (Some(mine), Some(theirs)) if !mine.is_empty() => {
            for (k, v) in theirs {
                mine.insert(k.clone(), v.clone());
            }
        }
        (mine, theirs) => *mine = theirs.clone(),
    }
    if user.stop_signal.as_deref().unwrap_or("").is_empty() {
        user.stop_signal = container.stop_signal.clone();
    }
}

/// A container config of the Engine API as the image store's type (the same JSON keys).
fn image_config(v: serde_json::Value) -> Result<ContainerConfig> {
    if v.is_null() {
        return Ok(ContainerConfig::default());
    }
    serde_json::from_value(v).map_err(|e| EngineError::Invalid(format!("invalid config: {e}")))
}

impl Engine {
    /// `docker commit`: returns the new image.
    pub async fn commit(&self, req: CommitRequest) -> Result<Image> {
        let h = self.lookup(&req.container).await?;
        let rec = h.record();
        match rec.state.status {
            Status::Dead => {
                return Err(EngineError::Conflict(format!(
                    "You cannot commit container {} which is Dead",
                    rec.id
                )))
            }
            Status::Removing => {
                return Err(EngineError::Conflict(format!(
                    "You cannot commit container {} which is being removed",
                    rec.id
                )))
            }
            _ => {}
        }
        let reference = if req.repo.is_empty() {
            None
        } else {
            let full = if req.tag.is_empty() {
                req.repo.clone()
            } else {
                format!("{}:{}", req.repo, req.tag)
            };
            Some(Reference::parse(&full).map_err(|e| EngineError::Invalid(e.to_string()))?)
        };
        let mut config = image_config(req.config.clone().unwrap_or_default())?;
        apply_changes(&mut config, &req.changes)
            .map_err(|e| EngineError::Invalid(e.to_string()))?;
        let container_config = image_config(
            serde_json::to_value(&rec.config).map_err(|e| EngineError::Internal(e.to_string()))?,
        )?;
        merge_config(&mut config, &container_config);

        let paused_here = req.pause && rec.state.status == Status::Running;
        if paused_here {
            self.pause(&h.id).await?;
        }
        let opts = CommitOptions {
            parent: rec.image_id.clone(),
            config,
            comment: req.comment.clone(),
            author: req.author.clone(),
            created_by: rec.config.cmd.clone().unwrap_or_default().join(" "),
            container_id: rec.id.clone(),
            reference: reference.clone(),
        };
        self.dir_made(&h).await?;
        let upper = self.paths(&rec.id).dir.join("upper");
        let made = self
            .images_blocking(move |s| {
                s.commit_layer(opts, |w| {
                    berth_archive::write_container_diff(&upper, w)
                        .map(|_| ())
                        .map_err(|e| std::io::Error::other(error_chain(&e)))
                })
            })
            .await;
        if paused_here {
            if let Err(e) = self.unpause(&h.id).await {
                tracing::warn!(id = %h.id, error = %e, "unpausing after commit");
            }
        }
        let img = made?;
        let familiar = reference
            .as_ref()
            .map(|r| {
                if r.tag().is_some() {
                    r.familiar()
                } else {
                    format!("{}:latest", r.familiar())
                }
            })
            .unwrap_or_default();
        self.container_event(
            &h,
            "commit",
            &[
                ("comment", req.comment.clone()),
                ("imageID", img.id.clone()),
                ("imageRef", familiar.clone()),
            ],
        );
        if !familiar.is_empty() {
            let mut attrs = BTreeMap::new();
            attrs.insert("name".to_string(), familiar);
            self.inner.events.publish("image", "tag", &img.id, attrs);
        }
        Ok(img)
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cfg(v: serde_json::Value) -> ContainerConfig {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn unset_fields_come_from_the_container_like_docker() {
        let container = cfg(json!({
            "User": "app", "Env": ["A=1", "B=2"], "Cmd": ["sh"], "Entrypoint": ["/init"],
            "WorkingDir": "/srv", "ExposedPorts": {"80/tcp": {}}, "Labels": {"a": "1", "b": "2"},
            "Volumes": {"/data": {}}, "StopSignal": "SIGINT", "Hostname": "box"
        }));
        let mut user = cfg(json!({}));
        apply_changes(
            &mut user,
            &[
                r#"CMD ["cat","/f"]"#.into(),
                "ENV B=3".into(),
                "LABEL b=x".into(),
            ],
        )
        .unwrap();
        merge_config(&mut user, &container);
        assert_eq!(user.cmd, Some(vec!["cat".into(), "/f".into()]));
        assert_eq!(
            user.entrypoint,
            Some(vec!["/init".into()]),
            "kept: only CMD was changed"
        );
        assert_eq!(user.env, Some(vec!["B=3".into(), "A=1".into()]));
        assert_eq!(user.labels.as_ref().unwrap()["b"], "x");
        assert_eq!(user.labels.as_ref().unwrap()["a"], "1");
        assert_eq!(user.user.as_deref(), Some("app"));
        assert_eq!(user.working_dir.as_deref(), Some("/srv"));
        assert!(user.exposed_ports.as_ref().unwrap().contains_key("80/tcp"));
        assert!(user.volumes.as_ref().unwrap().contains_key("/data"));
        assert_eq!(user.stop_signal.as_deref(), Some("SIGINT"));
        assert!(
            !user.extra.contains_key("Hostname"),
            "not one of the merged fields"
        );
        // An ENTRYPOINT change keeps the user's CMD (none) instead of the container's.
        let mut user = cfg(json!({}));
        apply_changes(&mut user, &[r#"ENTRYPOINT ["top"]"#.into()]).unwrap();
        merge_config(&mut user, &container);
        assert_eq!(user.entrypoint, Some(vec!["top".into()]));
        assert_eq!(user.cmd, None);
    }
}
