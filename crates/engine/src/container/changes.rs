//! `diff` (what a container changed against its image) and `export` (its whole filesystem as a tar).

use super::Status;
use crate::error::{EngineError, Result};
use crate::Engine;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// One change, as Docker reports it: 0 modified, 1 added, 2 deleted.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Change {
    pub path: String,
    pub kind: u8,
}

/// Compare an overlay upper directory with the image's layers (top-most first).
pub fn changes(upper: &Path, lower: &[PathBuf]) -> Vec<Change> {
    let mut out = Vec::new();
    walk(upper, upper, lower, &mut out);
    out.sort();
    out
}

fn in_lower(lower: &[PathBuf], rel: &Path) -> bool {
    for l in lower {
        match std::fs::symlink_metadata(l.join(rel)) {
            // A whiteout in a higher layer hides what is below.
            Ok(m) if m.file_type().is_char_device() && m.rdev() == 0 => return false,
            Ok(_) => return true,
            Err(_) => {}
        }
    }
    false
}

fn walk(root: &Path, dir: &Path, lower: &[PathBuf], out: &mut Vec<Change>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        let Ok(rel) = p.strip_prefix(root) else {
            continue;
        };
        let Ok(m) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        let path = format!("/{}", rel.display());
        if m.file_type().is_char_device() && m.rdev() == 0 {
            out.push(Change { path, kind: 2 });
            continue;
        }
        let existed = in_lower(lower, rel);
        out.push(Change {
            path,
            kind: if existed { 0 } else { 1 },
        });
        if m.is_dir() {
            walk(root, &p, lower, out);
        }
    }
}

impl Engine {
    pub async fn diff(&self, name_or_id: &str) -> Result<Vec<Change>> {
        let h = self.lookup(name_or_id).await?;
        self.dir_made(&h).await?;
        let rec = h.record();
        let upper = self.paths(&rec.id).dir.join("upper");
        let image_id = rec.image_id.clone();
        let layers = self
            .images_blocking(move |s| s.layer_dirs(&image_id))
            .await?;
        let lower = super::init_layer::lower(&self.inner.init_layer, layers);
        tokio::task::spawn_blocking(move || changes(&upper, &lower))
            .await
            .map_err(EngineError::join)
    }

    /// Write the container's filesystem (image plus changes) as a tar. A stopped container's root is mounted
    /// for the time of the export.
    pub async fn export(
        &self,
        name_or_id: &str,
        writer: impl Write + Send + 'static,
    ) -> Result<()> {
        let h = self.lookup(name_or_id).await?;
        self.dir_made(&h).await?;
        let rec = h.record();
        let dir = self.paths(&rec.id).dir;
        let rootfs = dir.join("rootfs");
        let running = matches!(rec.state.status, Status::Running | Status::Paused);
        let image_id = rec.image_id.clone();
        let layers = self
            .images_blocking(move |s| s.layer_dirs(&image_id))
            .await?;
        let lower = super::init_layer::lower(&self.inner.init_layer, layers);
        tokio::task::spawn_blocking(move || -> Result<()> {
            let mounted_here = !running && !berth_sys::mount::is_mounted(&rootfs);
            if mounted_here {
                let ov = berth_sys::mount::Overlay {
                    lower,
                    upper: dir.join("upper"),
                    work: dir.join("work"),
                    volatile: false,
                };
                berth_sys::mount::mount_overlay(&ov, &rootfs)
                    .map_err(|e| EngineError::Internal(e.to_string()))?;
            }
            let r = berth_archive::write_dir_tar(&rootfs, writer)
                .map_err(|e| EngineError::Internal(format!("export: {e}")));
            if mounted_here {
                let _ = berth_sys::mount::unmount(&rootfs);
            }
            r.map(|_| ())
        })
        .await
        .map_err(EngineError::join)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_are_classified_like_docker_diff() {
        let d = tempfile::tempdir().unwrap();
        let (upper, lower) = (d.path().join("u"), d.path().join("l"));
        std::fs::create_dir_all(lower.join("etc")).unwrap();
        std::fs::write(lower.join("etc/passwd"), "x").unwrap();
        std::fs::write(lower.join("gone"), "x").unwrap();
        std::fs::create_dir_all(upper.join("etc")).unwrap();
        std::fs::write(upper.join("etc/passwd"), "y").unwrap();
        std::fs::write(upper.join("new"), "n").unwrap();
        nix::sys::stat::mknod(
            &upper.join("gone"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::empty(),
            0,
        )
        .unwrap();
        let c = changes(&upper, &[lower]);
        let got: Vec<(String, u8)> = c.into_iter().map(|c| (c.path, c.kind)).collect();
        assert_eq!(
            got,
            vec![
                ("/etc".into(), 0),
                ("/etc/passwd".into(), 0),
                ("/gone".into(), 2),
                ("/new".into(), 1)
            ]
        );
    }
}
