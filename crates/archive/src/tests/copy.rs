//! `write_resource` names entries as Docker's archive endpoint does; `extract_resource` is all or nothing and
//! never leaves its destination.

use std::fs;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};

use rustix::fs::{Mode, OFlags, CWD};
use tar::EntryType;

use super::*;
use crate::{
    extract_resource, write_resource, ExtractOptions, Ownership, Resource, ResourceOptions,
};

fn open_dir(p: &Path) -> OwnedFd {
    rustix::fs::openat(
        CWD,
        p,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .expect("open dir")
}

/// Entry names, types and (for symlinks and hard links) targets, in order.
fn entries(bytes: &[u8]) -> Vec<String> {
    let mut a = tar::Archive::new(bytes);
    a.entries()
        .expect("entries")
        .map(|e| {
            let e = e.expect("entry");
            let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
            match e.header().entry_type() {
                EntryType::Symlink | EntryType::Link => format!(
                    "{name} -> {}",
                    String::from_utf8_lossy(&e.link_name_bytes().expect("link"))
                ),
                _ => name,
            }
        })
        .collect()
}

fn tree() -> tempfile::TempDir {
    let d = tempfile::tempdir().expect("tempdir");
    let etc = d.path().join("etc");
    fs::create_dir_all(etc.join("sub")).expect("mkdir");
    fs::write(etc.join("passwd"), "root").expect("write");
    fs::write(etc.join("sub/x"), "x").expect("write");
    fs::hard_link(etc.join("passwd"), etc.join("passwd2")).expect("link");
    symlink("passwd", etc.join("link")).expect("symlink");
    d
}

fn write(resource: Resource<'_>, name: &str, opts: &ResourceOptions) -> Vec<u8> {
    let mut out = Vec::new();
    write_resource(resource, name.as_bytes(), Path::new("/x"), &mut out, opts).expect("write");
    out
}

#[test]
fn resources_are_named_like_dockers_archive_endpoint() {
    let d = tree();
    let parent = open_dir(d.path());
    let etc = open_dir(&d.path().join("etc"));
    let opts = ResourceOptions::default();
    let dir = |name: &str| write(Resource::Dir(etc.as_fd()), name, &opts);
    assert_eq!(
        entries(&dir("etc")),
        [
            "etc/",
            "etc/link -> passwd",
            "etc/passwd",
            "etc/passwd2 -> etc/passwd",
            "etc/sub/",
            "etc/sub/x"
        ]
    );
    // `/etc/.`: the content, each name starting with `./` (clients rebase `.` by string replacement).
    assert_eq!(
        entries(&dir("."))[..3],
        ["./", "./link -> passwd", "./passwd"]
    );
    // The root: `/` and `/name`.
    assert_eq!(entries(&dir("/"))[..2], ["/", "/link -> passwd"]);
    let one = |name: &str, as_: &str| {
        write(
            Resource::Entry {
                parent: etc.as_fd(),
                name: OsStr::new(name),
            },
            as_,
            &opts,
        )
    };
    assert_eq!(entries(&one("passwd", "hosts")), ["hosts"]);
    assert_eq!(entries(&one("link", "link")), ["link -> passwd"]);
    let via_parent = write(
        Resource::Entry {
            parent: parent.as_fd(),
            name: OsStr::new("etc"),
        },
        "etc",
        &opts,
    );
    assert_eq!(entries(&via_parent), entries(&dir("etc")));
    // Long names go into PAX records, byte for byte.
    let long = "d".repeat(150);
    assert_eq!(entries(&dir(&long))[0], format!("{long}/"));
    // A fixed owner replaces the files' own.
    let owned = write(
        Resource::Dir(etc.as_fd()),
        "etc",
        &ResourceOptions {
            owner: Some((7, 8)),
            ..ResourceOptions::default()
        },
    );
    let mut a = tar::Archive::new(owned.as_slice());
    for e in a.entries().expect("entries") {
        let h = e.expect("entry").header().clone();
        assert_eq!((h.uid().expect("uid"), h.gid().expect("gid")), (7, 8));
    }
}

#[test]
fn pseudo_file_systems_are_not_descended_into() {
    let proc_root = open_dir(Path::new("/proc/self"));
    let out = write(
        Resource::Dir(proc_root.as_fd()),
        "self",
        &ResourceOptions {
            skip_pseudo_fs: true,
            ..ResourceOptions::default()
        },
    );
    assert_eq!(entries(&out), ["self/"]);
    // Named directories keep only their own entry.
    let d = tree();
    let etc = open_dir(&d.path().join("etc"));
    let out = write(
        Resource::Dir(etc.as_fd()),
        "etc",
        &ResourceOptions {
            skip_content: vec![b"sub".to_vec()],
            ..ResourceOptions::default()
        },
    );
    assert!(entries(&out).contains(&"etc/sub/".to_string()));
    assert!(!entries(&out).contains(&"etc/sub/x".to_string()));
}

fn extract(
    t: &TarBuf,
    dest: &Path,
    opts: &ExtractOptions,
) -> Result<crate::ApplyStats, ArchiveError> {
    let fd = open_dir(dest);
    extract_resource(t.finish().as_slice(), fd.as_fd(), Path::new("/dest"), opts)
}

fn uploads() -> ExtractOptions {
    ExtractOptions {
        no_overwrite_dir_non_dir: true,
        refuse_absolute: true,
        ..ExtractOptions::default()
    }
}

/// A destination with content that must survive every failed extraction.
fn dest() -> (tempfile::TempDir, std::path::PathBuf) {
    let d = tempfile::tempdir().expect("tempdir");
    let dest = d.path().join("dest");
    fs::create_dir_all(dest.join("keep")).expect("mkdir");
    fs::write(dest.join("keep/old"), "old").expect("write");
    fs::write(dest.join("file"), "file").expect("write");
    fs::create_dir(d.path().join("outside")).expect("mkdir");
    symlink(d.path().join("outside"), dest.join("out")).expect("symlink");
    (d, dest)
}

#[test]
fn extraction_merges_directories_and_replaces_files() {
    let (_d, dest) = dest();
    let mut t = TarBuf::new();
    t.dir("keep")
        .file("keep/new", b"new")
        .file("file", b"replaced");
    t.entry(
        b"tree/deep/f",
        EntryType::Regular,
        E {
            mode: 0o600,
            uid: 1234,
            gid: 5678,
            data: b"deep",
            ..E::default()
        },
    );
    let stats = extract(&t, &dest, &uploads()).expect("extract");
    assert_eq!(stats.entries, 4);
    assert_eq!(fs::read_to_string(dest.join("keep/old")).unwrap(), "old");
    assert_eq!(fs::read_to_string(dest.join("keep/new")).unwrap(), "new");
    assert_eq!(fs::read_to_string(dest.join("file")).unwrap(), "replaced");
    let m = lmeta(&dest.join("tree/deep/f"));
    assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (1234, 5678, 0o600));
    // The existing directory took the archive's mode and time; the staging directory is gone.
    let keep = lmeta(&dest.join("keep"));
    assert_eq!((keep.mode() & 0o7777, keep.mtime()), (0o755, MTIME as i64));
    let names: Vec<_> = fs::read_dir(&dest)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with(".berth"))
        .collect();
    assert!(names.is_empty(), "{names:?}");
}

