//! `COPY`, `ADD` and `WORKDIR`: file changes made without a container, on the stage's image mounted as an overlay
//! in a private mount namespace (the daemon's namespace never sees it); the upper directory is the layer.
//!
//! Sources come from the build context (a directory the daemon unpacked) or from another stage's or image's
//! file system, mounted the same way. Every path inside a root is resolved in that root (`openat2`
//! `RESOLVE_IN_ROOT`); sources that lead out of the context (`../x`, an absolute path, a symlink pointing out)
//! are refused. Docker's rules: a directory's contents are copied, not the directory; the destination is a
//! directory when it ends with `/`, when there are several sources, or when it already is one; new files are
//! owned by root unless `--chown`; `ADD` unpacks local tar archives.

use super::run::context_relative;
use super::{step_error, Builder, StageState};
use crate::error::{EngineError, Result};
use berth_archive::{ExtractOptions, Ownership, Resource, ResourceOptions};
use berth_build::parser::{Copy, Instruction};
use berth_image::History;
use berth_sys::inroot::{self, How};
use berth_sys::mount::Overlay;
use sha2::{Digest, Sha256};
use std::ffi::OsStr;
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What a file-changing step does.
#[derive(Debug, Clone)]
pub(crate) enum FsOp {
    /// `WORKDIR`: make the directory if missing.
    Mkdir(String),
    Copy(CopyPlan),
}

#[derive(Debug, Clone)]
pub(crate) enum SourceRoot {
    /// The build context.
    Context(PathBuf),
    /// Another stage's or an image's layers (overlay lower dirs, top first).
    Layers(Vec<PathBuf>),
}

/// A file to add whose content is given rather than found in the source root.
#[derive(Debug, Clone)]
pub(crate) struct ExtraFile {
    pub name: String,
    pub content: ExtraContent,
    /// Permission bits unless `--chmod` says otherwise (0644 for heredocs, 0600 for downloads, as Docker).
    pub mode: u32,
}

#[derive(Debug, Clone)]
pub(crate) enum ExtraContent {
    Bytes(Vec<u8>),
    /// A file the daemon downloaded (in the step's scratch space).
    File(PathBuf),
}

#[derive(Debug, Clone)]
pub(crate) struct CopyPlan {
    pub source: SourceRoot,
    /// Source paths (relative to the source root), globs expanded later.
    pub items: Vec<String>,
    /// Files that are not in the source root: heredoc bodies and `ADD` downloads.
    pub extra: Vec<ExtraFile>,
    /// Absolute destination, a trailing `/` kept.
    pub dest: String,
    pub owner: Option<(u32, u32)>,
    pub mode: Option<u32>,
    /// `ADD`: unpack local archives.
    pub add: bool,
    /// `--exclude` patterns (`.dockerignore` rules), matched below each source.
    pub exclude: Vec<String>,
    /// `--parents`: keep each source's parent directories under the destination.
    pub parents: bool,
}

impl Builder {
    /// Runs a file-changing step (or reuses its cached result).
    pub(crate) async fn fs_step(
        self: &Arc<Self>,
        st: &mut StageState,
        ins: &Instruction,
        op: FsOp,
        created_by: String,
        content_digest: String,
    ) -> Result<()> {
        let key = st.key.then(&["FS", &created_by, &content_digest]);
        let step = History {
            created_by: Some(created_by.clone()),
            comment: Some(super::step::HISTORY_COMMENT.to_string()),
            ..History::default()
        };
        if let Some(img) = self.cached_step(st, &key, Some(step)).await? {
            st.key = key;
            // WORKDIR and friends keep the config the step set (the cached image has the same).
            self.use_cached(st, img);
            return Ok(());
        }
        let lower = match &st.image {
            Some(img) => {
                let id = img.id.clone();
                self.engine
                    .images_blocking(move |s| s.layer_dirs(&id))
                    .await?
            }
            None => Vec::new(),
        };
        let scratch = super::Context {
            dir: self.engine.builder_scratch("step")?,
        };
        let dir = scratch.dir().to_path_buf();
        let shown = ins.original.clone();
        tokio::task::spawn_blocking(move || apply(&dir, lower, &op))
            .await
            .map_err(EngineError::join)?
            .map_err(|e| EngineError::Invalid(format!("{shown}: {e}")))?;
        let mut config = st.config.clone();
        config.history.push(History {
            created_by: Some(created_by),
            comment: Some(super::step::HISTORY_COMMENT.to_string()),
            ..History::default()
        });
        super::step::record_key(&mut config, &key);
        let parent = st.image.as_ref().map(|i| i.id.clone());
        let upper = scratch.dir().join("upper");
        let img = self
            .engine
            .images_blocking(move |s| {
                s.add_step_image(
                    parent.as_deref(),
                    config,
                    Some(|w: &mut dyn std::io::Write| {
                        berth_archive::write_overlay_diff(&upper, w)
                            .map(|_| ())
                            .map_err(std::io::Error::other)
                    }),
                )
            })
            .await?;
        drop(scratch);
        st.key = key;
        self.made(st, img).await;
        Ok(())
    }

