//! One stage, instruction by instruction: what each instruction does to the stage's state.

use super::cache::Key;
use super::{env_lookup, step_error, Builder, StageState};
use crate::error::{EngineError, Result};
use berth_build::parser::{self, Command, Health, Instruction, Kind};
use berth_image::{HealthConfig, History, Image, ImageConfig};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The comment BuildKit puts on the history entries it writes; `docker history` shows it.
pub(crate) const HISTORY_COMMENT: &str = "buildkit.dockerfile.v0";

impl Builder {
    pub(crate) async fn run_stage(self: &Arc<Self>, index: usize) -> Result<Image> {
        let stage = &self.df.stages[index];
        let n = self.next_step();
        let base = self.expand_meta(&stage.base)?;
        // `FROM --platform=`: berth builds for the host's platform (`$BUILDPLATFORM`/`$TARGETPLATFORM` are it).
        if let Some(p) = &stage.platform {
            let p = self
                .lexer
                .process_word(p, &|n| match n {
                    "BUILDPLATFORM" | "TARGETPLATFORM" => {
                        let h = berth_image::Platform::host();
                        Some(format!("{}/{}", h.os, h.architecture))
                    }
                    _ => self
                        .meta
                        .get(n)
                        .cloned()
                        .or_else(|| super::automatic_arg(n)),
                })
                .map_err(|e| EngineError::Invalid(format!("FROM --platform={p}: {e}")))?;
            let want = berth_image::Platform::parse(&p)
                .map_err(|e| EngineError::Invalid(format!("FROM --platform={p}: {e}")))?;
            let host = berth_image::Platform::host();
            if !want.matches(&host.os, &host.architecture, None) {
                return Err(EngineError::Invalid(format!(
                    "FROM --platform={p}: berth builds for this host's platform ({}/{}) only",
                    host.os, host.architecture
                )));
            }
        }
        let shown = match &stage.name {
            Some(name) => format!("FROM {base} AS {name}"),
            None => format!("FROM {base}"),
        };
        self.say(format!("Step {n}/{} : {shown}\n", self.total_steps));
        let (image, config) = if let Some(i) = self.stage_ref(&base, index) {
            let img = self
                .stage_result(i)
                .ok_or_else(|| EngineError::Internal(format!("stage {i} has not been built")))?;
            let cfg = img.config.clone();
            (Some(img), cfg)
        } else if base.eq_ignore_ascii_case("scratch") {
            let host = berth_image::Platform::host();
            let cfg = ImageConfig {
                architecture: host.architecture,
                os: host.os,
                variant: host.variant,
                ..ImageConfig::default()
            };
            (None, cfg)
        } else {
            let img = self.base_image(&base).await?;
            let cfg = img.config.clone();
            (Some(img), cfg)
        };
        match &image {
            Some(img) => self.say(format!(" ---> {}\n", berth_image::short_id(&img.id))),
            None => self.say(" ---> \n"),
        }
        let mut st = StageState {
            index,
            key: Key::base(image.as_ref().map_or("scratch", |i| i.id.as_str())),
            image,
            config,
            pending: false,
            args: Vec::new(),
            cmd_set: false,
        };
        // Docker's builder records which container made an image; a built image has none.
        st.config.container = None;
        st.config.container_config = None;

        let triggers = st.config.config.on_build.take().unwrap_or_default();
        if !triggers.is_empty() {
            st.pending = true;
            self.say(format!(
                "# Executing {} build trigger{}\n",
                triggers.len(),
                if triggers.len() == 1 { "" } else { "s" }
            ));
            for t in &triggers {
                let parsed = parser::parse(&format!("FROM scratch\n{t}\n"), "ONBUILD trigger")
                    .map_err(|e| EngineError::Invalid(e.to_string()))?;
                for ins in &parsed.stages[0].instructions {
                    self.step(&mut st, ins).await?;
                }
            }
        }
        for ins in &stage.instructions {
            if self.events.is_closed() {
                return Err(super::run::cancelled());
            }
            let n = self.next_step();
            self.say(format!(
                "Step {n}/{} : {}\n",
                self.total_steps, ins.original
            ));
            self.step(&mut st, ins).await?;
        }
        if index == self.target && !self.req.labels.is_empty() {
            let labels = st.config.config.labels.get_or_insert_with(BTreeMap::new);
            let mut parts = Vec::new();
            for (k, v) in &self.req.labels {
                labels.insert(k.clone(), v.clone());
                parts.push(format!("{k}={v}"));
            }
            st.key = st.key.then(&["labels", &parts.join("\n")]);
            st.pending = true;
        }
        self.materialize(&mut st).await
    }

