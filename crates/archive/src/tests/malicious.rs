//! Hostile archives: every one must fail (or stay inside `dest`) without touching anything outside.

use std::fs;
use std::os::unix::fs::MetadataExt;

use tar::EntryType;

use super::*;
use crate::LimitKind;

/// A destination inside a sandbox directory, with a sibling `outside` directory that must stay empty.
struct Sandbox {
    _root: tempfile::TempDir,
    dest: std::path::PathBuf,
    outside: std::path::PathBuf,
}

fn sandbox() -> Sandbox {
    let root = tempfile::tempdir().expect("tempdir");
    let dest = root.path().join("a/b/c/dest");
    let outside = root.path().join("outside");
    fs::create_dir_all(&dest).expect("mkdir dest");
    fs::create_dir_all(&outside).expect("mkdir outside");
    Sandbox {
        dest,
        outside,
        _root: root,
    }
}

impl Sandbox {
    fn apply(&self, t: &TarBuf) -> Result<crate::ApplyStats, ArchiveError> {
        apply_to(&t.finish(), &self.dest)
    }

    /// Nothing was created next to or above `dest`.
    fn untouched(&self) {
        assert!(is_empty_dir(&self.outside), "something was written outside");
        let parent = self.dest.parent().expect("parent");
        let names: Vec<_> = fs::read_dir(parent)
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("dest")]);
    }
}

#[test]
fn dotdot_names_are_refused() {
    for name in [
        &b"../evil"[..],
        b"/abs/../../x",
        b"./../../../../outside/x",
        b"a/../../evil",
        b"..",
        b"ok/../../../x",
    ] {
        let sb = sandbox();
        let mut t = TarBuf::new();
        t.file("fine", b"1").entry(
            name,
            EntryType::Regular,
            E {
                data: b"evil",
                ..E::default()
            },
        );
        let err = sb.apply(&t).expect_err("must fail");
        assert!(
            matches!(&err, ArchiveError::UnsafePath { path } if path.as_bytes() == name),
            "{}: {err:?}",
            String::from_utf8_lossy(name)
        );
        sb.untouched();
    }
}

#[test]
fn dotdot_in_long_pax_name_is_refused() {
    let sb = sandbox();
    let name = format!("{}/{}", "../".repeat(40), "x".repeat(80));
    let mut t = TarBuf::new();
    t.file(&name, b"evil");
    assert!(matches!(sb.apply(&t), Err(ArchiveError::UnsafePath { .. })));
    sb.untouched();
}

#[test]
fn absolute_names_stay_inside() {
    let sb = sandbox();
    let mut t = TarBuf::new();
    t.file("/etc/x", b"inside").file("//b/./c/../d", b"d");
    sb.apply(&t).expect("apply");
    assert_eq!(fs::read(sb.dest.join("etc/x")).expect("x"), b"inside");
    assert_eq!(fs::read(sb.dest.join("b/d")).expect("d"), b"d");
    sb.untouched();
}

#[test]
fn symlink_parent_is_refused() {
    let sb = sandbox();
    let mut t = TarBuf::new();
    t.symlink("link", sb.outside.to_str().expect("utf8"))
        .file("link/file", b"escaped");
    let err = sb.apply(&t).expect_err("must fail");
    assert!(matches!(err, ArchiveError::SymlinkInPath { .. }), "{err:?}");
    sb.untouched();
}

#[test]
fn relative_symlink_escape_is_refused() {
    let sb = sandbox();
    let mut t = TarBuf::new();
    t.symlink("up", "../../../..")
        .file("up/outside/file", b"escaped");
    let err = sb.apply(&t).expect_err("must fail");
    assert!(matches!(err, ArchiveError::SymlinkInPath { .. }), "{err:?}");
    sb.untouched();
}

