//! Extraction of well-formed layers: what ends up on disk.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use tar::EntryType;

use super::*;
use crate::{extract_plain, ApplyStats};

#[test]
fn files_dirs_symlinks_hardlinks_with_modes_owners_and_times() {
    let dest = tempfile::tempdir().expect("tempdir");
    let mut t = TarBuf::new();
    t.entry(
        b"./",
        EntryType::Directory,
        E {
            mode: 0o755,
            ..E::default()
        },
    )
    .entry(
        b"./bin/",
        EntryType::Directory,
        E {
            mode: 0o711,
            uid: 7,
            gid: 8,
            mtime: 1_500_000_000,
            ..E::default()
        },
    )
    .entry(
        b"./bin/tool",
        EntryType::Regular,
        E {
            mode: 0o4755,
            uid: 1234,
            gid: 5678,
            mtime: 1_234_567_890,
            data: b"#!/bin/sh\necho hi\n",
            ..E::default()
        },
    )
    .entry(
        b"bin/sh",
        EntryType::Symlink,
        E {
            mode: 0o777,
            uid: 3,
            gid: 4,
            mtime: 1_111_111_111,
            link: b"/bin/busybox",
            ..E::default()
        },
    )
    .hardlink("bin/tool2", "./bin/tool")
    .file("etc/deep/missing/parents", b"x");
    let stats = apply_to(&t.finish(), dest.path()).expect("apply");
    assert_eq!(
        stats,
        ApplyStats {
            entries: 6,
            bytes: 19
        }
    );

    let bin = lmeta(&dest.path().join("bin"));
    assert!(bin.is_dir());
    assert_eq!(bin.mode() & 0o7777, 0o711);
    assert_eq!((bin.uid(), bin.gid()), (7, 8));
    assert_eq!(
        bin.mtime(),
        1_500_000_000,
        "dir mtime is set after its children"
    );

    let tool = lmeta(&dest.path().join("bin/tool"));
    assert!(tool.is_file());
    assert_eq!(tool.mode() & 0o7777, 0o4755, "setuid survives the chown");
    assert_eq!((tool.uid(), tool.gid()), (1234, 5678));
    assert_eq!(tool.mtime(), 1_234_567_890);
    assert_eq!(tool.nlink(), 2);
    assert_eq!(
        fs::read(dest.path().join("bin/tool")).expect("read"),
        b"#!/bin/sh\necho hi\n"
    );

    let sh = lmeta(&dest.path().join("bin/sh"));
    assert!(sh.file_type().is_symlink());
    assert_eq!((sh.uid(), sh.gid()), (3, 4));
    assert_eq!(sh.mtime(), 1_111_111_111);
    assert_eq!(
        fs::read_link(dest.path().join("bin/sh")).expect("readlink"),
        Path::new("/bin/busybox")
    );

    let tool2 = lmeta(&dest.path().join("bin/tool2"));
    assert_eq!(tool2.ino(), tool.ino(), "hard link shares the inode");

    let implicit = lmeta(&dest.path().join("etc/deep"));
    assert_eq!(implicit.mode() & 0o7777, 0o755, "implicit parents are 0755");
    assert_eq!(
        lmeta(dest.path()).mode() & 0o7777,
        0o755,
        "./ entry sets the root"
    );
}

#[test]
fn xattrs_applied_but_overlay_ones_refused() {
    let dest = tempfile::tempdir().expect("tempdir");
    let mut t = TarBuf::new();
    t.entry(
        b"dir/",
        EntryType::Directory,
        E {
            mode: 0o755,
            xattrs: &[
                ("trusted.overlay.opaque", b"y"),
                ("user.dir", b"d"),
                ("trusted.overlay.redirect", b"/x"),
            ],
            ..E::default()
        },
    )
    .entry(
        b"dir/ping",
        EntryType::Regular,
        E {
            mode: 0o755,
            uid: 10,
            xattrs: &[
                ("security.capability", b"\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"),
                ("user.note", b"hello"),
            ],
            data: b"elf",
            ..E::default()
        },
    );
    apply_to(&t.finish(), dest.path()).expect("apply");
    let dir = dest.path().join("dir");
    assert_eq!(xattr_of(&dir, "user.dir").as_deref(), Some(&b"d"[..]));
    assert_eq!(xattr_of(&dir, "trusted.overlay.opaque"), None);
    assert_eq!(xattr_of(&dir, "trusted.overlay.redirect"), None);
    let ping = dir.join("ping");
    assert_eq!(xattr_of(&ping, "user.note").as_deref(), Some(&b"hello"[..]));
    let cap = xattr_of(&ping, "security.capability").expect("file capability kept after chown");
    assert_eq!(cap.len(), 20);
}

