//! Writing trees and overlay diffs, checked by reading them back and by round trips through
//! `apply_layer`.

use std::fs;
use std::os::unix::fs::{chown, lchown, symlink, PermissionsExt};
use std::path::Path;

use tar::EntryType;

use super::*;
use crate::{apply_layer, write_dir_tar, write_overlay_diff};

/// Names and types of the entries of a tar stream, in order.
fn listing(bytes: &[u8]) -> Vec<(String, EntryType)> {
    let mut archive = tar::Archive::new(bytes);
    archive
        .entries()
        .expect("entries")
        .map(|e| {
            let e = e.expect("entry");
            (
                String::from_utf8_lossy(&e.path_bytes()).into_owned(),
                e.header().entry_type(),
            )
        })
        .collect()
}

fn write_tree(src: &Path, overlay: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let n = if overlay {
        write_overlay_diff(src, &mut out).expect("write")
    } else {
        write_dir_tar(src, &mut out).expect("write")
    };
    assert_eq!(n, out.len() as u64, "returned count is what was written");
    out
}

fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

/// A tree with one of everything that write_dir_tar must preserve.
fn rich_tree(src: &Path) {
    fs::create_dir_all(src.join("bin")).expect("mkdir");
    fs::create_dir_all(src.join("empty")).expect("mkdir");
    set_mode(&src.join("empty"), 0o1777);
    fs::write(src.join("bin/busybox"), b"ELF busybox").expect("write");
    chown(src.join("bin/busybox"), Some(1000), Some(2000)).expect("chown");
    set_mode(&src.join("bin/busybox"), 0o4755);
    symlink("busybox", src.join("bin/sh")).expect("symlink");
    lchown(src.join("bin/sh"), Some(5), Some(6)).expect("lchown");
    symlink("/does/not/exist", src.join("dangling")).expect("symlink");
    fs::hard_link(src.join("bin/busybox"), src.join("bin/ls")).expect("link");
    fs::hard_link(src.join("bin/busybox"), src.join("zz-last-link")).expect("link");
    let long_dir = src.join("d".repeat(90)).join("e".repeat(90));
    fs::create_dir_all(&long_dir).expect("mkdir");
    fs::write(long_dir.join("f".repeat(200)), b"long").expect("write");
    fs::write(src.join(os(b"non-utf8-\xff\xfe")), b"bytes").expect("write");
    xattr::set(src.join("bin/busybox"), "user.origin", b"test").expect("xattr");
    xattr::set(src.join("bin"), "trusted.keep", b"1").expect("xattr");
    xattr::set(src.join("bin"), "trusted.overlay.opaque", b"y").expect("xattr");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        src.join("fifo"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o640),
        0,
    )
    .expect("mkfifo");
    let _socket = std::os::unix::net::UnixListener::bind(src.join("sock")).expect("bind");
}

#[test]
fn dir_tar_round_trips_through_apply_layer() {
    let src = tempfile::tempdir().expect("tempdir");
    rich_tree(src.path());
    let bytes = write_tree(src.path(), false);
    let dest = tempfile::tempdir().expect("tempdir");
    apply_layer(&bytes[..], dest.path(), &Limits::default()).expect("apply");

    let mut want = snapshot(src.path());
    want.remove("sock").expect("socket in source");
    let bin = want.get_mut("bin").expect("bin");
    *bin = bin.replace(", \"trusted.overlay.opaque=y\"", "");
    assert!(bin.contains("trusted.keep"), "{bin}");
    assert!(want["bin/busybox"].contains("mode=4755"));
    let got = snapshot(dest.path());
    assert_eq!(got, want);
}

#[test]
fn dir_tar_entries_are_relative_sorted_and_deterministic() {
    let src = tempfile::tempdir().expect("tempdir");
    rich_tree(src.path());
    let bytes = write_tree(src.path(), false);
    assert_eq!(
        bytes,
        write_tree(src.path(), false),
        "same tree, same bytes"
    );
    let names = listing(&bytes);
    let plain: Vec<&str> = names
        .iter()
        .map(|(n, _)| n.as_str())
        .filter(|n| !n.starts_with('d'))
        .collect();
    assert_eq!(
        plain,
        [
            "bin/",
            "bin/busybox",
            "bin/ls",
            "bin/sh",
            "empty/",
            "fifo",
            "non-utf8-\u{fffd}\u{fffd}",
            "zz-last-link"
        ]
    );
    let kinds: Vec<EntryType> = names.iter().map(|(_, k)| *k).collect();
    assert_eq!(kinds.iter().filter(|k| **k == EntryType::Link).count(), 2);
    assert!(names.contains(&("bin/ls".to_string(), EntryType::Link)));
    assert!(names.contains(&("bin/sh".to_string(), EntryType::Symlink)));
    assert!(names
        .iter()
        .all(|(n, _)| !n.starts_with('/') && !n.starts_with("./")));
    assert!(bytes.ends_with(&[0u8; 1024]));
}

