//! `RUN`: a real container made from the stage's image with the stage's environment, user, working directory
//! and shell; its overlay upper directory becomes the step's layer.

use super::{step_error, Builder, StageState};
use crate::container::{CreateRequest, Output, WaitCondition};
use crate::error::{EngineError, Result};
use berth_build::parser::{Command, Instruction, Run};
use berth_image::History;
use bollard_stubs::models::{
    ContainerConfig, HealthConfig, HostConfig, Mount, MountTmpfsOptions, MountType as MountTypeEnum,
};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::Arc;

/// One option of a `--mount=` value (`type=cache,target=/x`): `key`'s value, if given.
pub(crate) fn mount_option(spec: &str, key: &str) -> Option<String> {
    spec.split(',').find_map(|kv| match kv.split_once('=') {
        Some((k, v)) if k.trim() == key => Some(v.trim().to_string()),
        None if kv.trim() == key => Some(String::new()),
        _ => None,
    })
}

/// A `RUN --mount` as a container mount.
/// A `RUN --mount` ready to use, or a bind of another stage's or image's files, made once the step must run.
enum RunMount {
    Ready(Box<Mount>),
    From {
        from: String,
        source: String,
        target: String,
        rw: bool,
    },
}

fn run_mount(b: &Builder, spec: &str) -> std::result::Result<RunMount, String> {
    let get = |k: &str| mount_option(spec, k);
    let kind = get("type").unwrap_or_else(|| "bind".into());
    let target = get("target")
        .or_else(|| get("dst"))
        .or_else(|| get("destination"))
        .filter(|t| !t.is_empty())
        .ok_or_else(|| format!("--mount={spec}: a target is required"))?;
    let flag = |k: &str| get(k).is_some_and(|v| v.is_empty() || v == "true");
    match kind.as_str() {
        "bind" => {
            let source = get("source").or_else(|| get("src")).unwrap_or_default();
            let rw = flag("rw") || flag("readwrite");
            if let Some(from) = get("from") {
                return Ok(RunMount::From {
                    from,
                    source,
                    target,
                    rw,
                });
            }
            let rel = context_relative(&source)?;
            super::fs::check_symlinks(&b.ctx, &rel)?;
            let host = b.ctx.join(&rel);
            if !host.exists() {
                return Err(format!(
                    "--mount={spec}: {source} is not in the build context"
                ));
            }
            Ok(RunMount::Ready(Box::new(Mount {
                target: Some(target),
                source: Some(host.display().to_string()),
                typ: Some(MountTypeEnum::BIND),
                read_only: Some(!rw),
                ..Mount::default()
            })))
        }
        "cache" => {
            let id = get("id").unwrap_or_else(|| target.clone());
            let dir = b
                .engine
                .builder_dir()
                .join("cache-mounts")
                .join(hex::encode(Sha256::digest(id.as_bytes())));
            std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
            Ok(RunMount::Ready(Box::new(Mount {
                target: Some(target),
                source: Some(dir.display().to_string()),
                typ: Some(MountTypeEnum::BIND),
                read_only: Some(flag("ro") || flag("readonly")),
                ..Mount::default()
            })))
        }
        "tmpfs" => Ok(RunMount::Ready(Box::new(Mount {
            target: Some(target),
            typ: Some(MountTypeEnum::TMPFS),
            tmpfs_options: get("size").map(|s| MountTmpfsOptions {
                size_bytes: crate::container::parse_size(&s).ok().map(|n| n as i64),
                ..MountTmpfsOptions::default()
            }),
            ..Mount::default()
        }))),
        "secret" | "ssh" => Err(format!(
            "--mount=type={kind}: berth's builder has no secrets or SSH agent forwarding"
        )),
        other => Err(format!("--mount: unknown mount type {other:?}")),
    }
}

/// A path given relative to the build context, refused when it leads out of it.
pub(crate) fn context_relative(path: &str) -> std::result::Result<String, String> {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(format!("forbidden path outside the build context: {path}"));
                }
            }
            c => parts.push(c),
        }
    }
    Ok(parts.join("/"))
}