    pub(crate) async fn copy_step(
        self: &Arc<Self>,
        st: &mut StageState,
        ins: &Instruction,
        c: &Copy,
        add: bool,
    ) -> Result<()> {
        let expand = |w: &str| {
            self.lexer
                .process_word(w, &|n| st.lookup(n))
                .map_err(|e| step_error(ins, e))
        };
        let mut exclude = Vec::new();
        for e in &c.exclude {
            exclude.push(expand(e)?);
        }
        berth_build::ignore::DockerIgnore::parse(&exclude.join("\n"))
            .map_err(|e| step_error(ins, format!("--exclude: {e}")))?;
        let mut items = Vec::new();
        let mut extra = Vec::new();
        let mut extra_digest = Sha256::new();
        let mut downloads: Option<super::Context> = None;
        for s in &c.sources {
            if let Some(name) = s.strip_prefix("<<") {
                let name = name
                    .trim_start_matches('-')
                    .trim_matches(|ch| ch == '"' || ch == '\'');
                let doc = c
                    .heredocs
                    .iter()
                    .find(|h| h.name == name)
                    .ok_or_else(|| step_error(ins, format!("heredoc {name} has no body")))?;
                let content = if doc.expand {
                    expand(&doc.content)?
                } else {
                    doc.content.clone()
                };
                extra_digest.update(name.as_bytes());
                extra_digest.update([0]);
                extra_digest.update(content.as_bytes());
                extra.push(ExtraFile {
                    name: name.to_string(),
                    content: ExtraContent::Bytes(content.into_bytes()),
                    mode: 0o644,
                });
                continue;
            }
            if add && (s.starts_with("git@") || s.ends_with(".git")) {
                return Err(step_error(
                    ins,
                    "ADD of a git repository is not supported by berth's builder; clone it in a RUN step",
                ));
            }
            if add && (s.starts_with("http://") || s.starts_with("https://")) {
                let url = expand(s)?;
                if downloads.is_none() {
                    downloads = Some(super::Context {
                        dir: self.engine.builder_scratch("download")?,
                    });
                }
                let dir = downloads
                    .as_ref()
                    .map(|d| d.dir().to_path_buf())
                    .unwrap_or_default();
                let checksum = c.checksum.as_deref().map(&expand).transpose()?;
                self.say(format!("Downloading {url}\n"));
                let (name, path, digest) = download(&url, &dir, extra.len(), checksum.as_deref())
                    .await
                    .map_err(|e| step_error(ins, e))?;
                extra_digest.update(name.as_bytes());
                extra_digest.update([0]);
                extra_digest.update(digest.as_bytes());
                extra.push(ExtraFile {
                    name,
                    content: ExtraContent::File(path),
                    mode: 0o600,
                });
                continue;
            }
            items.push(expand(s)?);
        }
        let dest_raw = expand(&c.dest)?;
        let dest = {
            let joined =
                super::step::join_workdir(st.config.config.working_dir.as_deref(), &dest_raw);
            if (dest_raw.ends_with('/') || dest_raw == "." || dest_raw.ends_with("/."))
                && joined != "/"
            {
                format!("{joined}/")
            } else {
                joined
            }
        };
        let owner = match &c.chown {
            Some(spec) => Some(
                self.resolve_chown(st, &expand(spec)?)
                    .await
                    .map_err(|e| step_error(ins, e))?,
            ),
            None => None,
        };
        let mode = match &c.chmod {
            Some(m) => Some(u32::from_str_radix(&expand(m)?, 8).map_err(|_| {
                step_error(
                    ins,
                    format!("invalid --chmod={m}: an octal mode is required"),
                )
            })?),
            None => None,
        };
        let (source, digest) = match &c.from {
            Some(from) => {
                let from = expand(from)?;
                let img = self.source_image(&from, st.index, ins).await?;
                let id = img.id.clone();
                let lower = self
                    .engine
                    .images_blocking(move |s| s.layer_dirs(&id))
                    .await?;
                (SourceRoot::Layers(lower), img.id)
            }
            None => {
                for item in &items {
                    if item.starts_with('/') {
                        return Err(step_error(
                            ins,
                            format!("{item}: sources are paths in the build context; an absolute path is outside it"),
                        ));
                    }
                    let rel = context_relative(item).map_err(|e| step_error(ins, e))?;
                    check_symlinks(&self.ctx, &rel).map_err(|e| step_error(ins, e))?;
                }
                let ctx = self.ctx.clone();
                let its = items.clone();
                let digest = tokio::task::spawn_blocking(move || context_digest(&ctx, &its))
                    .await
                    .map_err(EngineError::join)?
                    .map_err(|e| step_error(ins, e))?;
                (SourceRoot::Context(self.ctx.clone()), digest)
            }
        };
        let digest = format!(
            "{digest}|{}|{dest}|{owner:?}|{mode:?}|{add}|{}|{}|{}",
            items.join("\n"),
            hex::encode(extra_digest.finalize()),
            exclude.join("\n"),
            c.parents
        );
        let plan = CopyPlan {
            source,
            items,
            extra,
            dest,
            owner,
            mode,
            add,
            exclude,
            parents: c.parents,
        };
        let created_by = format!("{} # buildkit", ins.original);
        let done = self
            .fs_step(st, ins, FsOp::Copy(plan), created_by, digest)
            .await;
        drop(downloads);
        done
    }