#[test]
fn empty_tree_is_a_valid_empty_archive() {
    let src = tempfile::tempdir().expect("tempdir");
    let bytes = write_tree(src.path(), false);
    assert!(listing(&bytes).is_empty());
    let dest = tempfile::tempdir().expect("tempdir");
    let stats = apply_layer(&bytes[..], dest.path(), &Limits::default()).expect("apply");
    assert_eq!(stats.entries, 0);
}

/// An overlay upper directory as the kernel leaves it after `rm etc/removed`, `rm -r var/cache`
/// followed by `mkdir var/cache && touch var/cache/new`, and `echo > etc/new`.
fn upper_tree(upper: &Path) {
    fs::create_dir_all(upper.join("etc")).expect("mkdir");
    mknod_whiteout(&upper.join("etc/removed"));
    fs::write(upper.join("etc/new"), b"new\n").expect("write");
    fs::create_dir_all(upper.join("var/cache")).expect("mkdir");
    xattr::set(upper.join("var/cache"), "trusted.overlay.opaque", b"y").expect("xattr");
    xattr::set(upper.join("var/cache"), "trusted.overlay.origin", b"\x00fh").expect("xattr");
    fs::write(upper.join("var/cache/new"), b"").expect("write");
}

#[test]
fn overlay_diff_turns_whiteouts_and_opaque_dirs_into_wh_entries() {
    let upper = tempfile::tempdir().expect("tempdir");
    upper_tree(upper.path());
    let bytes = write_tree(upper.path(), true);
    let names: Vec<(String, EntryType)> = listing(&bytes);
    let expect: Vec<(String, EntryType)> = [
        ("etc/", EntryType::Directory),
        ("etc/new", EntryType::Regular),
        ("etc/.wh.removed", EntryType::Regular),
        ("var/", EntryType::Directory),
        ("var/cache/", EntryType::Directory),
        ("var/cache/.wh..wh..opq", EntryType::Regular),
        ("var/cache/new", EntryType::Regular),
    ]
    .iter()
    .map(|(n, k)| (n.to_string(), *k))
    .collect();
    assert_eq!(names, expect);
    assert!(
        !bytes.windows(15).any(|w| w == b"trusted.overlay"),
        "overlay xattrs never leave the upper dir"
    );

    // Applying the diff gives back the upper directory, as an overlay lowerdir.
    let dest = tempfile::tempdir().expect("tempdir");
    apply_layer(&bytes[..], dest.path(), &Limits::default()).expect("apply");
    let mut want = snapshot(upper.path());
    let cache = want.get_mut("var/cache").expect("cache");
    *cache = cache.replace(", \"trusted.overlay.origin=\\0fh\"", "");
    assert_eq!(snapshot(dest.path()), want);
}

#[test]
fn overlay_diff_refuses_metacopy_and_redirects() {
    for (xattr_name, on_dir) in [
        ("trusted.overlay.metacopy", false),
        ("trusted.overlay.redirect", true),
    ] {
        let upper = tempfile::tempdir().expect("tempdir");
        fs::create_dir_all(upper.path().join("a/d")).expect("mkdir");
        fs::write(upper.path().join("a/f"), b"").expect("write");
        let target = upper.path().join(if on_dir { "a/d" } else { "a/f" });
        xattr::set(&target, xattr_name, b"x").expect("xattr");
        let mut out = Vec::new();
        let err = write_overlay_diff(upper.path(), &mut out).expect_err("must fail");
        assert!(matches!(err, ArchiveError::Unsupported { .. }), "{err:?}");
        assert!(
            !out.ends_with(&[0u8; 1024]),
            "a failed stream has no end-of-archive marker"
        );
    }
}
