//! Helpers shared by the integration tests: temp stores and hand-built tars and archives.
#![allow(dead_code)] // Each test binary uses a different subset of these helpers.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_image::{ImageStore, ImportOptions, Reference};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub struct Env {
    pub dir: tempfile::TempDir,
    pub db: Arc<redb::Database>,
    pub store: ImageStore,
}

pub fn env() -> Env {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Arc::new(redb::Database::create(dir.path().join("metadata.redb")).expect("db"));
    let store = ImageStore::open(dir.path(), db.clone()).expect("open store");
    Env { dir, db, store }
}

impl Env {
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn reopen(&self) -> ImageStore {
        ImageStore::open(self.dir.path(), self.db.clone()).expect("reopen store")
    }

    pub fn blob_count(&self) -> usize {
        count(&self.root().join("content/blobs/sha256"))
    }

    pub fn snapshot_count(&self) -> usize {
        count(&self.root().join("snapshots"))
    }

    pub fn snapshot_dir(&self, chain_id: &str) -> PathBuf {
        self.root()
            .join("snapshots")
            .join(chain_id.trim_start_matches("sha256:"))
    }
}

pub fn count(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

pub fn digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

pub fn hex_of(digest: &str) -> &str {
    digest.trim_start_matches("sha256:")
}

/// One entry of a hand-built layer.
pub enum E<'a> {
    Dir(&'a str),
    File(&'a str, &'a [u8]),
    Symlink(&'a str, &'a str),
}

pub fn tar_of(entries: &[E<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        match e {
            E::Dir(p) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, p, std::io::empty()).expect("dir");
            }
            E::File(p, data) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, p, *data).expect("file");
            }
            E::Symlink(p, target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                b.append_link(&mut h, p, target).expect("symlink");
            }
        }
    }
    b.into_inner().expect("finish tar")
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).expect("gzip");
    enc.finish().expect("gzip finish")
}

pub fn rootfs() -> Vec<u8> {
    tar_of(&[
        E::Dir("etc/"),
        E::File("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"),
        E::File("etc/hostname", b"box\n"),
        E::Dir("bin/"),
        E::File("bin/busybox", b"#!fake busybox\n"),
        E::Symlink("bin/sh", "busybox"),
    ])
}

pub fn import(store: &ImageStore, tar: &[u8], reference: Option<&str>) -> berth_image::Image {
    store
        .import(
            tar,
            ImportOptions {
                reference: reference.map(|r| Reference::parse(r).expect("reference")),
                ..ImportOptions::default()
            },
        )
        .expect("import")
}

/// An image config for these plain-tar layers, with one history entry per layer plus an empty one.
pub fn config_for(layers_plain: &[&[u8]], created: &str) -> Vec<u8> {
    let diff_ids: Vec<String> = layers_plain.iter().map(|l| digest(l)).collect();
    let mut history: Vec<Value> = layers_plain
        .iter()
        .enumerate()
        .map(|(i, _)| json!({"created": created, "created_by": format!("layer {i}")}))
        .collect();
    history.push(json!({"created": created, "created_by": "CMD [\"sh\"]", "empty_layer": true}));
    serde_json::to_vec(&json!({
        "architecture": host_arch(),
        "os": "linux",
        "created": created,
        "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"], "Labels": {"stage": "test"}},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
        "x-unknown-field": {"kept": true}
    }))
    .expect("config json")
}

pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// An image to put in a hand-built archive: config bytes, layer blobs as stored, tags.
pub struct TestImage {
    pub config: Vec<u8>,
    pub blobs: Vec<Vec<u8>>,
    pub tags: Vec<String>,
}

impl TestImage {
    pub fn id(&self) -> String {
        digest(&self.config)
    }
}

pub fn add_file(b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]) {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    b.append_data(&mut h, path, data).expect("append");
}

pub fn add_symlink(b: &mut tar::Builder<Vec<u8>>, path: &str, target: &str) {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_mode(0o777);
    h.set_size(0);
    b.append_link(&mut h, path, target).expect("symlink");
}

/// A docker-archive with blobs under `blobs/sha256/` and a `manifest.json` (docker save v25+).
pub fn docker_archive(images: &[TestImage]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut manifest = Vec::new();
    // manifest.json first: the loader must cope with members in any order.
    let entries: Vec<Value> = images
        .iter()
        .map(|img| {
            json!({
                "Config": format!("blobs/sha256/{}", hex_of(&img.id())),
                "RepoTags": img.tags,
                "Layers": img.blobs.iter().map(|l| format!("blobs/sha256/{}", hex_of(&digest(l)))).collect::<Vec<_>>(),
            })
        })
        .collect();
    manifest.extend(serde_json::to_vec(&entries).expect("manifest"));
    add_file(&mut b, "manifest.json", &manifest);
    let mut seen = std::collections::HashSet::new();
    for img in images {
        for blob in img.blobs.iter().chain(std::iter::once(&img.config)) {
            let d = digest(blob);
            if seen.insert(d.clone()) {
                add_file(&mut b, &format!("blobs/sha256/{}", hex_of(&d)), blob);
            }
        }
    }
    b.into_inner().expect("finish")
}
