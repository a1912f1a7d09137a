//! docker cp's rules, on paths only: Go's path helpers as docker's archive package uses them, what each side of a
//! copy is (`CopyInfo`), and where an archive goes and under which name (`PrepareArchiveCopy`).

use anyhow::{anyhow, Result};
use std::path::Path;

/// What is known about one side of a copy (Go's `archive.CopyInfo`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyInfo {
    pub path: String,
    pub exists: bool,
    pub is_dir: bool,
    pub rebase_name: String,
}

/// `CONTAINER:PATH` or a local path; a local path containing `:` is written `./a:b` or `/a:b` (docker's rule).
pub fn split_cp_arg(arg: &str) -> (Option<&str>, &str) {
    if arg.starts_with('/') {
        return (None, arg);
    }
    match arg.split_once(':') {
        Some((ctr, path)) if !ctr.starts_with('.') => (Some(ctr), path),
        _ => (None, arg),
    }
}

// ---- Go's path helpers, as docker's archive package uses them ----

/// Go's `filepath.Clean`.
pub fn clean(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            c => parts.push(c),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// Go's `filepath.Base`.
pub fn base(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let t = p.trim_end_matches('/');
    if t.is_empty() {
        return "/".into();
    }
    t.rsplit('/').next().unwrap_or(t).to_string()
}

/// Go's `filepath.Dir`.
pub fn dir(p: &str) -> String {
    match p.rfind('/') {
        Some(i) => clean(&p[..=i]),
        None => ".".into(),
    }
}

pub(super) fn join(a: &str, b: &str) -> String {
    clean(&format!("{a}/{b}"))
}

pub(super) fn has_trailing_sep(p: &str) -> bool {
    p.ends_with('/')
}

pub(super) fn specifies_current_dir(p: &str) -> bool {
    base(p) == "."
}

pub(super) fn asserts_directory(p: &str) -> bool {
    has_trailing_sep(p) || specifies_current_dir(p)
}

/// docker's `PreserveTrailingDotOrSeparator`.
pub fn preserve_trailing(cleaned: &str, original: &str) -> String {
    let mut out = cleaned.to_string();
    if !specifies_current_dir(&out) && specifies_current_dir(original) {
        if !has_trailing_sep(&out) {
            out.push('/');
        }
        out.push('.');
    }
    if !has_trailing_sep(&out) && has_trailing_sep(original) {
        out.push('/');
    }
    out
}

/// docker's `SplitPathDirEntry`.
pub fn split_path_dir_entry(p: &str) -> (String, String) {
    let mut cleaned = clean(p);
    if specifies_current_dir(p) {
        cleaned.push_str("/.");
    }
    (dir(&cleaned), base(&cleaned))
}

/// docker's `GetRebaseName`.
pub fn get_rebase_name(path: &str, resolved: &str) -> (String, String) {
    let mut resolved = resolved.to_string();
    if specifies_current_dir(path) && !specifies_current_dir(&resolved) {
        resolved.push_str("/.");
    }
    if has_trailing_sep(path) && !has_trailing_sep(&resolved) {
        resolved.push('/');
    }
    let rebase = if base(path) != base(&resolved) {
        base(path)
    } else {
        String::new()
    };
    (resolved, rebase)
}

/// Where an archive of `src` goes for `dst`, and how its top entry must be renamed (docker's
/// `PrepareArchiveCopy`): `(directory to extract into, Some((old name, new name)))`.
pub fn prepare_archive_copy(
    src: &CopyInfo,
    dst: &CopyInfo,
) -> Result<(String, Option<(String, String)>)> {
    let (dst_dir, dst_base) = split_path_dir_entry(&dst.path);
    let (_, mut src_base) = split_path_dir_entry(&src.path);
    if !src.rebase_name.is_empty() {
        src_base = src.rebase_name.clone();
    }
    if dst.exists && dst.is_dir {
        return Ok((dst.path.clone(), None));
    }
    if dst.exists && src.is_dir {
        return Err(anyhow!("cannot copy directory"));
    }
    if !dst.exists && !src.is_dir && asserts_directory(&dst.path) {
        return Err(anyhow!("no such directory"));
    }
    Ok((dst_dir, Some((src_base, dst_base))))
}

/// The archive's top name renamed: `/` stands for the empty prefix (entries `/bin` of a root archive).
pub(super) fn rebase_pair(old: &str, new: &str) -> (Vec<u8>, Vec<u8>) {
    let old = if old == "/" { "" } else { old };
    (old.as_bytes().to_vec(), new.as_bytes().to_vec())
}

/// An absolute local path that keeps a trailing `/` or `/.`.
pub(super) fn resolve_local_path(p: &str) -> Result<String> {
    let abs = if p.starts_with('/') {
        clean(p)
    } else {
        let cwd = std::env::current_dir()?;
        join(&cwd.to_string_lossy(), p)
    };
    Ok(preserve_trailing(&abs, p))
}

/// Go's error text for a failed file operation: `lstat /x: no such file or directory`.
pub(super) fn os_error(op: &str, path: &str, e: &std::io::Error) -> anyhow::Error {
    let text = match e.raw_os_error() {
        Some(n) => {
            let d = nix::errno::Errno::from_raw(n).desc();
            let mut c = d.chars();
            match c.next() {
                Some(f) => f.to_lowercase().collect::<String>() + c.as_str(),
                None => String::new(),
            }
        }
        None => e.to_string(),
    };
    anyhow!("{op} {path}: {text}")
}

/// docker's `ValidateOutputPath`.
pub(super) fn validate_output_path(path: &str) -> Result<()> {
    let d = dir(&clean(path));
    if d != "." && !d.is_empty() && !Path::new(&d).exists() {
        return Err(anyhow!(
            "invalid output path: directory {d:?} does not exist"
        ));
    }
    if let Ok(m) = std::fs::metadata(path) {
        use std::os::unix::fs::FileTypeExt;
        let ft = m.file_type();
        if !(ft.is_dir() || ft.is_file()) {
            let what = if ft.is_block_device() || ft.is_char_device() {
                "got a device"
            } else {
                "got an irregular file"
            };
            return Err(anyhow!(
                "invalid output path: {path:?} must be a directory or a regular file: {what}"
            ));
        }
    }
    Ok(())
}

/// docker's `CopyInfoDestinationPath` for a local destination: a final symlink is followed (up to 10 times);
/// a missing destination needs an existing parent directory.
pub(super) fn copy_info_destination_path(path: &str) -> Result<CopyInfo> {
    let mut path = path.to_string();
    let mut stat = std::fs::symlink_metadata(&path);
    let mut n = 0;
    while let Ok(m) = &stat {
        if !m.file_type().is_symlink() {
            break;
        }
        n += 1;
        if n > 10 {
            return Err(anyhow!("too many symlinks in {path}"));
        }
        let target = std::fs::read_link(&path).map_err(|e| os_error("readlink", &path, &e))?;
        let target = target.to_string_lossy().into_owned();
        path = if target.starts_with('/') {
            target
        } else {
            join(&split_path_dir_entry(&path).0, &target)
        };
        stat = std::fs::symlink_metadata(&path);
    }
    match stat {
        Ok(m) => Ok(CopyInfo {
            path,
            exists: true,
            is_dir: m.is_dir(),
            rebase_name: String::new(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let parent = split_path_dir_entry(&path).0;
            let pm = std::fs::metadata(&parent).map_err(|e| os_error("stat", &parent, &e))?;
            if !pm.is_dir() {
                return Err(anyhow!("not a directory"));
            }
            Ok(CopyInfo {
                path,
                ..CopyInfo::default()
            })
        }
        Err(e) => Err(os_error("lstat", &path, &e)),
    }
}

/// docker's `CopyInfoSourcePath`: symlinks before the last component are resolved (all of them with `-L`).
pub(super) fn copy_info_source_path(path: &str, follow_link: bool) -> Result<CopyInfo> {
    let canonical = |p: &str| -> Result<String> {
        std::fs::canonicalize(p)
            .map(|c| c.to_string_lossy().into_owned())
            .map_err(|e| os_error("lstat", p, &e))
    };
    let (resolved, rebase_name) = if follow_link {
        let r = canonical(path)?;
        get_rebase_name(path, &r)
    } else {
        let (d, b) = match path.rfind('/') {
            Some(i) => (&path[..=i], &path[i + 1..]),
            None => ("", path),
        };
        let rd = canonical(if d.is_empty() { "." } else { d })?;
        let resolved = if rd.ends_with('/') {
            format!("{rd}{b}")
        } else {
            format!("{rd}/{b}")
        };
        let rebase = if has_trailing_sep(path) && base(path) != base(&resolved) {
            base(path)
        } else {
            String::new()
        };
        (resolved, rebase)
    };
    let m = std::fs::symlink_metadata(&resolved).map_err(|e| os_error("lstat", path, &e))?;
    Ok(CopyInfo {
        path: resolved,
        exists: true,
        is_dir: m.is_dir(),
        rebase_name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_split_like_docker() {
        assert_eq!(split_cp_arg("web:/etc/hosts"), (Some("web"), "/etc/hosts"));
        assert_eq!(split_cp_arg("web:etc"), (Some("web"), "etc"));
        assert_eq!(split_cp_arg("/tmp/a:b"), (None, "/tmp/a:b"));
        assert_eq!(split_cp_arg("./a:b"), (None, "./a:b"));
        assert_eq!(split_cp_arg("file"), (None, "file"));
        assert_eq!(split_cp_arg("-"), (None, "-"));
    }

    #[test]
    fn go_path_helpers() {
        assert_eq!(clean("/a//b/./c/.."), "/a/b");
        assert_eq!(clean("a/../.."), "..");
        assert_eq!(clean(""), ".");
        assert_eq!(base("/a/b/"), "b");
        assert_eq!(base("/"), "/");
        assert_eq!(dir("/a/b"), "/a");
        assert_eq!(dir("/a/b/"), "/a/b");
        assert_eq!(dir("a"), ".");
        assert_eq!(preserve_trailing("/a/b", "a/b/."), "/a/b/.");
        assert_eq!(preserve_trailing("/a/b", "a/b/"), "/a/b/");
        assert_eq!(split_path_dir_entry("/etc/."), ("/etc".into(), ".".into()));
        assert_eq!(split_path_dir_entry("/etc/"), ("/".into(), "etc".into()));
        assert_eq!(split_path_dir_entry("/"), ("/".into(), "/".into()));
        assert_eq!(
            get_rebase_name("/a/link/", "/a/target"),
            ("/a/target/".into(), "link".into())
        );
        assert_eq!(
            get_rebase_name("/a/x", "/b/x"),
            ("/b/x".into(), String::new())
        );
    }

    fn info(path: &str, exists: bool, is_dir: bool) -> CopyInfo {
        CopyInfo {
            path: path.into(),
            exists,
            is_dir,
            rebase_name: String::new(),
        }
    }

    #[test]
    fn destinations_decide_like_prepare_archive_copy() {
        let file = info("/src/f", true, false);
        let dir = info("/src/d", true, true);
        let content = info("/src/d/.", true, true);
        // Into an existing directory: unchanged names.
        assert_eq!(
            prepare_archive_copy(&file, &info("/dst", true, true)).unwrap(),
            ("/dst".into(), None)
        );
        // Onto an existing file, or a new name: renamed.
        assert_eq!(
            prepare_archive_copy(&file, &info("/dst/g", true, false)).unwrap(),
            ("/dst".into(), Some(("f".into(), "g".into())))
        );
        assert_eq!(
            prepare_archive_copy(&dir, &info("/dst/new", false, false)).unwrap(),
            ("/dst".into(), Some(("d".into(), "new".into())))
        );
        assert_eq!(
            prepare_archive_copy(&content, &info("/dst/new", false, false)).unwrap(),
            ("/dst".into(), Some((".".into(), "new".into())))
        );
        assert_eq!(
            prepare_archive_copy(&dir, &info("/dst/f", true, false))
                .unwrap_err()
                .to_string(),
            "cannot copy directory"
        );
        assert_eq!(
            prepare_archive_copy(&file, &info("/dst/nodir/", false, false))
                .unwrap_err()
                .to_string(),
            "no such directory"
        );
    }
}