    /// `--chown=user[:group]` through the stage image's `/etc/passwd` and `/etc/group`; a user without a group
    /// gets its uid as gid, as Docker does.
    async fn resolve_chown(
        &self,
        st: &StageState,
        spec: &str,
    ) -> std::result::Result<(u32, u32), String> {
        let (user, group) = match spec.split_once(':') {
            Some((u, g)) => (u.to_string(), Some(g.to_string())),
            None => (spec.to_string(), None),
        };
        let numeric = |s: &str| s.parse::<u32>().ok();
        if let (Some(u), g) = (numeric(&user), group.as_deref().map(numeric)) {
            match g {
                None => return Ok((u, u)),
                Some(Some(g)) => return Ok((u, g)),
                Some(None) => {}
            }
        }
        let Some(img) = &st.image else {
            return Err(format!(
                "--chown={spec}: names need an /etc/passwd; the stage has no files yet"
            ));
        };
        let id = img.id.clone();
        let spec2 = spec.to_string();
        let ids = self
            .engine
            .images_blocking(move |s| {
                Ok(crate::user::resolve(&spec2, |p| {
                    s.read_file(&id, p).ok().flatten()
                }))
            })
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("--chown={spec}: {e}"))?;
        let gid = if group.is_none() { ids.uid } else { ids.gid };
        Ok((ids.uid, gid))
    }
}

