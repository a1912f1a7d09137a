//! `docker build`: a Dockerfile and its context into an image.
//!
//! The flow: the API streams the context tar to disk ([`Engine::receive_build_context`]), the Dockerfile is
//! parsed (`berth_build::parser`), the stages the target needs are worked out, and independent stages run
//! concurrently. Each stage keeps its state as an image config being edited plus the last image it
//! *materialised* in the store: instructions that only change the config (`ENV`, `CMD`, `LABEL`...) change the
//! config and add a history entry; instructions that change files (`RUN`, `COPY`, `ADD`, `WORKDIR`) make an
//! image of one more layer, taken from an overlay upper directory: a real container for `RUN` (`run.rs`), an
//! overlay mounted in a private namespace for the others (`fs.rs`).
//!
//! Cache: every step has a key chained from its parent's (the base image id, each instruction as it runs with
//! its arguments expanded, the build args in scope, and for `COPY`/`ADD` the content of what it copies, metadata
//! like mtimes left out); the images made at file-changing steps and at the end of a stage are recorded under
//! their key (`cache.rs`). A step whose key is known reuses the image, so a fully cached rebuild runs no
//! container and writes nothing.

pub mod cache;
mod fs;
mod run;
mod step;

use crate::error::{EngineError, Result};
use crate::Engine;
use berth_build::parser::{self, Dockerfile, Kind};
use berth_build::shell::Lexer;
use berth_image::{Image, ImageConfig};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

pub use cache::CacheStore;

/// `POST /build` decoded.
#[derive(Debug, Clone, Default)]
pub struct BuildRequest {
    /// The Dockerfile's path in the context (`dockerfile`; default `Dockerfile`).
    pub dockerfile: String,
    /// Tags to give the result (`t`, several).
    pub tags: Vec<String>,
    /// `buildargs`: a `None` value means "take it from the client's environment", which the client resolved.
    pub build_args: BTreeMap<String, Option<String>>,
    pub target: String,
    pub no_cache: bool,
    /// Always pull base images.
    pub pull: bool,
    /// Remove intermediate containers after a successful step (default on).
    pub remove: bool,
    /// Remove intermediate containers even after a failed step.
    pub force_remove: bool,
    pub labels: BTreeMap<String, String>,
    /// `networkmode` for `RUN` (default `bridge`).
    pub network_mode: String,
    pub platform: String,
    /// Only the image id is reported.
    pub quiet: bool,
    /// Images whose recorded steps may be reused (`--cache-from`).
    pub cache_from: Vec<String>,
}

/// What a build reports while it runs.
#[derive(Debug, Clone, PartialEq)]
pub enum BuildEvent {
    /// Text for the user (Docker's `stream` messages).
    Stream(String),
    /// The built image's id (Docker's `aux` message).
    Aux(String),
}

/// A build context on disk: removed when dropped.
#[derive(Debug)]
pub struct Context {
    dir: PathBuf,
}

impl Context {
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(dir = %self.dir.display(), error = %e, "removing a build context");
            }
        }
    }
}

/// A tar stream made whole: the docker CLI sends a context whose last entry lacks its padding and the
/// end-of-archive marker when it adds a Dockerfile from outside the context (its tar rewriter closes the pipe
/// before the tar writer); dockerd's reader takes that, so we do too, by supplying the missing zeros at the end.
struct CompleteTar<R> {
    inner: R,
    read: u64,
    /// Zeros still to give after the inner stream ended.
    tail: Option<u64>,
}

impl<R: Read> CompleteTar<R> {
    fn new(inner: R) -> Self {
        CompleteTar {
            inner,
            read: 0,
            tail: None,
        }
    }
}

impl<R: Read> Read for CompleteTar<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.tail.is_none() {
            let n = self.inner.read(buf)?;
            if n > 0 || buf.is_empty() {
                self.read += n as u64;
                return Ok(n);
            }
            let pad = (512 - self.read % 512) % 512;
            self.tail = Some(pad + 1024);
        }
        let left = self.tail.unwrap_or(0);
        let n = (buf.len() as u64).min(left) as usize;
        buf[..n].fill(0);
        self.tail = Some(left - n as u64);
        Ok(n)
    }
}