#[test]
fn pax_mtime_and_long_names() {
    let dest = tempfile::tempdir().expect("tempdir");
    let long = format!("{}/{}", "d".repeat(120), "f".repeat(150));
    let mut pax = Vec::new();
    crate::write::pax_record(&mut pax, b"mtime", b"1700000000.25");
    crate::write::pax_record(&mut pax, b"path", long.as_bytes());
    let mut h = tar::Header::new_ustar();
    h.as_old_mut().name[..3].copy_from_slice(b"pax");
    h.set_entry_type(EntryType::XHeader);
    h.set_size(pax.len() as u64);
    h.set_cksum();
    let mut t = TarBuf::new();
    t.raw(&h, &pax).file("ignored-name", b"long");
    apply_to(&t.finish(), dest.path()).expect("apply");
    let m = lmeta(&dest.path().join(&long));
    assert_eq!((m.mtime(), m.mtime_nsec()), (1_700_000_000, 250_000_000));
    assert!(!dest.path().join("ignored-name").exists());
}

#[test]
fn existing_directory_is_kept_and_updated() {
    let dest = tempfile::tempdir().expect("tempdir");
    let mut t = TarBuf::new();
    t.file("d/keep", b"1").entry(
        b"d/",
        EntryType::Directory,
        E {
            mode: 0o700,
            uid: 42,
            ..E::default()
        },
    );
    apply_to(&t.finish(), dest.path()).expect("apply");
    assert_eq!(fs::read(dest.path().join("d/keep")).expect("kept"), b"1");
    let d = lmeta(&dest.path().join("d"));
    assert_eq!((d.mode() & 0o7777, d.uid()), (0o700, 42));
}

#[test]
fn type_changes_replace_what_was_there() {
    let dest = tempfile::tempdir().expect("tempdir");
    let mut t = TarBuf::new();
    t.file("a/inner", b"1")
        .file("a", b"now a file")
        .file("b", b"file")
        .dir("b")
        .file("b/child", b"c")
        .symlink("c", "/etc/passwd")
        .file("c", b"replaces the symlink");
    apply_to(&t.finish(), dest.path()).expect("apply");
    assert_eq!(fs::read(dest.path().join("a")).expect("a"), b"now a file");
    assert!(lmeta(&dest.path().join("b")).is_dir());
    assert_eq!(fs::read(dest.path().join("b/child")).expect("child"), b"c");
    let c = lmeta(&dest.path().join("c"));
    assert!(c.is_file(), "the symlink is replaced, not written through");
    assert_eq!(
        fs::read(dest.path().join("c")).expect("c"),
        b"replaces the symlink"
    );
}

#[test]
fn cached_parent_is_not_reused_after_its_removal() {
    let dest = tempfile::tempdir().expect("tempdir");
    let mut t = TarBuf::new();
    t.file("a/b/one", b"1")
        .file("a", b"file now")
        .file("a/b/two", b"2");
    // `a` is a regular file when `a/b/two` arrives: that is an error, not a write into the
    // unlinked directory that was cached.
    let err = apply_to(&t.finish(), dest.path()).expect_err("parent is a file");
    assert!(matches!(err, ArchiveError::NotADirectory { .. }), "{err:?}");
}

#[test]
fn fifo_is_created() {
    let dest = tempfile::tempdir().expect("tempdir");
    let mut t = TarBuf::new();
    t.entry(
        b"run/pipe",
        EntryType::Fifo,
        E {
            mode: 0o620,
            uid: 5,
            ..E::default()
        },
    );
    apply_to(&t.finish(), dest.path()).expect("apply");
    let m = lmeta(&dest.path().join("run/pipe"));
    assert!(m.file_type().is_fifo());
    assert_eq!(
        (m.mode() & 0o7777, m.uid(), m.mtime()),
        (0o620, 5, MTIME as i64)
    );
}

#[test]
fn whiteout_removes_and_leaves_a_char_device() {
    let dest = tempfile::tempdir().expect("tempdir");
    fs::create_dir_all(dest.path().join("etc/gone/sub")).expect("mkdir");
    fs::write(dest.path().join("etc/gone/sub/f"), b"x").expect("write");
    fs::write(dest.path().join("etc/file"), b"x").expect("write");
    let mut t = TarBuf::new();
    t.entry(
        b"etc/.wh.gone",
        EntryType::Regular,
        E {
            uid: 9,
            gid: 9,
            ..E::default()
        },
    )
    .file("etc/.wh.file", b"")
    .file("new/.wh.never-existed", b"");
    let stats = apply_to(&t.finish(), dest.path()).expect("apply");
    assert_eq!(stats.entries, 3);
    for (rel, owner) in [("etc/gone", 9), ("etc/file", 0), ("new/never-existed", 0)] {
        let m = lmeta(&dest.path().join(rel));
        assert!(m.file_type().is_char_device(), "{rel}");
        assert_eq!(m.rdev(), 0, "{rel}");
        assert_eq!(m.uid(), owner, "{rel}");
    }
    assert!(!dest.path().join("etc/.wh.gone").exists());
}