/// Downloads `url` into `dir` (as file number `n`), checking `checksum` (`sha256:<hex>`) when given; returns the
/// file name Docker gives it (the URL path's last segment), the path, and its digest.
async fn download(
    url: &str,
    dir: &Path,
    n: usize,
    checksum: Option<&str>,
) -> std::result::Result<(String, PathBuf, String), String> {
    use futures_util::StreamExt;
    use std::io::Write;
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url}: {e}"))?;
    let name = parsed
        .path_segments()
        .and_then(|mut s| s.next_back())
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .ok_or_else(|| format!("cannot determine a file name from the URL {url}"))?;
    let client = reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(30))
        .timeout(std::time::Duration::from_secs(3600))
        .build()
        .map_err(|e| format!("{url}: {e}"))?;
    let resp = client
        .get(parsed)
        .send()
        .await
        .map_err(|e| format!("downloading {url}: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!(
            "downloading {url}: the server answered {}",
            resp.status()
        ));
    }
    let path = dir.join(format!("{n}"));
    let mut file =
        std::fs::File::create(&path).map_err(|e| format!("create {}: {e}", path.display()))?;
    let mut h = Sha256::new();
    let mut body = resp.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| format!("downloading {url}: {e}"))?;
        h.update(&chunk);
        file.write_all(&chunk)
            .map_err(|e| format!("write {}: {e}", path.display()))?;
    }
    let digest = format!("sha256:{}", hex::encode(h.finalize()));
    if let Some(want) = checksum {
        if want != digest {
            return Err(format!(
                "{url}: checksum mismatch: expected {want}, got {digest}"
            ));
        }
    }
    Ok((name, path, digest))
}

/// Copies `source` (a path inside the image made of `lower`) out to `scratch/data`, for a `RUN --mount` bind from
/// another stage or image; returns the host path to bind (a directory, or the file itself).
pub(crate) fn export_path(
    lower: Vec<PathBuf>,
    scratch: &Path,
    source: &str,
) -> std::result::Result<PathBuf, String> {
    let data = scratch.join("data");
    std::fs::create_dir_all(&data).map_err(|e| format!("create {}: {e}", data.display()))?;
    let view = overlay_view(lower, &scratch.join("src"))
        .map_err(|e| format!("mount the source image: {e}"))?;
    let root = view.root();
    let path = if source.is_empty() { "/" } else { source };
    let real = inroot::resolve(root, path).map_err(|e| format!("{path}: {e}"))?;
    let fd = inroot::open(root, Path::new(&real), How::Path).map_err(|e| not_found(path, e))?;
    let st = rustix::fs::fstat(&fd).map_err(|e| format!("{path}: {e}"))?;
    let data_dir =
        std::fs::File::open(&data).map_err(|e| format!("open {}: {e}", data.display()))?;
    let opts = ExtractOptions {
        refuse_absolute: true,
        ..ExtractOptions::default()
    };
    if rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Directory {
        let dir = inroot::open(root, Path::new(&real), How::Dir).map_err(|e| not_found(path, e))?;
        pipe(
            |w| {
                berth_archive::write_resource(
                    Resource::Dir(dir.as_fd()),
                    b".",
                    Path::new(path),
                    w,
                    &ResourceOptions::default(),
                )
            },
            data_dir.as_fd(),
            "the bind's copy",
            &opts,
        )?;
        return Ok(data);
    }
    let (parent, name) = split(&real);
    let pfd = inroot::open(root, Path::new(parent), How::Dir).map_err(|e| not_found(path, e))?;
    pipe(
        |w| {
            berth_archive::write_resource(
                Resource::Entry {
                    parent: pfd.as_fd(),
                    name: OsStr::new(name),
                },
                name.as_bytes(),
                Path::new(path),
                w,
                &ResourceOptions::default(),
            )
        },
        data_dir.as_fd(),
        "the bind's copy",
        &opts,
    )?;
    Ok(data.join(name))
}