/// BuildKit's automatic platform args (`TARGETARCH`...): this host's platform, since berth builds for it.
pub(crate) fn automatic_arg(name: &str) -> Option<String> {
    let h = berth_image::Platform::host();
    let variant = h.variant.clone().unwrap_or_default();
    let platform = match &h.variant {
        Some(v) => format!("{}/{}/{v}", h.os, h.architecture),
        None => format!("{}/{}", h.os, h.architecture),
    };
    Some(match name {
        "TARGETPLATFORM" | "BUILDPLATFORM" => platform,
        "TARGETOS" | "BUILDOS" => h.os,
        "TARGETARCH" | "BUILDARCH" => h.architecture,
        "TARGETVARIANT" | "BUILDVARIANT" => variant,
        _ => return None,
    })
}

/// Build args Docker lets every Dockerfile use without declaring them (and leaves out of the history).
const PREDEFINED_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

impl Engine {
    fn builder_dir(&self) -> PathBuf {
        self.inner.cfg.data_root.join("builder")
    }

    /// A fresh directory under the builder's scratch space.
    pub(crate) fn builder_scratch(&self, what: &str) -> Result<PathBuf> {
        let dir = self
            .builder_dir()
            .join("tmp")
            .join(format!("{what}-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir)
            .map_err(|e| EngineError::io(format!("create {}", dir.display()), e))?;
        Ok(dir)
    }

    /// Streams a build context (a tar, possibly compressed) to disk. Blocking: call from a blocking thread.
    pub fn receive_build_context(&self, reader: impl Read + Send) -> Result<Context> {
        let ctx = Context {
            dir: self.builder_scratch("context")?,
        };
        let plain = berth_archive::decompress(std::io::BufReader::new(reader))
            .map_err(|e| EngineError::Invalid(format!("reading the build context: {e}")))?;
        berth_archive::extract_plain(
            CompleteTar::new(plain),
            &ctx.dir,
            &berth_archive::Limits::default(),
        )
        .map_err(|e| EngineError::Invalid(format!("unpacking the build context: {e}")))?;
        Ok(ctx)
    }

    /// Scratch left by builds a crash interrupted.
    pub(crate) fn clean_builder_scratch(&self) {
        let tmp = self.builder_dir().join("tmp");
        if let Ok(entries) = std::fs::read_dir(&tmp) {
            for e in entries.flatten() {
                let p = e.path();
                let _ = berth_sys::mount::unmount(&p.join("mnt"));
                if let Err(err) = std::fs::remove_dir_all(&p) {
                    tracing::warn!(dir = %p.display(), error = %err, "removing build scratch");
                }
            }
        }
    }

    /// Runs a build; returns the image id. Progress goes to `events`.
    pub async fn build(
        &self,
        ctx: &Context,
        req: BuildRequest,
        events: mpsc::UnboundedSender<BuildEvent>,
    ) -> Result<String> {
        let name = if req.dockerfile.is_empty() {
            "Dockerfile".to_string()
        } else {
            req.dockerfile.clone()
        };
        let text = read_dockerfile(ctx.dir(), &name)?;
        let df = parser::parse(&text, &name).map_err(|e| EngineError::Invalid(e.to_string()))?;
        if !req.platform.is_empty() {
            let p = berth_image::Platform::parse(&req.platform)
                .map_err(|e| EngineError::Invalid(e.to_string()))?;
            let host = berth_image::Platform::host();
            if !p.matches(&host.os, &host.architecture, None) {
                return Err(EngineError::Invalid(format!(
                    "platform {} is not this host's ({}/{}): berth builds for the host's platform only",
                    req.platform, host.os, host.architecture
                )));
            }
        }
        let mut cache_from = BTreeMap::new();
        for name in &req.cache_from {
            match self.resolve_image(name).await {
                Ok(img) => {
                    for (key, layers) in step::recorded_keys(&img.config) {
                        cache_from.entry(key).or_insert((img.id.clone(), layers));
                    }
                }
                Err(_) => {
                    if !req.quiet {
                        let _ = events.send(BuildEvent::Stream(format!(
                            "[Warning] --cache-from image {name} not found locally, ignored\n"
                        )));
                    }
                }
            }
        }
        let mut b = Builder::new(self.clone(), ctx.dir().to_path_buf(), df, req, events)?;
        b.cache_from = cache_from;
        let b = Arc::new(b);
        let id = b.run().await?;
        Ok(id)
    }

    /// `docker builder prune`: forgets the build cache and removes the images only it kept (untagged, unused
    /// by containers, without children). Returns the removed image ids and the bytes reclaimed.
    pub async fn prune_build_cache(&self) -> Result<(Vec<String>, u64)> {
        let cache = self.inner.build_cache.clone();
        let ids = tokio::task::spawn_blocking(move || {
            let ids = cache.images()?;
            cache.clear()?;
            Ok::<_, EngineError>(ids)
        })
        .await
        .map_err(EngineError::join)??;
        let usage = || self.images_blocking(|s| s.disk_usage());
        let before = usage().await?;
        let mut removed = Vec::new();
        // Children go first: walk until nothing more can go.
        let mut left: BTreeSet<String> = ids.into_iter().collect();
        loop {
            let mut progress = false;
            let images = self.list_images().await?;
            for id in left.clone() {
                let Some(img) = images.iter().find(|i| i.id == id) else {
                    left.remove(&id);
                    continue;
                };
                let has_child = images.iter().any(|i| i.parent == id);
                if !img.repo_tags.is_empty() || has_child || self.image_in_use(&id).await.is_some()
                {
                    continue;
                }
                if self.remove_image(&id, false, true).await.is_ok() {
                    removed.push(id.clone());
                    left.remove(&id);
                    progress = true;
                }
            }
            if !progress {
                break;
            }
        }
        // Layers are shared between images: what went is what the store no longer holds.
        let reclaimed = before.saturating_sub(usage().await?);
        Ok((removed, reclaimed))
    }
}

/// Reads the Dockerfile from the context, refusing a path that leads out of it.
fn read_dockerfile(ctx: &Path, name: &str) -> Result<String> {
    let root = std::fs::File::open(ctx)
        .map_err(|e| EngineError::io(format!("open {}", ctx.display()), e))?;
    let fd = berth_sys::inroot::open(
        std::os::fd::AsFd::as_fd(&root),
        Path::new(name),
        berth_sys::inroot::How::File,
    )
    .map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            EngineError::Invalid(format!("Cannot locate specified Dockerfile: {name}"))
        }
        _ => EngineError::io(format!("open the Dockerfile {name}"), e),
    })?;
    let mut text = String::new();
    std::fs::File::from(fd)
        .read_to_string(&mut text)
        .map_err(|e| EngineError::Invalid(format!("reading the Dockerfile {name}: {e}")))?;
    Ok(text)
}