    /// A base image: the local one unless asked to pull or missing.
    async fn base_image(&self, name: &str) -> Result<Image> {
        if !self.req.pull {
            match self.engine.resolve_image(name).await {
                Ok(img) => return Ok(img),
                Err(e) if e.kind() == crate::error::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        self.say(format!("Pulling {name}\n"));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let platform = (!self.req.platform.is_empty()).then_some(self.req.platform.as_str());
        let pulled = {
            let drain = async {
                while let Some(p) = rx.recv().await {
                    let _ = p;
                }
            };
            let (r, ()) = tokio::join!(self.engine.pull(name, platform, None, tx), drain);
            r
        };
        pulled.map_err(|e| {
            EngineError::Invalid(format!("failed to get the base image {name}: {e}"))
        })?;
        self.engine.resolve_image(name).await
    }

    /// The stage's image with every pending config change: reused from the cache or made now.
    pub(crate) async fn materialize(&self, st: &mut StageState) -> Result<Image> {
        if !st.pending {
            if let Some(img) = &st.image {
                return Ok(img.clone());
            }
        }
        let key = st.key.clone();
        if let Some(img) = self.cached_step(st, &key, None).await? {
            st.image = Some(img.clone());
            st.pending = false;
            return Ok(img);
        }
        let parent = st.image.as_ref().map(|i| i.id.clone());
        let mut config = st.config.clone();
        record_key(&mut config, &st.key);
        let img = self
            .engine
            .images_blocking(move |s| {
                s.add_step_image(
                    parent.as_deref(),
                    config,
                    None::<fn(&mut dyn std::io::Write) -> std::io::Result<()>>,
                )
            })
            .await?;
        self.remember(&st.key, &img).await;
        st.image = Some(img.clone());
        st.pending = false;
        Ok(img)
    }

    /// The image the cache has for `key`, unless caching is off or the image is gone.
    pub(crate) async fn cached(&self, key: &Key) -> Result<Option<Image>> {
        if self.req.no_cache {
            return Ok(None);
        }
        let cache = self.engine.inner.build_cache.clone();
        let k = key.clone();
        let found = tokio::task::spawn_blocking(move || cache.get(&k))
            .await
            .map_err(EngineError::join)??;
        let Some(id) = found else { return Ok(None) };
        match self.engine.images_blocking(move |s| s.get(&id)).await {
            Ok(img) => Ok(Some(img)),
            Err(_) => Ok(None),
        }
    }

    /// [`Builder::cached`], then the `--cache-from` images: one that recorded `key` gives its layers up to that
    /// step, under the config this build has at that point (plus `step`'s history entry).
    pub(crate) async fn cached_step(
        &self,
        st: &StageState,
        key: &Key,
        step: Option<History>,
    ) -> Result<Option<Image>> {
        if let Some(img) = self.cached(key).await? {
            return Ok(Some(img));
        }
        if self.req.no_cache {
            return Ok(None);
        }
        let Some((source, layers)) = self.cache_from.get(&key.0).cloned() else {
            return Ok(None);
        };
        // The source's layers below this step must be the parent's own.
        let parent_layers = st
            .image
            .as_ref()
            .map(|i| i.diff_ids.clone())
            .unwrap_or_default();
        let src = source.clone();
        let src_img = self.engine.images_blocking(move |s| s.get(&src)).await?;
        if layers < parent_layers.len()
            || src_img.diff_ids.get(..parent_layers.len()) != Some(&parent_layers[..])
        {
            return Ok(None);
        }
        let mut config = st.config.clone();
        if let Some(h) = step {
            config.history.push(h);
        }
        record_key(&mut config, key);
        let parent = st.image.as_ref().map(|i| i.id.clone());
        let img = self
            .engine
            .images_blocking(move |s| {
                s.add_image_from_layers(parent.as_deref(), config, &source, layers)
            })
            .await?;
        self.remember(key, &img).await;
        Ok(Some(img))
    }

    pub(crate) async fn remember(&self, key: &Key, img: &Image) {
        let cache = self.engine.inner.build_cache.clone();
        let (k, id) = (key.clone(), img.id.clone());
        match tokio::task::spawn_blocking(move || cache.put(&k, &id)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "recording a build cache entry"),
            Err(e) => tracing::warn!(error = %e, "recording a build cache entry"),
        }
    }

    /// After a cache hit on a file-changing step.
    pub(crate) fn use_cached(&self, st: &mut StageState, img: Image) {
        self.say(" ---> Using cache\n");
        self.say(format!(" ---> {}\n", berth_image::short_id(&img.id)));
        st.config = img.config.clone();
        st.image = Some(img);
        st.pending = false;
    }

    /// After a file-changing step made `img`.
    pub(crate) async fn made(&self, st: &mut StageState, img: Image) {
        self.remember(&st.key, &img).await;
        self.say(format!(" ---> {}\n", berth_image::short_id(&img.id)));
        st.config = img.config.clone();
        st.image = Some(img);
        st.pending = false;
    }

    fn expand(&self, st: &StageState, ins: &Instruction, word: &str) -> Result<String> {
        self.lexer
            .process_word(word, &|n| st.lookup(n))
            .map_err(|e| step_error(ins, e))
    }

    fn expand_words(&self, st: &StageState, ins: &Instruction, word: &str) -> Result<Vec<String>> {
        self.lexer
            .process_words(word, &|n| st.lookup(n))
            .map_err(|e| step_error(ins, e))
    }

    /// A config-only step: one history entry, the key moves on.
    fn config_step(&self, st: &mut StageState, created_by: String) {
        st.key = st.key.then(&["config", &created_by]);
        st.config.history.push(History {
            created_by: Some(created_by),
            comment: Some(HISTORY_COMMENT.to_string()),
            empty_layer: Some(true),
            ..History::default()
        });
        st.pending = true;
    }

    /// The argv of a `CMD`/`ENTRYPOINT`/`RUN` in either form.
    pub(crate) fn argv(st: &StageState, c: &Command) -> Vec<String> {
        match c {
            Command::Exec(v) => v.clone(),
            Command::Shell(s) => {
                let mut v = st
                    .config
                    .config
                    .shell
                    .clone()
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()]);
                v.push(s.clone());
                v
            }
        }
    }

    pub(crate) async fn step(
        self: &Arc<Self>,
        st: &mut StageState,
        ins: &Instruction,
    ) -> Result<()> {
        match &ins.kind {
            Kind::Env(pairs) => {
                let mut expanded = Vec::new();
                for (k, v) in pairs {
                    expanded.push((k.clone(), self.expand(st, ins, v)?));
                }
                let env = st.config.config.env.get_or_insert_with(Vec::new);
                for (k, v) in &expanded {
                    env.retain(|e| e.split_once('=').map_or(e.as_str(), |(ek, _)| ek) != k);
                    env.push(format!("{k}={v}"));
                }
                let shown: Vec<String> = expanded.iter().map(|(k, v)| format!("{k}={v}")).collect();
                self.config_step(st, format!("ENV {}", shown.join(" ")));
            }
            Kind::Arg(args) => {
                let mut shown = Vec::new();
                for (name, default) in args {
                    let given = self.req.build_args.get(name).cloned().flatten();
                    if given.is_some() {
                        self.use_arg(name);
                    }
                    let value = match (given, default) {
                        (Some(v), _) => Some(v),
                        (None, Some(d)) => Some(self.expand(st, ins, d)?),
                        (None, None) => self
                            .meta
                            .get(name)
                            .cloned()
                            .or_else(|| super::automatic_arg(name)),
                    };
                    st.args.retain(|(k, _)| k != name);
                    match value {
                        Some(v) => {
                            shown.push(format!("{name}={v}"));
                            st.args.push((name.clone(), v));
                        }
                        None => shown.push(name.clone()),
                    }
                }
                self.config_step(st, format!("ARG {}", shown.join(" ")));
            }
            Kind::Label(pairs) => {
                let mut shown = Vec::new();
                let mut expanded = Vec::new();
                for (k, v) in pairs {
                    let (k, v) = (self.expand(st, ins, k)?, self.expand(st, ins, v)?);
                    shown.push(format!("{k}={v}"));
                    expanded.push((k, v));
                }
                let labels = st.config.config.labels.get_or_insert_with(BTreeMap::new);
                labels.extend(expanded);
                self.config_step(st, format!("LABEL {}", shown.join(" ")));
            }
            Kind::Expose(words) => {
                let mut ports = Vec::new();
                for w in words {
                    for p in self.expand_words(st, ins, w)? {
                        ports.extend(expose_ports(&p).map_err(|e| step_error(ins, e))?);
                    }
                }
                let map = st
                    .config
                    .config
                    .exposed_ports
                    .get_or_insert_with(BTreeMap::new);
                for p in &ports {
                    map.insert(p.clone(), Value::Object(Default::default()));
                }
                let shown: Vec<String> = ports.iter().map(|p| format!("{p}:{{}}")).collect();
                self.config_step(st, format!("EXPOSE map[{}]", shown.join(" ")));
            }
            Kind::Volume(list) => {
                let mut vols = Vec::new();
                for v in list {
                    let v = self.expand(st, ins, v)?;
                    if v.trim().is_empty() {
                        return Err(step_error(
                            ins,
                            "VOLUME specified can not be an empty string",
                        ));
                    }
                    vols.push(v);
                }
                let map = st.config.config.volumes.get_or_insert_with(BTreeMap::new);
                for v in &vols {
                    map.insert(v.clone(), Value::Object(Default::default()));
                }
                self.config_step(st, format!("VOLUME [{}]", vols.join(" ")));
            }
            Kind::User(u) => {
                let u = self.expand(st, ins, u)?;
                st.config.config.user = Some(u.clone());
                self.config_step(st, format!("USER {u}"));
            }
            Kind::StopSignal(s) => {
                let s = self.expand(st, ins, s)?;
                st.config.config.stop_signal = Some(s.clone());
                self.config_step(st, format!("STOPSIGNAL {s}"));
            }
            Kind::Shell(v) => {
                st.config.config.shell = Some(v.clone());
                self.config_step(st, format!("SHELL {}", json(v)));
            }
            Kind::Maintainer(m) => {
                st.config.author = Some(m.clone());
                self.config_step(st, format!("MAINTAINER {m}"));
            }
            Kind::Onbuild(trigger) => {
                st.config
                    .config
                    .on_build
                    .get_or_insert_with(Vec::new)
                    .push(trigger.original.clone());
                self.config_step(st, format!("ONBUILD {}", trigger.original));
            }
            Kind::Cmd(c) => {
                let argv = Self::argv(st, c);
                st.config.config.cmd = Some(argv.clone());
                st.cmd_set = true;
                self.config_step(st, format!("CMD {}", json(&argv)));
            }
            Kind::Entrypoint(c) => {
                let argv = Self::argv(st, c);
                st.config.config.entrypoint = Some(argv.clone());
                if !st.cmd_set {
                    st.config.config.cmd = None;
                }
                self.config_step(st, format!("ENTRYPOINT {}", json(&argv)));
            }
            Kind::Healthcheck(h) => {
                let hc = match h {
                    Health::None => HealthConfig {
                        test: Some(vec!["NONE".into()]),
                        ..HealthConfig::default()
                    },
                    Health::Check {
                        command,
                        interval,
                        timeout,
                        start_period,
                        start_interval,
                        retries,
                    } => {
                        let test = match command {
                            Command::Exec(v) => {
                                let mut t = vec!["CMD".to_string()];
                                t.extend(v.iter().cloned());
                                t
                            }
                            Command::Shell(s) => vec!["CMD-SHELL".into(), s.clone()],
                        };
                        let dur = |v: &Option<String>, name: &str| -> Result<Option<i64>> {
                            v.as_deref()
                                .map(|s| {
                                    berth_build::duration::parse_go_duration(s)
                                        .map_err(|e| step_error(ins, format!("--{name}: {e}")))
                                })
                                .transpose()
                        };
                        let retries = retries
                            .as_deref()
                            .map(|r| {
                                r.parse::<i64>().map_err(|_| {
                                    step_error(ins, format!("--retries: invalid number {r:?}"))
                                })
                            })
                            .transpose()?;
                        HealthConfig {
                            test: Some(test),
                            interval: dur(interval, "interval")?,
                            timeout: dur(timeout, "timeout")?,
                            start_period: dur(start_period, "start-period")?,
                            start_interval: dur(start_interval, "start-interval")?,
                            retries,
                            ..HealthConfig::default()
                        }
                    }
                };
                st.config.config.healthcheck = Some(hc);
                self.config_step(st, ins.original.clone());
            }
            Kind::Workdir(w) => {
                let w = self.expand(st, ins, w)?;
                let dir = join_workdir(st.config.config.working_dir.as_deref(), &w);
                st.config.config.working_dir = Some(dir.clone());
                self.fs_step(
                    st,
                    ins,
                    super::fs::FsOp::Mkdir(dir.clone()),
                    format!("WORKDIR {dir}"),
                    String::new(),
                )
                .await?;
            }
            Kind::Run(r) => self.run_step(st, ins, r).await?,
            Kind::Copy(c) => self.copy_step(st, ins, c, false).await?,
            Kind::Add(c) => self.copy_step(st, ins, c, true).await?,
        }
        Ok(())
    }

    /// The environment a `RUN` sees: the image's, plus the stage's `ARG`s not overridden by `ENV`.
    pub(crate) fn run_env(st: &StageState) -> Vec<String> {
        let mut env = st.config.config.env.clone().unwrap_or_default();
        for (k, v) in &st.args {
            if env_lookup(&env, k).is_none() {
                env.push(format!("{k}={v}"));
            }
        }
        env
    }
}