#[test]
fn implicit_parents_leave_existing_directories_alone_and_a_root_entry_applies() {
    let (_d, dest) = dest();
    fs::set_permissions(dest.join("keep"), fs::Permissions::from_mode(0o1777)).unwrap();
    let mut t = TarBuf::new();
    t.file("keep/x", b"x");
    extract(&t, &dest, &uploads()).expect("extract");
    assert_eq!(lmeta(&dest.join("keep")).mode() & 0o7777, 0o1777);
    let mut t = TarBuf::new();
    t.entry(
        b"./",
        EntryType::Directory,
        E {
            mode: 0o750,
            ..E::default()
        },
    )
    .file("./y", b"y");
    extract(&t, &dest, &uploads()).expect("extract");
    assert_eq!(lmeta(&dest).mode() & 0o7777, 0o750);
    assert_eq!(fs::read_to_string(dest.join("y")).unwrap(), "y");
}

#[test]
fn failed_extractions_change_nothing() {
    let cases: Vec<(&str, TarBuf, bool)> = vec![
        (
            "truncated",
            {
                let mut t = TarBuf::new();
                t.file("keep/new", b"new").file("a", b"a");
                t
            },
            true,
        ),
        (
            "dotdot",
            {
                let mut t = TarBuf::new();
                t.file("keep/new", b"new").file("../evil", b"x");
                t
            },
            false,
        ),
        (
            "absolute",
            {
                let mut t = TarBuf::new();
                t.file("keep/new", b"new").file("/etc/evil", b"x");
                t
            },
            false,
        ),
        (
            "through a symlink",
            {
                let mut t = TarBuf::new();
                t.file("keep/new", b"new")
                    .symlink("l", "/")
                    .file("l/evil", b"x");
                t
            },
            false,
        ),
        (
            "device",
            {
                let mut t = TarBuf::new();
                t.file("keep/new", b"new").entry(
                    b"dev",
                    EntryType::Char,
                    E {
                        dev: (1, 3),
                        ..E::default()
                    },
                );
                t
            },
            false,
        ),
        (
            "file over a directory",
            {
                let mut t = TarBuf::new();
                t.file("new", b"new").file("keep", b"x");
                t
            },
            false,
        ),
        (
            "directory over a file",
            {
                let mut t = TarBuf::new();
                t.file("new", b"new").dir("file");
                t
            },
            false,
        ),
        (
            "hard link out",
            {
                let mut t = TarBuf::new();
                t.file("new", b"new").hardlink("h", "../outside/x");
                t
            },
            false,
        ),
    ];
    for (what, t, truncate) in cases {
        let (d, dest) = dest();
        let before = snapshot(&dest);
        let fd = open_dir(&dest);
        let bytes = if truncate {
            let b = t.unterminated();
            b[..b.len() - 300].to_vec()
        } else {
            t.finish()
        };
        let err = extract_resource(bytes.as_slice(), fd.as_fd(), Path::new("/dest"), &uploads());
        assert!(err.is_err(), "{what}: accepted");
        assert_eq!(snapshot(&dest), before, "{what}: destination changed");
        assert!(
            is_empty_dir(&d.path().join("outside")),
            "{what}: wrote outside"
        );
    }
}