/// One build in progress.
pub(crate) struct Builder {
    engine: Engine,
    ctx: PathBuf,
    df: Dockerfile,
    req: BuildRequest,
    lexer: Lexer,
    events: mpsc::UnboundedSender<BuildEvent>,
    /// Values of the `ARG`s before the first `FROM`, after build args.
    meta: BTreeMap<String, String>,
    /// Build args some `ARG` consumed.
    used_args: Mutex<BTreeSet<String>>,
    /// The stages to build, in file order.
    needed: Vec<usize>,
    /// The target stage.
    target: usize,
    /// Instructions to run (`FROM` included), for `Step n/N`.
    total_steps: usize,
    step_no: AtomicUsize,
    /// Results of finished stages.
    results: Mutex<BTreeMap<usize, Image>>,
    /// Intermediate containers to remove at the end (kept after failures unless `forcerm`).
    containers: Mutex<Vec<String>>,
    /// `--cache-from`: step key to (image, number of its layers at that step).
    cache_from: BTreeMap<String, (String, usize)>,
}

/// A stage's state between instructions.
#[derive(Debug, Clone)]
pub(crate) struct StageState {
    pub index: usize,
    /// The last image made in the store (none yet for `FROM scratch`).
    pub image: Option<Image>,
    /// The config being built (pending changes included).
    pub config: ImageConfig,
    /// The config differs from `image`'s.
    pub pending: bool,
    pub key: cache::Key,
    /// `ARG`s declared in this stage and their values, in declaration order.
    pub args: Vec<(String, String)>,
    /// `CMD` was set in this stage (an `ENTRYPOINT` then keeps it).
    pub cmd_set: bool,
}