#[test]
fn symlink_parent_of_directory_and_whiteout_is_refused() {
    for second in ["link/sub/", "link/.wh.x", "link/.wh..wh..opq"] {
        let sb = sandbox();
        let mut t = TarBuf::new();
        t.symlink("link", sb.outside.to_str().expect("utf8"));
        if second.ends_with('/') {
            t.dir(second);
        } else {
            t.file(second, b"");
        }
        let err = sb.apply(&t).expect_err("must fail");
        assert!(
            matches!(err, ArchiveError::SymlinkInPath { .. }),
            "{second}: {err:?}"
        );
        sb.untouched();
        assert_eq!(xattr_of(&sb.outside, "trusted.overlay.opaque"), None);
    }
}

#[test]
fn symlink_in_hard_link_target_path_is_refused() {
    let sb = sandbox();
    fs::write(sb.outside.join("secret"), b"s").expect("write");
    let mut t = TarBuf::new();
    t.symlink("link", sb.outside.to_str().expect("utf8"))
        .hardlink("stolen", "link/secret");
    let err = sb.apply(&t).expect_err("must fail");
    assert!(matches!(err, ArchiveError::SymlinkInPath { .. }), "{err:?}");
    assert!(!sb.dest.join("stolen").exists());
    assert_eq!(lmeta(&sb.outside.join("secret")).nlink(), 1);
}

#[test]
fn hard_links_out_are_refused() {
    type Check = fn(&ArchiveError) -> bool;
    let cases: [(&str, Check); 4] = [
        // absolute: means dest/etc/passwd, which does not exist
        ("/etc/passwd", |e| {
            matches!(e, ArchiveError::BadHardLink { .. })
        }),
        ("../../../../outside/secret", |e| {
            matches!(e, ArchiveError::UnsafePath { .. })
        }),
        ("missing", |e| matches!(e, ArchiveError::BadHardLink { .. })),
        ("/", |e| matches!(e, ArchiveError::BadHardLink { .. })),
    ];
    for (target, check) in cases {
        let sb = sandbox();
        fs::write(sb.outside.join("secret"), b"s").expect("write");
        let mut t = TarBuf::new();
        t.hardlink("stolen", target);
        let err = sb.apply(&t).expect_err("must fail");
        assert!(check(&err), "{target}: {err:?}");
        assert!(!sb.dest.join("stolen").exists());
        assert_eq!(lmeta(&sb.outside.join("secret")).nlink(), 1);
    }
}

#[test]
fn hard_link_to_symlink_or_directory_or_itself_is_refused() {
    let mut to_symlink = TarBuf::new();
    to_symlink
        .symlink("sym", "/etc/shadow")
        .hardlink("other", "sym");
    let mut to_dir = TarBuf::new();
    to_dir.dir("dir/").hardlink("other", "dir");
    let mut to_itself = TarBuf::new();
    to_itself.file("self", b"s").hardlink("self", "./self");
    for (what, t) in [
        ("symlink", to_symlink),
        ("dir", to_dir),
        ("itself", to_itself),
    ] {
        let sb = sandbox();
        let err = sb.apply(&t).expect_err("must fail");
        assert!(
            matches!(err, ArchiveError::BadHardLink { .. }),
            "{what}: {err:?}"
        );
        assert!(!sb.dest.join("other").exists(), "{what}");
    }
}

#[test]
fn device_nodes_are_refused() {
    for kind in [EntryType::Char, EntryType::Block] {
        for plain in [false, true] {
            let sb = sandbox();
            let mut t = TarBuf::new();
            t.entry(
                b"dev/sda",
                kind,
                E {
                    dev: (8, 0),
                    ..E::default()
                },
            );
            let err = if plain {
                crate::extract_plain(&t.finish()[..], &sb.dest, &Limits::default())
            } else {
                sb.apply(&t)
            }
            .expect_err("must fail");
            assert!(matches!(err, ArchiveError::DeviceNode { .. }), "{err:?}");
            assert!(!sb.dest.join("dev/sda").exists());
        }
    }
}

