//! The init layer: one directory, shared by every container and never written once made, laid between an
//! image's layers and the container's own upper directory (Docker's `-init` layer). It holds the mount
//! points a container needs whatever its image holds: `/proc`, `/sys` and `/dev`, and the `/etc/hostname`,
//! `/etc/hosts` and `/etc/resolv.conf` the container's own files are bound on.
//!
//! Without it the container's init made them in the overlay at every start: `/etc` copied up and three files
//! created in the upper directory, then deleted with the container. Those were a third of the files a
//! `run --rm` made and removed on the data root's filesystem. `diff` and `commit` no longer see them either,
//! as with Docker.

use std::fs::{DirBuilder, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Its directory below the data root.
pub(crate) const DIR: &str = "init-layer";

/// Directories, then empty files, relative to the layer's root.
const DIRS: [&str; 4] = ["dev", "proc", "sys", "etc"];
const FILES: [&str; 3] = ["etc/hostname", "etc/hosts", "etc/resolv.conf"];

/// Makes what is missing of the layer at `<data_root>/init-layer` (directories 0755, empty files 0644,
/// owned by root) and returns its path. Each step is idempotent: a start that was interrupted is completed
/// by the next, and a complete layer is only looked at.
pub(crate) fn ensure(data_root: &Path) -> io::Result<PathBuf> {
    let root = data_root.join(DIR);
    let ctx = |what: &str, p: &Path, e: io::Error| {
        io::Error::new(e.kind(), format!("{what} {}: {e}", p.display()))
    };
    for d in std::iter::once("").chain(DIRS) {
        let p = root.join(d);
        match DirBuilder::new().mode(0o755).create(&p) {
            Ok(()) => std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755))
                .map_err(|e| ctx("set the mode of", &p, e))?,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && p.is_dir() => {}
            Err(e) => return Err(ctx("create the directory", &p, e)),
        }
    }
    for f in FILES {
        let p = root.join(f);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&p)
        {
            Ok(file) => file
                .set_permissions(std::fs::Permissions::from_mode(0o644))
                .map_err(|e| ctx("set the mode of", &p, e))?,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && p.is_file() => {}
            Err(e) => return Err(ctx("create the file", &p, e)),
        }
    }
    Ok(root)
}

/// The lower directories of a container's overlay: the init layer above the image's layers (top-most
/// first). An image without layers gets the init layer alone.
pub(crate) fn lower(init_layer: &Path, layers: Vec<PathBuf>) -> Vec<PathBuf> {
    let mut out = Vec::with_capacity(layers.len() + 1);
    out.push(init_layer.to_path_buf());
    out.extend(layers);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn the_layer_holds_the_mount_points_and_is_completed_when_partial() {
        let d = tempfile::tempdir().unwrap();
        let root = ensure(d.path()).unwrap();
        assert_eq!(root, d.path().join(DIR));
        for p in DIRS {
            let m = std::fs::metadata(root.join(p)).unwrap();
            assert!(m.is_dir(), "{p}");
            assert_eq!(m.mode() & 0o7777, 0o755, "{p}");
        }
        for p in FILES {
            let m = std::fs::metadata(root.join(p)).unwrap();
            assert!(m.is_file() && m.len() == 0, "{p}");
            assert_eq!(m.mode() & 0o7777, 0o644, "{p}");
        }
        // An interrupted start: the next one makes what is missing and keeps the rest.
        std::fs::remove_file(root.join("etc/hosts")).unwrap();
        std::fs::remove_dir(root.join("proc")).unwrap();
        let before = std::fs::metadata(root.join("etc/hostname")).unwrap().ino();
        ensure(d.path()).unwrap();
        assert!(root.join("etc/hosts").is_file() && root.join("proc").is_dir());
        assert_eq!(
            std::fs::metadata(root.join("etc/hostname")).unwrap().ino(),
            before
        );
    }

    #[test]
    fn something_else_in_the_way_is_an_error_not_a_layer() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join(DIR).join("etc/hosts")).unwrap();
        let e = ensure(d.path()).unwrap_err();
        assert!(e.to_string().contains("etc/hosts"), "{e}");
    }

    #[test]
    fn the_init_layer_is_the_top_most_lower() {
        let l = lower(
            Path::new("/d/init-layer"),
            vec![PathBuf::from("/l/2"), PathBuf::from("/l/1")],
        );
        assert_eq!(
            l,
            vec![
                PathBuf::from("/d/init-layer"),
                PathBuf::from("/l/2"),
                PathBuf::from("/l/1")
            ]
        );
        assert_eq!(lower(Path::new("/i"), vec![]), vec![PathBuf::from("/i")]);
    }
}