impl StageState {
    /// The environment variable expansion sees: `ENV` values win over `ARG`s.
    pub fn lookup(&self, name: &str) -> Option<String> {
        env_lookup(self.config.config.env.as_deref().unwrap_or_default(), name).or_else(|| {
            self.args
                .iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        })
    }
}

pub(crate) fn env_lookup(env: &[String], name: &str) -> Option<String> {
    env.iter().rev().find_map(|e| match e.split_once('=') {
        Some((k, v)) if k == name => Some(v.to_string()),
        None if e == name => Some(String::new()),
        _ => None,
    })
}

impl Builder {
    fn new(
        engine: Engine,
        ctx: PathBuf,
        df: Dockerfile,
        req: BuildRequest,
        events: mpsc::UnboundedSender<BuildEvent>,
    ) -> Result<Builder> {
        let lexer = Lexer::new(df.escape);
        // Meta args: defaults expanded with the ones before; build args override.
        let mut meta: BTreeMap<String, String> = BTreeMap::new();
        let mut used = BTreeSet::new();
        for ins in &df.meta_args {
            let Kind::Arg(args) = &ins.kind else { continue };
            for (name, default) in args {
                let given = req.build_args.get(name).cloned().flatten();
                if given.is_some() {
                    used.insert(name.clone());
                }
                let value = match (given, default) {
                    (Some(v), _) => Some(v),
                    (None, Some(d)) => Some(
                        lexer
                            .process_word(d, &|n| meta.get(n).cloned())
                            .map_err(|e| step_error(ins, e))?,
                    ),
                    (None, None) => automatic_arg(name),
                };
                if let Some(v) = value {
                    meta.insert(name.clone(), v);
                }
            }
        }
        let target = if req.target.is_empty() {
            df.stages.len() - 1
        } else {
            let t = req.target.to_ascii_lowercase();
            df.stages
                .iter()
                .position(|s| s.name.as_deref() == Some(t.as_str()))
                .ok_or_else(|| {
                    EngineError::Invalid(format!(
                        "failed to reach build target {} in Dockerfile",
                        req.target
                    ))
                })?
        };
        let mut b = Builder {
            engine,
            ctx,
            df,
            req,
            lexer,
            events,
            meta,
            used_args: Mutex::new(used),
            needed: Vec::new(),
            target,
            total_steps: 0,
            step_no: AtomicUsize::new(0),
            results: Mutex::new(BTreeMap::new()),
            containers: Mutex::new(Vec::new()),
            cache_from: BTreeMap::new(),
        };
        let mut needed = BTreeSet::new();
        b.collect_needed(target, &mut needed)?;
        b.needed = needed.into_iter().collect();
        b.total_steps = b
            .needed
            .iter()
            .map(|&i| 1 + b.df.stages[i].instructions.len())
            .sum();
        Ok(b)
    }

    /// The stage a `FROM`/`--from` name refers to, if it is one (a name or an index of an earlier stage).
    fn stage_ref(&self, name: &str, before: usize) -> Option<usize> {
        let lower = name.to_ascii_lowercase();
        if let Some(i) = self.df.stages[..before]
            .iter()
            .position(|s| s.name.as_deref() == Some(lower.as_str()))
        {
            return Some(i);
        }
        name.parse::<usize>().ok().filter(|&i| i < before)
    }

    fn expand_meta(&self, word: &str) -> Result<String> {
        self.lexer
            .process_word(word, &|n| {
                self.meta.get(n).cloned().or_else(|| automatic_arg(n))
            })
            .map_err(|e| EngineError::Invalid(format!("{word}: {e}")))
    }