#[test]
fn opaque_marker_sets_the_xattr_and_meta_names_are_ignored() {
    let dest = tempfile::tempdir().expect("tempdir");
    let mut t = TarBuf::new();
    t.dir("var/")
        .file("var/.wh..wh..opq", b"")
        .file("var/kept", b"k")
        .file("opt/new/.wh..wh..opq", b"")
        .file(".wh..wh.plnk", b"")
        .file("x/.wh..wh.aufs", b"");
    apply_to(&t.finish(), dest.path()).expect("apply");
    for dir in ["var", "opt/new"] {
        assert_eq!(
            xattr_of(&dest.path().join(dir), "trusted.overlay.opaque").as_deref(),
            Some(&b"y"[..]),
            "{dir}"
        );
    }
    assert!(!dest.path().join("var/.wh..wh..opq").exists());
    assert!(!dest.path().join(".wh..wh.plnk").exists());
    assert!(dest.path().join("var/kept").exists());
}

#[test]
fn extract_plain_keeps_whiteout_names_as_files() {
    let dest = tempfile::tempdir().expect("tempdir");
    let mut t = TarBuf::new();
    t.file("etc/.wh.gone", b"plain")
        .file("etc/.wh..wh..opq", b"");
    let stats = extract_plain(&t.finish()[..], dest.path(), &Limits::default()).expect("extract");
    assert_eq!(stats.entries, 2);
    assert_eq!(
        fs::read(dest.path().join("etc/.wh.gone")).expect("file"),
        b"plain"
    );
    assert!(lmeta(&dest.path().join("etc/.wh..wh..opq")).is_file());
    assert_eq!(
        xattr_of(&dest.path().join("etc"), "trusted.overlay.opaque"),
        None
    );
}

#[test]
fn old_style_directory_and_global_pax_header() {
    let dest = tempfile::tempdir().expect("tempdir");
    let mut t = TarBuf::new();
    let mut g = tar::Header::new_ustar();
    g.as_old_mut().name[..17].copy_from_slice(b"pax_global_header");
    g.set_entry_type(EntryType::XGlobalHeader);
    let mut rec = Vec::new();
    crate::write::pax_record(&mut rec, b"comment", b"made by git");
    g.set_size(rec.len() as u64);
    g.set_cksum();
    t.raw(&g, &rec);
    // v7 type flag NUL: `EntryType::new(0)` would be written back as '0'.
    let mut old = tar::Header::new_old();
    old.as_old_mut().name[..7].copy_from_slice(b"olddir/");
    old.set_mode(0o750);
    old.set_uid(0);
    old.set_gid(0);
    old.set_mtime(MTIME);
    old.set_size(0);
    old.as_old_mut().linkflag[0] = 0;
    old.set_cksum();
    t.raw(&old, b"").file("olddir/f", b"f");
    apply_to(&t.finish(), dest.path()).expect("apply");
    let m = lmeta(&dest.path().join("olddir"));
    assert!(m.is_dir());
    assert_eq!(m.mode() & 0o7777, 0o750);
    assert!(!dest.path().join("pax_global_header").exists());
}

#[test]
fn sparse_gnu_file_is_expanded() {
    // A GNU sparse file built by the tar crate's own reader logic: one data block at offset 4096.
    let dest = tempfile::tempdir().expect("tempdir");
    let mut h = tar::Header::new_gnu();
    h.as_old_mut().name[..6].copy_from_slice(b"sparse");
    h.set_entry_type(EntryType::GNUSparse);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(MTIME);
    h.set_size(512);
    {
        let gnu = h.as_gnu_mut().expect("gnu");
        gnu.sparse[0].offset.copy_from_slice(b"00000010000\0");
        gnu.sparse[0].numbytes.copy_from_slice(b"00000001000\0");
        gnu.realsize.copy_from_slice(b"00000011000\0");
    }
    h.set_cksum();
    let mut t = TarBuf::new();
    t.raw(&h, &[b's'; 512]);
    let stats = apply_to(&t.finish(), dest.path()).expect("apply");
    assert_eq!(stats.bytes, 4608);
    let data = fs::read(dest.path().join("sparse")).expect("read");
    assert_eq!(data.len(), 4608);
    assert!(data[..4096].iter().all(|b| *b == 0));
    assert!(data[4096..].iter().all(|b| *b == b's'));
}