/// Refuses a context path with a symlink on the way that leads out of the context.
pub(crate) fn check_symlinks(ctx: &Path, rel: &str) -> std::result::Result<(), String> {
    let mut stack: Vec<String> = Vec::new();
    let mut pending: Vec<String> = rel
        .split('/')
        .filter(|c| !c.is_empty())
        .map(String::from)
        .rev()
        .collect();
    let mut hops = 0;
    while let Some(c) = pending.pop() {
        if c == "." {
            continue;
        }
        if c == ".." {
            if stack.pop().is_none() {
                return Err(format!("{rel}: a symlink leads outside the build context"));
            }
            continue;
        }
        let here = ctx.join(stack.join("/")).join(&c);
        match std::fs::symlink_metadata(&here) {
            Ok(m) if m.file_type().is_symlink() => {
                hops += 1;
                if hops > 40 {
                    return Err(format!("{rel}: too many levels of symbolic links"));
                }
                let target = std::fs::read_link(&here).map_err(|e| format!("{rel}: {e}"))?;
                let t = target.to_string_lossy().to_string();
                if t.starts_with('/') {
                    return Err(format!(
                        "{rel}: the symlink {} points to {t}, outside the build context",
                        stack
                            .iter()
                            .chain([&c])
                            .cloned()
                            .collect::<Vec<_>>()
                            .join("/")
                    ));
                }
                for part in t.split('/').filter(|p| !p.is_empty()).rev() {
                    pending.push(part.to_string());
                }
            }
            _ => stack.push(c),
        }
    }
    Ok(())
}

/// A digest of what the context sources hold: names, types, permission bits, contents and link targets (not
/// times or owners, which `COPY` does not keep).
fn context_digest(ctx: &Path, items: &[String]) -> std::result::Result<String, String> {
    let root = std::fs::File::open(ctx).map_err(|e| format!("open the build context: {e}"))?;
    let mut h = Sha256::new();
    for item in items {
        let matches = expand_glob(root.as_fd(), item)?;
        for m in matches {
            h.update(m.as_bytes());
            h.update([0]);
            let real = inroot::resolve(root.as_fd(), &m).map_err(|e| format!("{item}: {e}"))?;
            let path = ctx.join(real.trim_start_matches('/'));
            hash_tree(&path, &mut h).map_err(|e| format!("{item}: {e}"))?;
        }
    }
    Ok(hex::encode(h.finalize()))
}

fn hash_tree(path: &Path, h: &mut Sha256) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let m = std::fs::symlink_metadata(path)?;
    let ft = m.file_type();
    h.update((m.permissions().mode() & 0o7777).to_le_bytes());
    if ft.is_symlink() {
        h.update(b"L");
        h.update(std::fs::read_link(path)?.as_os_str().as_bytes());
    } else if ft.is_dir() {
        h.update(b"D");
        let mut names: Vec<_> = std::fs::read_dir(path)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<std::io::Result<_>>()?;
        names.sort();
        for n in names {
            h.update(n.as_bytes());
            h.update([0]);
            hash_tree(&path.join(&n), h)?;
        }
        h.update(b"d");
    } else if ft.is_file() {
        h.update(b"F");
        h.update(m.len().to_le_bytes());
        let mut f = std::fs::File::open(path)?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
    } else {
        h.update(b"O");
    }
    Ok(())
}

fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Source paths for `item`: itself, or what its glob matches (sorted), below `root`.
fn expand_glob(root: BorrowedFd<'_>, item: &str) -> std::result::Result<Vec<String>, String> {
    let clean = context_relative(item.trim_start_matches('/'))?;
    if !has_glob(&clean) {
        return Ok(vec![clean]);
    }
    let matcher =
        berth_build::ignore::DockerIgnore::parse(&clean).map_err(|e| format!("{item}: {e}"))?;
    let depth = if clean.contains("**") {
        usize::MAX
    } else {
        clean.split('/').count()
    };
    let mut out = Vec::new();
    walk(root, "", depth, &matcher, &mut out).map_err(|e| format!("{item}: {e}"))?;
    out.sort();
    if out.is_empty() {
        return Err(format!("{item}: no source files were specified"));
    }
    Ok(out)
}