#[test]
fn whiteouts_cannot_target_the_directory_or_its_parent() {
    for name in ["a/.wh.", "a/.wh..", "a/.wh..."] {
        let sb = sandbox();
        fs::create_dir_all(sb.dest.join("a/keep")).expect("mkdir");
        let mut t = TarBuf::new();
        t.file(name, b"");
        let err = sb.apply(&t).expect_err("must fail");
        assert!(
            matches!(err, ArchiveError::UnsafePath { .. }),
            "{name}: {err:?}"
        );
        assert!(sb.dest.join("a/keep").is_dir(), "{name}");
    }
}

#[test]
fn root_cannot_be_replaced_by_a_file() {
    let sb = sandbox();
    let mut t = TarBuf::new();
    t.file("./", b"x");
    // A regular entry named "./" is a directory only in v7 archives; as a GNU regular file it is refused.
    let err = sb.apply(&t).expect_err("must fail");
    assert!(matches!(err, ArchiveError::InvalidEntry { .. }), "{err:?}");
    assert!(sb.dest.is_dir());
}

#[test]
fn gzip_bomb_stops_at_the_size_limit() {
    let dest = tempfile::tempdir().expect("tempdir");
    let zeros = vec![0u8; 4 << 20];
    let mut t = TarBuf::new();
    t.file("small", b"ok").file("zeros", &zeros);
    let blob = gzip(&t.finish());
    assert!(blob.len() < 64 << 10, "the bomb compresses well");
    let limits = Limits {
        max_total_bytes: 1 << 20,
        max_entries: 100,
    };
    let reader = crate::decompress(std::io::BufReader::new(&blob[..])).expect("decompress");
    let err = crate::apply_layer(reader, dest.path(), &limits).expect_err("must fail");
    assert!(
        matches!(
            err,
            ArchiveError::TooLarge {
                what: LimitKind::TotalBytes,
                max
            } if max == 1 << 20
        ),
        "{err:?}"
    );
    assert!(
        !dest.path().join("zeros").exists(),
        "refused before writing"
    );
}

#[test]
fn size_limit_counts_all_entries() {
    let dest = tempfile::tempdir().expect("tempdir");
    let chunk = vec![7u8; 40_000];
    let mut t = TarBuf::new();
    t.file("a", &chunk).file("b", &chunk).file("c", &chunk);
    let limits = Limits {
        max_total_bytes: 100_000,
        max_entries: 100,
    };
    let err = crate::apply_layer(&t.finish()[..], dest.path(), &limits).expect_err("must fail");
    assert!(matches!(
        err,
        ArchiveError::TooLarge {
            what: LimitKind::TotalBytes,
            ..
        }
    ));
}

#[test]
fn entry_count_limit() {
    let dest = tempfile::tempdir().expect("tempdir");
    let mut t = TarBuf::new();
    for i in 0..11 {
        t.file(&format!("f{i}"), b"");
    }
    let limits = Limits {
        max_total_bytes: 1 << 20,
        max_entries: 10,
    };
    let err = crate::apply_layer(&t.finish()[..], dest.path(), &limits).expect_err("must fail");
    assert!(matches!(
        err,
        ArchiveError::TooLarge {
            what: LimitKind::Entries,
            max: 10
        }
    ));
    let ok = Limits {
        max_entries: 11,
        ..limits
    };
    let dest2 = tempfile::tempdir().expect("tempdir");
    crate::apply_layer(&t.finish()[..], dest2.path(), &ok).expect("11 entries fit");
}