impl Builder {
    pub(crate) async fn run_step(
        self: &Arc<Self>,
        st: &mut StageState,
        ins: &Instruction,
        r: &Run,
    ) -> Result<()> {
        let mut heredoc_files = Vec::new();
        let argv = match (&r.command, r.heredocs.as_slice()) {
            (Command::Shell(s), [h]) if is_only_marker(s, &h.name) => {
                if h.content.starts_with("#!") {
                    heredoc_files.push((h.name.clone(), h.content.clone()));
                    vec![format!("/dev/pipes/{}", h.name)]
                } else {
                    Self::argv(st, &Command::Shell(h.content.clone()))
                }
            }
            (Command::Shell(s), docs) if !docs.is_empty() => {
                let mut script = s.clone();
                script.push('\n');
                for h in docs {
                    script.push_str(&h.content);
                    script.push_str(&h.name);
                    script.push('\n');
                }
                Self::argv(st, &Command::Shell(script))
            }
            (c, _) => Self::argv(st, c),
        };
        let args_shown = if st.args.is_empty() {
            String::new()
        } else {
            let kv: Vec<String> = st.args.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("|{} {} ", kv.len(), kv.join(" "))
        };
        let created_by = format!("RUN {args_shown}{} # buildkit", argv.join(" "));
        let mut mounts = Vec::new();
        let mut mount_specs = Vec::new();
        let mut from_binds = Vec::new();
        for m in &r.mounts {
            let spec = self
                .lexer
                .process_word(m, &|n| st.lookup(n))
                .map_err(|e| step_error(ins, e))?;
            match run_mount(self, &spec).map_err(|e| step_error(ins, e))? {
                RunMount::Ready(m) => {
                    mounts.push(*m);
                    mount_specs.push(spec);
                }
                RunMount::From {
                    from,
                    source,
                    target,
                    rw,
                } => {
                    let img = self.source_image(&from, st.index, ins).await?;
                    // The source's content is its image: its id goes in the key.
                    mount_specs.push(format!("{spec}@{}", img.id));
                    from_binds.push((img.id, source, target, rw));
                }
            }
        }
        let scratch = if heredoc_files.is_empty() {
            None
        } else {
            let dir = self.engine.builder_scratch("heredoc")?;
            for (name, content) in &heredoc_files {
                let p = dir.join(name);
                write_executable(&p, content)
                    .map_err(|e| EngineError::io(format!("write {}", p.display()), e))?;
                mounts.push(Mount {
                    target: Some(format!("/dev/pipes/{name}")),
                    source: Some(p.display().to_string()),
                    typ: Some(MountTypeEnum::BIND),
                    read_only: Some(true),
                    ..Mount::default()
                });
            }
            Some(super::Context { dir })
        };
        let network = match r.network.as_deref() {
            None | Some("default") | Some("") => {
                if self.req.network_mode.is_empty() || self.req.network_mode == "default" {
                    "bridge".to_string()
                } else {
                    self.req.network_mode.clone()
                }
            }
            Some("none") => "none".into(),
            Some("host") => "host".into(),
            Some(other) => {
                return Err(step_error(
                    ins,
                    format!("unsupported network mode {other:?}"),
                ))
            }
        };
        let key = st
            .key
            .then(&["RUN", &created_by, &mount_specs.join("\n"), &network]);
        let step = History {
            created_by: Some(created_by.clone()),
            comment: Some(super::step::HISTORY_COMMENT.to_string()),
            ..History::default()
        };
        if let Some(img) = self.cached_step(st, &key, Some(step)).await? {
            st.key = key;
            self.use_cached(st, img);
            return Ok(());
        }
        if st.image.is_none() {
            self.materialize(st).await?;
        }
        // Binds from other stages or images: their files, copied out to scratch space for this step.
        let mut exported = Vec::new();
        for (image, source, target, rw) in from_binds {
            let id = image.clone();
            let lower = self
                .engine
                .images_blocking(move |s| s.layer_dirs(&id))
                .await?;
            let scratch = super::Context {
                dir: self.engine.builder_scratch("bind")?,
            };
            let dir = scratch.dir().to_path_buf();
            let src = source.clone();
            let host =
                tokio::task::spawn_blocking(move || super::fs::export_path(lower, &dir, &src))
                    .await
                    .map_err(EngineError::join)?
                    .map_err(|e| step_error(ins, format!("--mount from={image}: {e}")))?;
            mounts.push(Mount {
                target: Some(target),
                source: Some(host.display().to_string()),
                typ: Some(MountTypeEnum::BIND),
                read_only: Some(!rw),
                ..Mount::default()
            });
            exported.push(scratch);
        }
        let parent = st.image.as_ref().map(|i| i.id.clone()).unwrap_or_default();
        let cfg = &st.config.config;
        let req = CreateRequest {
            name: None,
            config: ContainerConfig {
                image: Some(parent.clone()),
                cmd: Some(argv.clone()),
                entrypoint: Some(Vec::new()),
                env: Some(Self::run_env(st)),
                user: cfg.user.clone().filter(|u| !u.is_empty()),
                working_dir: cfg.working_dir.clone().filter(|w| !w.is_empty()),
                healthcheck: Some(HealthConfig {
                    test: Some(vec!["NONE".into()]),
                    ..HealthConfig::default()
                }),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..ContainerConfig::default()
            },
            host_config: HostConfig {
                network_mode: Some(network),
                mounts: (!mounts.is_empty()).then_some(mounts),
                ..HostConfig::default()
            },
            endpoints: Default::default(),
        };
        let rec = self
            .engine
            .create(req)
            .await
            .map_err(|e| step_error(ins, e))?;
        let id = rec.id.clone();
        self.track_container(&id);
        self.say(format!(" ---> Running in {}\n", &id[..12]));
        let mut stream = self.engine.attach(&id).await?;
        self.engine
            .start(&id)
            .await
            .map_err(|e| step_error(ins, e))?;
        loop {
            tokio::select! {
                out = stream.next() => match out {
                    Some(Output::Stdout(b)) | Some(Output::Stderr(b)) => {
                        self.say(String::from_utf8_lossy(&b).into_owned());
                    }
                    Some(Output::Exit(_)) | None => break,
                },
                // The client went away: stop the step's process; the build ends and cleans up.
                () = self.events.closed() => {
                    let _ = self.engine.kill(&id, "KILL").await;
                    return Err(cancelled());
                }
            }
        }
        let state = self.engine.wait(&id, WaitCondition::NotRunning).await?;
        drop(scratch);
        drop(exported);
        if state.exit_code != 0 {
            return Err(EngineError::Invalid(format!(
                "The command '{}' returned a non-zero code: {}",
                argv.join(" "),
                state.exit_code
            )));
        }
        let mut config = st.config.clone();
        config.history.push(History {
            created_by: Some(created_by),
            comment: Some(super::step::HISTORY_COMMENT.to_string()),
            ..History::default()
        });
        super::step::record_key(&mut config, &key);
        let upper = self.engine.paths(&id).dir.join("upper");
        let img = self
            .engine
            .images_blocking(move |s| {
                s.add_step_image(
                    Some(&parent),
                    config,
                    Some(|w: &mut dyn std::io::Write| {
                        berth_archive::write_container_diff(&upper, w)
                            .map(|_| ())
                            .map_err(std::io::Error::other)
                    }),
                )
            })
            .await?;
        if self.req.remove {
            self.engine.remove(&id, true, true).await?;
            self.untrack_container(&id);
            self.say(format!(
                " ---> Removed intermediate container {}\n",
                &id[..12]
            ));
        }
        st.key = key;
        self.made(st, img).await;
        Ok(())
    }
}