#[test]
fn conflicts_are_reported_like_docker() {
    let (_d, dest) = dest();
    let mut t = TarBuf::new();
    t.file("keep", b"x");
    let err = extract(&t, &dest, &uploads()).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"cannot overwrite directory "/dest/keep" with non-directory "/dest""#
    );
    // Without the check the directory is replaced.
    let opts = ExtractOptions {
        no_overwrite_dir_non_dir: false,
        ..uploads()
    };
    extract(&t, &dest, &opts).expect("extract");
    assert_eq!(fs::read_to_string(dest.join("keep")).unwrap(), "x");
}

#[test]
fn an_existing_symlink_is_replaced_not_followed() {
    let (d, dest) = dest();
    let mut t = TarBuf::new();
    t.file("out", b"now a file");
    extract(&t, &dest, &uploads()).expect("extract");
    assert!(lmeta(&dest.join("out")).is_file());
    assert!(is_empty_dir(&d.path().join("outside")));
}

#[test]
fn rebase_and_ownership_options() {
    let (_d, dest) = dest();
    let mut t = TarBuf::new();
    t.dir("etc")
        .file("etc/passwd", b"p")
        .hardlink("etc/p2", "etc/passwd");
    let opts = ExtractOptions {
        rebase: Some((b"etc".to_vec(), b"conf".to_vec())),
        ownership: Ownership::Fixed { uid: 42, gid: 43 },
        ..uploads()
    };
    extract(&t, &dest, &opts).expect("extract");
    let m = lmeta(&dest.join("conf/p2"));
    assert_eq!((m.uid(), m.gid(), m.nlink()), (42, 43, 2));
    // An empty old name prefixes (the root `/` of Docker's archives).
    let mut t = TarBuf::new();
    t.file("/bin/sh", b"sh");
    let opts = ExtractOptions {
        rebase: Some((Vec::new(), b"rootcopy".to_vec())),
        ..uploads()
    };
    extract(&t, &dest, &opts).expect("extract");
    assert_eq!(
        fs::read_to_string(dest.join("rootcopy/bin/sh")).unwrap(),
        "sh"
    );
    // Devices are refused, or skipped when asked.
    let mut devs = TarBuf::new();
    devs.file("before", b"1")
        .entry(
            b"null",
            EntryType::Char,
            E {
                dev: (1, 3),
                ..E::default()
            },
        )
        .file("after", b"2");
    assert!(extract(&devs, &dest, &uploads()).is_err());
    let opts = ExtractOptions {
        skip_devices: true,
        ..uploads()
    };
    extract(&devs, &dest, &opts).expect("extract");
    assert!(dest.join("after").exists() && !dest.join("null").exists());
    // Absolute names are taken relative when allowed.
    let opts = ExtractOptions::default();
    extract(&t, &dest, &opts).expect("extract");
    assert_eq!(fs::read_to_string(dest.join("bin/sh")).unwrap(), "sh");
}