fn walk(
    root: BorrowedFd<'_>,
    rel: &str,
    depth: usize,
    matcher: &berth_build::ignore::DockerIgnore,
    out: &mut Vec<String>,
) -> std::io::Result<()> {
    if depth == 0 {
        return Ok(());
    }
    let dir = inroot::open(
        root,
        Path::new(if rel.is_empty() { "." } else { rel }),
        How::Dir,
    )?;
    let mut names = Vec::new();
    let mut d = nix::dir::Dir::from_fd(std::os::fd::IntoRawFd::into_raw_fd(dir))
        .map_err(std::io::Error::from)?;
    for e in d.iter() {
        let e = e.map_err(std::io::Error::from)?;
        let n = e.file_name().to_bytes();
        if n == b"." || n == b".." {
            continue;
        }
        let is_dir = matches!(e.file_type(), Some(nix::dir::Type::Directory));
        names.push((String::from_utf8_lossy(n).into_owned(), is_dir));
    }
    for (n, is_dir) in names {
        let p = if rel.is_empty() {
            n
        } else {
            format!("{rel}/{n}")
        };
        if matcher.is_excluded(&p) {
            out.push(p);
        } else if is_dir {
            walk(root, &p, depth - 1, matcher, out)?;
        }
    }
    Ok(())
}

/// An image's layers (`lower`, none for an empty image) mounted as an overlay in a private mount namespace, with
/// its upper and work directories (and mount point) under `dir`. Dropping the view unmounts it.
fn overlay_view(lower: Vec<PathBuf>, dir: &Path) -> std::result::Result<inroot::View, String> {
    for d in ["upper", "work", "mnt", "empty"] {
        let p = dir.join(d);
        std::fs::create_dir_all(&p).map_err(|e| format!("create {}: {e}", p.display()))?;
    }
    let lower = if lower.is_empty() {
        vec![dir.join("empty")]
    } else {
        lower
    };
    let overlay = Overlay {
        lower,
        upper: dir.join("upper"),
        work: dir.join("work"),
        volatile: false,
    };
    inroot::private_view(&overlay, &dir.join("mnt"), &[], false).map_err(|e| e.to_string())
}

/// Mounts the step's overlay and applies `op` to it (blocking).
fn apply(dir: &Path, lower: Vec<PathBuf>, op: &FsOp) -> std::result::Result<(), String> {
    let view =
        overlay_view(lower, dir).map_err(|e| format!("mount the build step's file system: {e}"))?;
    match op {
        FsOp::Mkdir(path) => inroot::mkdir_all(view.root(), Path::new(path), 0o755, None)
            .map(drop)
            .map_err(|e| format!("mkdir {path}: {e}")),
        FsOp::Copy(plan) => copy(view.root(), dir, plan),
    }
}