#[test]
fn huge_pax_header_is_refused_before_it_is_buffered() {
    let dest = tempfile::tempdir().expect("tempdir");
    let mut pax = Vec::new();
    crate::write::pax_record(&mut pax, b"comment", &vec![b'x'; 8 << 20]);
    let mut h = tar::Header::new_ustar();
    h.as_old_mut().name[..3].copy_from_slice(b"pax");
    h.set_entry_type(EntryType::XHeader);
    h.set_size(pax.len() as u64);
    h.set_cksum();
    let mut t = TarBuf::new();
    t.raw(&h, &pax).file("f", b"");
    let err = apply_to(&t.finish(), dest.path()).expect_err("must fail");
    assert!(
        matches!(
            err,
            ArchiveError::TooLarge {
                what: LimitKind::Metadata,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn truncated_gzip_is_an_error() {
    let mut t = TarBuf::new();
    t.file("a", &vec![1u8; 100_000]).file("b", b"b");
    let blob = gzip(&t.finish());
    for cut in [blob.len() - 4, blob.len() / 2, 20] {
        let dest = tempfile::tempdir().expect("tempdir");
        let reader = crate::decompress(&blob[..cut]).expect("decompress");
        let err = crate::apply_layer(reader, dest.path(), &Limits::default())
            .expect_err("truncated gzip must fail");
        assert!(
            matches!(err, ArchiveError::Corrupt { .. }),
            "cut at {cut}: {err:?}"
        );
    }
}

#[test]
fn truncated_plain_tar_is_an_error() {
    let mut t = TarBuf::new();
    t.file("a", &vec![1u8; 5000]).file("b", b"b");
    let full = t.finish();
    // mid-header, mid-data, and cut exactly at an entry boundary (no end-of-archive marker)
    for cut in [100, 512 + 1000, t.unterminated().len(), 0] {
        let dest = tempfile::tempdir().expect("tempdir");
        let err = apply_to(&full[..cut], dest.path()).expect_err("must fail");
        assert!(
            matches!(err, ArchiveError::Corrupt { .. }),
            "cut at {cut}: {err:?}"
        );
    }
}

#[test]
fn garbage_is_corrupt() {
    let dest = tempfile::tempdir().expect("tempdir");
    let err = apply_to(&[0x42; 2048], dest.path()).expect_err("must fail");
    assert!(matches!(err, ArchiveError::Corrupt { .. }), "{err:?}");
    let err = crate::apply_layer(
        crate::decompress(&[0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 0xff, 1, 2, 3][..])
            .expect("decompress"),
        dest.path(),
        &Limits::default(),
    )
    .expect_err("must fail");
    assert!(matches!(err, ArchiveError::Corrupt { .. }), "{err:?}");
}

#[test]
fn reserved_uid_is_refused() {
    let dest = tempfile::tempdir().expect("tempdir");
    let mut t = TarBuf::new();
    t.entry(
        b"f",
        EntryType::Regular,
        E {
            uid: u64::from(u32::MAX),
            ..E::default()
        },
    );
    let err = apply_to(&t.finish(), dest.path()).expect_err("must fail");
    assert!(matches!(err, ArchiveError::InvalidEntry { .. }), "{err:?}");
}

#[test]
fn entries_over_symlinks_replace_them_and_never_write_through() {
    let sb = sandbox();
    let target = sb.outside.join("target");
    let outside = sb.outside.to_str().expect("utf8").to_string();
    let mut t = TarBuf::new();
    t.symlink("f", target.to_str().expect("utf8"))
        .file("f", b"inside")
        .symlink("d", &outside)
        .dir("d/")
        .symlink("w", &outside)
        .file(".wh.w", b"")
        .file("real", b"r")
        .symlink("h", target.to_str().expect("utf8"))
        .hardlink("h", "real");
    sb.apply(&t).expect("apply");
    assert_eq!(fs::read(sb.dest.join("f")).expect("f"), b"inside");
    assert!(lmeta(&sb.dest.join("d")).is_dir());
    assert_eq!(lmeta(&sb.dest.join("h")).nlink(), 2);
    sb.untouched();
}

#[test]
fn rewriting_a_hard_linked_name_does_not_change_the_other_name() {
    let sb = sandbox();
    let mut t = TarBuf::new();
    t.file("first", b"original")
        .hardlink("second", "first")
        .file("second", b"replaced");
    sb.apply(&t).expect("apply");
    assert_eq!(fs::read(sb.dest.join("first")).expect("first"), b"original");
    assert_eq!(
        fs::read(sb.dest.join("second")).expect("second"),
        b"replaced"
    );
}

#[test]
fn errors_can_cross_threads() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<ArchiveError>();
}