    /// The stages `index` depends on (its base, `COPY --from`, `RUN --mount=from=`).
    fn deps(&self, index: usize) -> Result<Vec<usize>> {
        let stage = &self.df.stages[index];
        let mut out = Vec::new();
        let base = self.expand_meta(&stage.base)?;
        if let Some(i) = self.stage_ref(&base, index) {
            out.push(i);
        }
        for ins in &stage.instructions {
            let from = match &ins.kind {
                Kind::Copy(c) | Kind::Add(c) => c.from.clone(),
                Kind::Run(r) => r.mounts.iter().find_map(|m| run::mount_option(m, "from")),
                _ => None,
            };
            if let Some(f) = from {
                let f = self.expand_meta(&f)?;
                if let Some(i) = self.stage_ref(&f, index) {
                    out.push(i);
                } else if f.parse::<usize>().is_ok() {
                    return Err(EngineError::Invalid(format!(
                        "{}: --from={f} refers to a stage that is not before this one",
                        ins.original
                    )));
                }
            }
        }
        Ok(out)
    }

    fn collect_needed(&self, index: usize, into: &mut BTreeSet<usize>) -> Result<()> {
        if !into.insert(index) {
            return Ok(());
        }
        for d in self.deps(index)? {
            self.collect_needed(d, into)?;
        }
        Ok(())
    }

    pub(crate) fn say(&self, text: impl Into<String>) {
        if !self.req.quiet {
            let _ = self.events.send(BuildEvent::Stream(text.into()));
        }
    }

    fn next_step(&self) -> usize {
        self.step_no.fetch_add(1, Ordering::SeqCst) + 1
    }

    async fn run(self: &Arc<Self>) -> Result<String> {
        let result = self.run_stages().await;
        // Intermediate containers: removed after success, and after failure only with `forcerm`.
        // A build whose client went away leaves nothing behind either.
        let remove = match &result {
            Ok(_) => self.req.remove,
            Err(_) => self.req.force_remove || self.events.is_closed(),
        };
        let leftover: Vec<String> =
            std::mem::take(&mut *self.containers.lock().unwrap_or_else(|e| e.into_inner()));
        if remove {
            for id in leftover {
                let _ = self.engine.remove(&id, true, true).await;
            }
        }
        let image = result?;
        {
            let unused: Vec<String> = {
                let used = self.used_args.lock().unwrap_or_else(|e| e.into_inner());
                self.req
                    .build_args
                    .keys()
                    .filter(|k| !used.contains(*k) && !PREDEFINED_ARGS.contains(&k.as_str()))
                    .cloned()
                    .collect()
            };
            if !unused.is_empty() {
                self.say(format!(
                    "[Warning] One or more build-args [{}] were not consumed\n",
                    unused.join(" ")
                ));
            }
        }
        let short = berth_image::short_id(&image.id);
        self.say(format!("Successfully built {short}\n"));
        for t in &self.req.tags {
            let r = berth_image::Reference::parse(t)
                .map_err(|e| EngineError::Invalid(format!("invalid tag {t:?}: {e}")))?;
            let shown = if r.tag().is_some() || r.digest().is_some() {
                r.familiar()
            } else {
                format!("{}:latest", r.familiar())
            };
            self.engine.tag_image(&image.id, t).await?;
            self.say(format!("Successfully tagged {shown}\n"));
        }
        let _ = self.events.send(BuildEvent::Aux(image.id.clone()));
        Ok(image.id)
    }