fn copy(
    dest_root: BorrowedFd<'_>,
    scratch: &Path,
    plan: &CopyPlan,
) -> std::result::Result<(), String> {
    // The source root: the context directory, or the other image mounted read-only-by-use.
    let ctx_file;
    let src_view;
    let src_root: BorrowedFd<'_> = match &plan.source {
        SourceRoot::Context(p) => {
            ctx_file =
                std::fs::File::open(p).map_err(|e| format!("open the build context: {e}"))?;
            ctx_file.as_fd()
        }
        SourceRoot::Layers(lower) => {
            src_view = overlay_view(lower.clone(), &scratch.join("src"))
                .map_err(|e| format!("mount the source image: {e}"))?;
            src_view.root()
        }
    };
    let mut sources = Vec::new();
    for item in &plan.items {
        sources.extend(expand_glob(src_root, item)?);
    }
    let count = sources.len() + plan.extra.len();
    let dest_is_dir = plan.dest.ends_with('/')
        || count > 1
        || inroot::open(dest_root, Path::new(&plan.dest), How::PathDir).is_ok();
    let dest = plan.dest.trim_end_matches('/');
    let dest = if dest.is_empty() { "/" } else { dest };
    let extract_opts = ExtractOptions {
        refuse_absolute: true,
        ..ExtractOptions::default()
    };
    let res_opts = ResourceOptions {
        owner: Some(plan.owner.unwrap_or((0, 0))),
        mode: plan.mode,
        ..ResourceOptions::default()
    };
    let excluder = berth_build::ignore::DockerIgnore::parse(&plan.exclude.join("\n"))
        .map_err(|e| format!("--exclude: {e}"))?;
    let base_dest = dest;
    for src in &sources {
        // `--parents`: the source's own directories are kept below the destination.
        let parent_dir;
        let dest: &str = if plan.parents {
            let (p, _) = split(src);
            parent_dir = if p == "." || p == "/" {
                base_dest.to_string()
            } else {
                format!(
                    "{}/{}",
                    base_dest.trim_end_matches('/'),
                    p.trim_start_matches('/')
                )
            };
            &parent_dir
        } else {
            base_dest
        };
        let dest_is_dir = dest_is_dir || plan.parents;
        if !excluder.is_empty() && excluder.is_excluded(split(src).1) {
            continue;
        }
        let real = inroot::resolve(src_root, src).map_err(|e| format!("{src}: {e}"))?;
        let fd =
            inroot::open(src_root, Path::new(&real), How::Path).map_err(|e| not_found(src, e))?;
        let st = rustix::fs::fstat(&fd).map_err(|e| format!("{src}: {e}"))?;
        let is_dir =
            rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Directory;
        if is_dir {
            let dir_dest;
            let dest: &str = if plan.parents {
                dir_dest = format!(
                    "{}/{}",
                    base_dest.trim_end_matches('/'),
                    src.trim_start_matches('/')
                );
                &dir_dest
            } else {
                dest
            };
            let dfd = mkdir(dest_root, dest)?;
            let sdir = inroot::open(src_root, Path::new(&real), How::Dir)
                .map_err(|e| not_found(src, e))?;
            let mut res_opts = res_opts.clone();
            if !excluder.is_empty() {
                let mut skipped = Vec::new();
                walk(sdir.as_fd(), "", usize::MAX, &excluder, &mut skipped)
                    .map_err(|e| format!("{src}: {e}"))?;
                res_opts.skip = skipped.into_iter().map(String::into_bytes).collect();
            }
            pipe(
                |w| {
                    berth_archive::write_resource(
                        Resource::Dir(sdir.as_fd()),
                        b".",
                        Path::new(src),
                        w,
                        &res_opts,
                    )
                },
                dfd.as_fd(),
                dest,
                &extract_opts,
            )?;
            continue;
        }
        let (parent, base) = split(&real);
        let pfd =
            inroot::open(src_root, Path::new(parent), How::Dir).map_err(|e| not_found(src, e))?;
        if plan.add {
            let file = inroot::open(src_root, Path::new(&real), How::File)
                .map_err(|e| not_found(src, e))?;
            if is_archive(std::fs::File::from(file)) {
                let dfd = mkdir(dest_root, dest)?;
                let file = inroot::open(src_root, Path::new(&real), How::File)
                    .map_err(|e| not_found(src, e))?;
                let plain =
                    berth_archive::decompress(std::io::BufReader::new(std::fs::File::from(file)))
                        .map_err(|e| format!("{src}: {e}"))?;
                let opts = ExtractOptions {
                    ownership: match plan.owner {
                        Some((uid, gid)) => Ownership::Fixed { uid, gid },
                        None => Ownership::FromArchive,
                    },
                    ..extract_opts.clone()
                };
                berth_archive::extract_resource(plain, dfd.as_fd(), Path::new(dest), &opts)
                    .map_err(|e| format!("unpacking {src} into {dest}: {e}"))?;
                continue;
            }
        }
        let (dir, name) = if dest_is_dir {
            (dest.to_string(), base.to_string())
        } else {
            let (p, n) = split(dest);
            (p.to_string(), n.to_string())
        };
        let dfd = mkdir(dest_root, &dir)?;
        pipe(
            |w| {
                berth_archive::write_resource(
                    Resource::Entry {
                        parent: pfd.as_fd(),
                        name: OsStr::new(base),
                    },
                    name.as_bytes(),
                    Path::new(src),
                    w,
                    &res_opts,
                )
            },
            dfd.as_fd(),
            &dir,
            &extract_opts,
        )?;
    }
    for f in &plan.extra {
        let (dir, file) = if dest_is_dir {
            (dest.to_string(), f.name.clone())
        } else {
            let (p, n) = split(dest);
            (p.to_string(), n.to_string())
        };
        let dfd = mkdir(dest_root, &dir)?;
        let (uid, gid) = plan.owner.unwrap_or((0, 0));
        let mode = plan.mode.unwrap_or(f.mode);
        pipe(
            |w| {
                let io = |e: std::io::Error| berth_archive::ArchiveError::Write { source: e };
                let (size, reader): (u64, Box<dyn Read>) = match &f.content {
                    ExtraContent::Bytes(b) => (b.len() as u64, Box::new(b.as_slice())),
                    ExtraContent::File(p) => {
                        let file = std::fs::File::open(p).map_err(io)?;
                        (file.metadata().map_err(io)?.len(), Box::new(file))
                    }
                };
                let mut t = tar::Builder::new(w);
                let mut h = tar::Header::new_gnu();
                h.set_size(size);
                h.set_mode(mode);
                h.set_uid(u64::from(uid));
                h.set_gid(u64::from(gid));
                h.set_mtime(
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_secs())
                        .unwrap_or(0),
                );
                h.set_entry_type(tar::EntryType::Regular);
                t.append_data(&mut h, &file, reader).map_err(io)?;
                t.finish().map_err(io)?;
                Ok(size)
            },
            dfd.as_fd(),
            &dir,
            &extract_opts,
        )
        .map_err(|e| format!("writing {dir}/{file}: {e}"))?;
    }
    Ok(())
}