pub(crate) fn cancelled() -> EngineError {
    EngineError::Conflict("build cancelled: the client disconnected".into())
}

/// `RUN <<EOF` alone: the heredoc is the whole command.
fn is_only_marker(cmd: &str, name: &str) -> bool {
    let c = cmd.trim();
    let c = c.strip_prefix("<<").unwrap_or(c);
    let c = c.strip_prefix('-').unwrap_or(c);
    c.trim_matches(|ch| ch == '"' || ch == '\'') == name
}

fn write_executable(p: &Path, content: &str) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(p, content)?;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_options() {
        let s = "type=cache,target=/root/.cache,id=x,ro";
        assert_eq!(mount_option(s, "type").as_deref(), Some("cache"));
        assert_eq!(mount_option(s, "id").as_deref(), Some("x"));
        assert_eq!(mount_option(s, "ro").as_deref(), Some(""));
        assert_eq!(mount_option(s, "from"), None);
    }

    #[test]
    fn context_paths_stay_inside() {
        assert_eq!(context_relative("./a/../b").unwrap(), "b");
        assert_eq!(context_relative(".").unwrap(), "");
        assert!(context_relative("../x").is_err());
        assert!(context_relative("a/../../x").is_err());
    }

    #[test]
    fn heredoc_alone_is_the_command() {
        assert!(is_only_marker("<<EOF", "EOF"));
        assert!(is_only_marker("<<-\"EOF\"", "EOF"));
        assert!(!is_only_marker("cat <<EOF", "EOF"));
    }
}