#[test]
fn a_round_trip_keeps_the_tree() {
    let d = tree();
    let etc = open_dir(&d.path().join("etc"));
    let bytes = write(
        Resource::Dir(etc.as_fd()),
        "etc",
        &ResourceOptions::default(),
    );
    let out = tempfile::tempdir().unwrap();
    let fd = open_dir(out.path());
    extract_resource(bytes.as_slice(), fd.as_fd(), out.path(), &uploads()).expect("extract");
    assert_eq!(
        snapshot(&out.path().join("etc")),
        snapshot(&d.path().join("etc"))
    );
}

#[test]
fn container_diffs_leave_out_empty_runtime_placeholders() {
    let d = tempfile::tempdir().unwrap();
    let upper = d.path();
    for dir in ["proc", "sys", "dev/pts", "etc"] {
        fs::create_dir_all(upper.join(dir)).unwrap();
    }
    fs::write(upper.join("etc/hosts"), "").unwrap();
    fs::write(upper.join("etc/hostname"), "").unwrap();
    // Real content at a placeholder's path is a change.
    fs::write(upper.join("etc/resolv.conf"), "nameserver 1.1.1.1\n").unwrap();
    fs::write(upper.join("f"), "changed").unwrap();
    let mut out = Vec::new();
    crate::write_container_diff(upper, &mut out).expect("diff");
    assert_eq!(
        entries(&out),
        ["dev/", "dev/pts/", "etc/", "etc/resolv.conf", "f"]
    );
}

#[test]
fn entries_below_a_mount_point_are_copied_across() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipping: needs root");
        return;
    }
    let (_d, dest) = dest();
    let vol = dest.join("vol");
    fs::create_dir(&vol).unwrap();
    nix::mount::mount(
        Some("tmpfs"),
        &vol,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .expect("mount tmpfs");
    let mut t = TarBuf::new();
    t.entry(
        b"vol/f",
        EntryType::Regular,
        E {
            mode: 0o640,
            uid: 7,
            gid: 8,
            data: b"data",
            ..E::default()
        },
    )
    .dir("vol/sub")
    .file("vol/sub/g", b"g")
    .symlink("vol/l", "f");
    let r = extract(&t, &dest, &uploads());
    let got = (
        fs::read_to_string(vol.join("f")),
        fs::read_to_string(vol.join("sub/g")),
        fs::read_link(vol.join("l")),
        fs::symlink_metadata(vol.join("f")),
    );
    nix::mount::umount2(&vol, nix::mount::MntFlags::MNT_DETACH).expect("unmount");
    r.expect("extract");
    assert_eq!(got.0.unwrap(), "data");
    assert_eq!(got.1.unwrap(), "g");
    assert_eq!(got.2.unwrap(), Path::new("f"));
    let m = got.3.unwrap();
    assert_eq!(
        (m.uid(), m.gid(), m.mode() & 0o7777, m.mtime()),
        (7, 8, 0o640, MTIME as i64)
    );
}