fn not_found(src: &str, e: std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::NotFound {
        format!("{src}: no such file or directory")
    } else {
        format!("{src}: {e}")
    }
}

fn mkdir(root: BorrowedFd<'_>, dir: &str) -> std::result::Result<OwnedFd, String> {
    inroot::mkdir_all(root, Path::new(dir), 0o755, None).map_err(|e| format!("mkdir {dir}: {e}"))
}

/// `/a/b/c` into (`/a/b`, `c`).
fn split(p: &str) -> (&str, &str) {
    let p = p.trim_end_matches('/');
    match p.rsplit_once('/') {
        Some(("", n)) => ("/", n),
        Some((d, n)) => (d, n),
        None => (".", p),
    }
}

/// Whether a file is a tar archive (plain, gzip or zstd compressed), as `ADD` decides what to unpack.
fn is_archive(f: std::fs::File) -> bool {
    let Ok(mut plain) = berth_archive::decompress(std::io::BufReader::new(f)) else {
        return false;
    };
    let mut block = vec![0u8; 512];
    let mut got = 0;
    while got < block.len() {
        match plain.read(&mut block[got..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    got == 512 && (&block[257..262] == b"ustar")
}

/// Streams what `write` produces into an extraction at `dest` (one thread writes, this one extracts).
fn pipe(
    write: impl FnOnce(&mut std::io::PipeWriter) -> std::result::Result<u64, berth_archive::ArchiveError>
        + Send,
    dest: BorrowedFd<'_>,
    shown: &str,
    opts: &ExtractOptions,
) -> std::result::Result<(), String> {
    let (reader, mut writer) = std::io::pipe().map_err(|e| format!("pipe: {e}"))?;
    std::thread::scope(|s| {
        let t = s.spawn(move || {
            let r = write(&mut writer);
            drop(writer);
            r
        });
        let extracted = berth_archive::extract_resource(reader, dest, Path::new(shown), opts);
        let written = t
            .join()
            .map_err(|_| "the copying thread panicked".to_string())?;
        // The extraction's error is the cause when both fail (the writer then sees a closed pipe).
        extracted.map_err(|e| format!("copying into {shown}: {e}"))?;
        written
            .map(drop)
            .map_err(|e| format!("reading the source: {e}"))
    })
}