/// The config field where a built image lists its steps' cache keys (and how many history entries each step's
/// image had), so that `--cache-from` can reuse its layers on another daemon, as BuildKit's inline cache does.
pub(crate) const CACHE_FIELD: &str = "berth.build.cache.v0";

pub(crate) fn record_key(config: &mut ImageConfig, key: &Key) {
    let n = config.history.len();
    let list = config
        .extra
        .entry(CACHE_FIELD.to_string())
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(a) = list {
        a.push(serde_json::json!({"key": key.0, "history": n}));
    }
}

/// The steps an image recorded: cache key to the number of layers its image had.
pub(crate) fn recorded_keys(config: &ImageConfig) -> Vec<(String, usize)> {
    let Some(Value::Array(list)) = config.extra.get(CACHE_FIELD) else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|r| {
            let key = r["key"].as_str()?.to_string();
            let n = usize::try_from(r["history"].as_u64()?).ok()?;
            let history = config.history.get(..n)?;
            let layers = history
                .iter()
                .filter(|h| !h.empty_layer.unwrap_or(false))
                .count();
            Some((key, layers))
        })
        .collect()
}

/// `EXPOSE` words into `port/proto` keys (`80`, `80/udp`, `8000-8002`).
fn expose_ports(spec: &str) -> std::result::Result<Vec<String>, String> {
    let (ports, proto) = match spec.split_once('/') {
        Some((p, proto)) => (p, proto.to_ascii_lowercase()),
        None => (spec, "tcp".to_string()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid proto: {proto}"));
    }
    let parse = |s: &str| {
        s.parse::<u16>()
            .map_err(|_| format!("invalid containerPort: {s}"))
    };
    let (lo, hi) = match ports.split_once('-') {
        Some((a, b)) => (parse(a)?, parse(b)?),
        None => {
            let p = parse(ports)?;
            (p, p)
        }
    };
    if hi < lo {
        return Err(format!("invalid port range: {ports}"));
    }
    Ok((lo..=hi).map(|p| format!("{p}/{proto}")).collect())
}

/// `WORKDIR` relative to the previous one, cleaned.
pub(crate) fn join_workdir(current: Option<&str>, dir: &str) -> String {
    let joined = if dir.starts_with('/') {
        dir.to_string()
    } else {
        format!("{}/{dir}", current.filter(|c| !c.is_empty()).unwrap_or("/"))
    };
    crate::container::archive::clean_abs(&joined)
}

fn json(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expose_forms() {
        assert_eq!(expose_ports("80").unwrap(), vec!["80/tcp"]);
        assert_eq!(expose_ports("53/UDP").unwrap(), vec!["53/udp"]);
        assert_eq!(
            expose_ports("8000-8002").unwrap(),
            vec!["8000/tcp", "8001/tcp", "8002/tcp"]
        );
        assert!(expose_ports("80/xyz").is_err());
        assert!(expose_ports("http").is_err());
    }

    #[test]
    fn workdir_joins_and_cleans() {
        assert_eq!(join_workdir(None, "app"), "/app");
        assert_eq!(join_workdir(Some("/srv"), "app/../web/"), "/srv/web");
        assert_eq!(join_workdir(Some("/srv"), "/abs"), "/abs");
    }
}
