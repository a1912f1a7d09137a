//! Reading a file through the merged view of a stack of lowerdirs, as overlayfs would show it.
//!
//! The lookup walks the path one component at a time. For each directory it keeps the list of
//! layers that contribute to it (top-most first): a layer contributes when the directory is a real
//! directory there, until a layer marks it opaque or a layer has a non-directory at that name.
//! A name is deleted by a whiteout (a 0/0 character device, or a `.wh.<name>` file if a layer kept
//! the OCI form); opaque directories are marked by the `trusted.overlay.opaque` (or
//! `user.overlay.opaque`) xattr or a `.wh..wh..opq` file. Symlinks are followed inside the image:
//! absolute targets restart at the image root and `..` never climbs above it, so no link can
//! escape to the host.

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::{io_err, SnapshotError};

const MAX_SYMLINKS: usize = 40;
const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";

/// What a name resolves to in the merged view.
enum Entry {
    /// A directory and the host paths of its contributing layer directories (top-most first).
    Dir(Vec<PathBuf>),
    /// A symlink and its target.
    Symlink(PathBuf),
    /// A regular file at this host path.
    File(PathBuf),
    /// Something else (device, fifo, socket).
    Other,
}

fn is_whiteout(meta: &fs::Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

fn is_opaque(dir: &Path) -> bool {
    let xattr_says = ["trusted.overlay.opaque", "user.overlay.opaque"]
        .iter()
        .any(|name| matches!(xattr::get(dir, name), Ok(Some(v)) if v == b"y"));
    xattr_says || dir.join(OPAQUE_MARKER).exists()
}

fn lstat(p: &Path) -> Result<Option<fs::Metadata>, SnapshotError> {
    match fs::symlink_metadata(p) {
        Ok(m) => Ok(Some(m)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        // A component that is not a directory in this layer simply has no child here.
        Err(e) if e.raw_os_error() == Some(nix::libc::ENOTDIR) => Ok(None),
        Err(e) => Err(io_err("reading metadata of", p)(e)),
    }
}

/// Looks `name` up in a directory given by its contributing layer paths.
fn lookup(parents: &[PathBuf], name: &str) -> Result<Option<Entry>, SnapshotError> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    for parent in parents {
        if lstat(&parent.join(format!("{WHITEOUT_PREFIX}{name}")))?.is_some() {
            break;
        }
        let p = parent.join(name);
        let Some(meta) = lstat(&p)? else {
            continue;
        };
        if is_whiteout(&meta) {
            break;
        }
        let ft = meta.file_type();
        if !ft.is_dir() {
            if !dirs.is_empty() {
                // A non-directory below a directory is hidden by it.
                break;
            }
            return Ok(Some(if ft.is_symlink() {
                let target = fs::read_link(&p).map_err(io_err("reading link", &p))?;
                Entry::Symlink(target)
            } else if ft.is_file() {
                Entry::File(p)
            } else {
                Entry::Other
            }));
        }
        let opaque = is_opaque(&p);
        dirs.push(p);
        if opaque {
            break;
        }
    }
    Ok(if dirs.is_empty() {
        None
    } else {
        Some(Entry::Dir(dirs))
    })
}

/// Resolves `path` in the merged view of `layers` and reads it when it is a regular file.
pub(super) fn read_file(
    layers: &[PathBuf],
    path: &str,
    max: u64,
) -> Result<Option<Vec<u8>>, SnapshotError> {
    let Some(host) = resolve(layers, path)? else {
        return Ok(None);
    };
    let f = fs::File::open(&host).map_err(io_err("opening", &host))?;
    let mut buf = Vec::new();
    f.take(max + 1)
        .read_to_end(&mut buf)
        .map_err(io_err("reading", &host))?;
    if buf.len() as u64 > max {
        return Err(SnapshotError::FileTooLarge {
            path: path.to_string(),
            max,
        });
    }
    Ok(Some(buf))
}

fn components(p: &Path) -> Vec<String> {
    p.to_string_lossy()
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .map(str::to_string)
        .collect()
}

/// The host path of the regular file `path` names, following symlinks inside the image.
fn resolve(layers: &[PathBuf], path: &str) -> Result<Option<PathBuf>, SnapshotError> {
    // Pending components, consumed from the end (so the vector holds them reversed).
    let mut pending: Vec<String> = components(Path::new(path));
    pending.reverse();
    // The directories walked so far, each with its contributing layers; the root is all layers.
    let mut stack: Vec<Vec<PathBuf>> = vec![layers.to_vec()];
    let mut links = 0;
    while let Some(name) = pending.pop() {
        if name == ".." {
            if stack.len() > 1 {
                stack.pop();
            }
            continue;
        }
        let Some(current) = stack.last() else {
            return Ok(None);
        };
        let entry = lookup(current, &name)?;
        let is_last = pending.is_empty();
        match entry {
            None => return Ok(None),
            Some(Entry::Dir(dirs)) => {
                if is_last {
                    return Ok(None);
                }
                stack.push(dirs);
            }
            Some(Entry::Symlink(target)) => {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Ok(None);
                }
                if target.is_absolute() {
                    stack.truncate(1);
                }
                let mut t = components(&target);
                t.reverse();
                pending.extend(t);
            }
            Some(Entry::File(p)) => {
                return Ok(if is_last { Some(p) } else { None });
            }
            Some(Entry::Other) => return Ok(None),
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn write(p: &Path, data: &str) {
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).expect("mkdir");
        }
        fs::write(p, data).expect("write");
    }

    #[test]
    fn layering_whiteouts_and_links() {
        let t = tempfile::tempdir().expect("tempdir");
        let lower = t.path().join("lower");
        let upper = t.path().join("upper");
        write(&lower.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n");
        write(&lower.join("etc/group"), "root:x:0:\n");
        write(&lower.join("opq/old"), "old");
        write(&lower.join("gone"), "x");
        write(&upper.join("etc/group"), "wheel:x:10:\n");
        write(&upper.join(".wh.gone"), "");
        write(&upper.join("opq/.wh..wh..opq"), "");
        write(&upper.join("opq/new"), "new");
        fs::create_dir_all(upper.join("links")).expect("mkdir");
        symlink("/etc/passwd", upper.join("links/abs")).expect("symlink");
        symlink("../../../../etc/group", upper.join("links/rel")).expect("symlink");
        symlink(
            "/../../../../../../etc/hostname",
            upper.join("links/escape"),
        )
        .expect("symlink");
        let layers = vec![upper, lower];
        let read = |p: &str| read_file(&layers, p, 1 << 20).expect("read");
        assert_eq!(
            read("/etc/passwd").as_deref(),
            Some(&b"root:x:0:0::/root:/bin/sh\n"[..])
        );
        assert_eq!(read("etc/group").as_deref(), Some(&b"wheel:x:10:\n"[..]));
        assert_eq!(read("/gone"), None);
        assert_eq!(read("/opq/old"), None);
        assert_eq!(read("/opq/new").as_deref(), Some(&b"new"[..]));
        assert_eq!(
            read("/links/abs").as_deref(),
            Some(&b"root:x:0:0::/root:/bin/sh\n"[..])
        );
        assert_eq!(read("/links/rel").as_deref(), Some(&b"wheel:x:10:\n"[..]));
        assert_eq!(read("/links/escape"), None);
        assert_eq!(read("/etc"), None);
        assert_eq!(read("/etc/passwd/x"), None);
        assert!(matches!(
            read_file(&layers, "/etc/passwd", 3),
            Err(SnapshotError::FileTooLarge { .. })
        ));
    }

    #[test]
    fn char_device_whiteout_hides_lower_file() {
        let t = tempfile::tempdir().expect("tempdir");
        let lower = t.path().join("lower");
        let upper = t.path().join("upper");
        write(&lower.join("etc/shadow"), "secret");
        fs::create_dir_all(upper.join("etc")).expect("mkdir");
        let made = nix::sys::stat::mknod(
            &upper.join("etc/shadow"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o000),
            0,
        );
        if made.is_err() {
            // Not root: the OCI-style whiteout covers the same rule.
            write(&upper.join("etc/.wh.shadow"), "");
        }
        let layers = vec![upper, lower];
        assert_eq!(read_file(&layers, "/etc/shadow", 100).expect("read"), None);
    }
}