    /// Runs the needed stages: each round starts every stage whose dependencies are done, concurrently.
    async fn run_stages(self: &Arc<Self>) -> Result<Image> {
        let mut pending: Vec<usize> = self.needed.clone();
        while !pending.is_empty() {
            let done: BTreeSet<usize> = self
                .results
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .keys()
                .copied()
                .collect();
            let mut ready = Vec::new();
            for &i in &pending {
                if self.deps(i)?.iter().all(|d| done.contains(d)) {
                    ready.push(i);
                }
            }
            if ready.is_empty() {
                return Err(EngineError::Internal(
                    "build stages depend on each other in a cycle".into(),
                ));
            }
            pending.retain(|i| !ready.contains(i));
            let runs = ready.iter().map(|&i| {
                let b = self.clone();
                async move { b.run_stage(i).await.map(|img| (i, img)) }
            });
            for r in futures_util::future::join_all(runs).await {
                let (i, img) = r?;
                self.results
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(i, img);
            }
        }
        self.results
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&self.target)
            .cloned()
            .ok_or_else(|| EngineError::Internal("the target stage produced no image".into()))
    }

    /// What a `--from=` (of `COPY` or `RUN --mount`) names: an earlier stage's result, else an image.
    pub(crate) async fn source_image(
        &self,
        from: &str,
        stage: usize,
        ins: &parser::Instruction,
    ) -> Result<Image> {
        match self.stage_ref(from, stage) {
            Some(i) => self
                .stage_result(i)
                .ok_or_else(|| EngineError::Internal(format!("stage {from} has not been built"))),
            None => self
                .engine
                .resolve_image(from)
                .await
                .map_err(|e| step_error(ins, e)),
        }
    }

    pub(crate) fn stage_result(&self, index: usize) -> Option<Image> {
        self.results
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&index)
            .cloned()
    }

    /// Marks a build arg as consumed.
    pub(crate) fn use_arg(&self, name: &str) {
        self.used_args
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_string());
    }

    pub(crate) fn track_container(&self, id: &str) {
        self.containers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(id.to_string());
    }

    pub(crate) fn untrack_container(&self, id: &str) {
        self.containers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|c| c != id);
    }
}

/// An instruction's error, with the Dockerfile's line.
pub(crate) fn step_error(ins: &parser::Instruction, e: impl std::fmt::Display) -> EngineError {
    EngineError::Invalid(format!("Dockerfile:{}: {}: {e}", ins.line, ins.original))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_context_tars_are_completed() {
        let mut t = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(5);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        t.append_data(&mut h, "f", &b"hello"[..]).unwrap();
        let full = t.into_inner().unwrap();
        // What the docker CLI sends: no padding after the data, no end-of-archive marker.
        let cut = &full[..512 + 5];
        let mut out = Vec::new();
        CompleteTar::new(cut).read_to_end(&mut out).unwrap();
        assert_eq!(out.len(), 2048);
        assert_eq!(&out[..517], cut);
        assert!(out[517..].iter().all(|b| *b == 0));
        let names: Vec<_> = tar::Archive::new(out.as_slice())
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, vec!["f"]);
        // A complete stream only gains zeros after its end.
        let mut out = Vec::new();
        CompleteTar::new(full.as_slice())
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(&out[..full.len()], full.as_slice());
    }
}

#[cfg(test)]
mod chunk_tests {
    use std::io::Read;

    /// A reader that gives its data in the chunks a client sent.
    struct Chunks(Vec<Vec<u8>>);
    impl Read for Chunks {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let Some(c) = self.0.first_mut() else {
                return Ok(0);
            };
            let n = c.len().min(buf.len());
            buf[..n].copy_from_slice(&c[..n]);
            c.drain(..n);
            if c.is_empty() {
                self.0.remove(0);
            }
            Ok(n)
        }
    }

    #[test]
    fn contexts_arriving_in_small_chunks_unpack() {
        let mut t = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        let data = b"FROM busybox\nCMD [\"echo\", \"from stdin\"]\n";
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        t.append_data(&mut h, "Dockerfile", &data[..]).unwrap();
        let full = t.into_inner().unwrap();
        let chunks = vec![
            full[..512].to_vec(),
            full[512..512 + data.len()].to_vec(),
            full[512 + data.len()..1024].to_vec(),
            full[1024..].to_vec(),
        ];
        let dir = tempfile::tempdir().unwrap();
        let plain = berth_archive::decompress(std::io::BufReader::new(Chunks(chunks))).unwrap();
        berth_archive::extract_plain(
            super::CompleteTar::new(plain),
            dir.path(),
            &berth_archive::Limits::default(),
        )
        .unwrap();
        assert_eq!(std::fs::read(dir.path().join("Dockerfile")).unwrap(), data);
    }
}
