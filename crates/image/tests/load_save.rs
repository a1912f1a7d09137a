//! `load` of docker-archive and OCI layout tars, `save` round trips, and refusals that leave nothing.

mod common;

use std::collections::BTreeMap;
use std::io::Read;

use berth_image::{ErrorKind, ImageError, RemoveAction};
use common::*;
use serde_json::{json, Value};

const CREATED: &str = "2024-01-02T03:04:05.123456789Z";

fn never(_: &str) -> bool {
    false
}

fn base_layer() -> Vec<u8> {
    tar_of(&[
        E::Dir("etc/"),
        E::File("etc/passwd", b"root:x:0:0::/root:/bin/sh\n"),
        E::File("etc/shadow", b"root:*:1::::::\n"),
        E::Dir("data/"),
        E::File("data/a", b"a"),
        E::File("data/b", b"b"),
    ])
}

/// Deletes /etc/shadow, makes /data opaque with only `c`, adds /etc/motd.
fn top_layer() -> Vec<u8> {
    tar_of(&[
        E::Dir("etc/"),
        E::File("etc/.wh.shadow", b""),
        E::File("etc/motd", b"hello\n"),
        E::Dir("data/"),
        E::File("data/.wh..wh..opq", b""),
        E::File("data/c", b"c"),
    ])
}

fn load(
    env: &Env,
    archive: &[u8],
) -> Result<(Vec<berth_image::LoadedImage>, Vec<String>), ImageError> {
    let mut lines = Vec::new();
    let loaded = env
        .store
        .load(archive, &mut |l: &str| lines.push(l.to_string()))?;
    Ok((loaded, lines))
}

fn two_layer_image(tags: &[&str]) -> TestImage {
    let (base, top) = (base_layer(), top_layer());
    TestImage {
        config: config_for(&[&base, &top], CREATED),
        // The top layer ships gzip-compressed, the base plain.
        blobs: vec![base, gzip(&top)],
        tags: tags.iter().map(|s| s.to_string()).collect(),
    }
}

#[test]
fn docker_archive_with_whiteouts_and_layer_order() {
    let env = env();
    let img = two_layer_image(&["multi:1", "localhost:5000/multi/x:2"]);
    let (loaded, lines) = load(
        &env,
        &docker_archive(&[TestImage {
            config: img.config.clone(),
            blobs: img.blobs.clone(),
            tags: img.tags.clone(),
        }]),
    )
    .expect("load");
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].id, img.id());
    assert_eq!(
        lines,
        vec![
            "Loaded image: multi:1",
            "Loaded image: localhost:5000/multi/x:2"
        ]
    );

    let got = env.store.resolve("multi:1").expect("resolve");
    assert_eq!(got.id, img.id());
    assert_eq!(
        got.config.extra.get("x-unknown-field"),
        Some(&json!({"kept": true}))
    );
    assert_eq!(
        got.diff_ids,
        vec![digest(&base_layer()), digest(&top_layer())]
    );
    assert_eq!(
        env.store
            .resolve("localhost:5000/multi/x:2")
            .expect("second")
            .id,
        got.id
    );

    // layer_dirs: top-most first.
    let dirs = env.store.layer_dirs(&got.id).expect("dirs");
    assert_eq!(
        dirs,
        vec![
            env.snapshot_dir(&got.chain_ids[1]).join("fs"),
            env.snapshot_dir(&got.chain_ids[0]).join("fs"),
        ]
    );
    // Whiteouts and opaque directories as the merged image sees them.
    let read = |p: &str| env.store.read_file(&got.id, p).expect(p);
    assert_eq!(read("/etc/shadow"), None);
    assert_eq!(read("/data/a"), None);
    assert_eq!(read("/data/c").as_deref(), Some(&b"c"[..]));
    assert_eq!(read("/etc/motd").as_deref(), Some(&b"hello\n"[..]));
    assert_eq!(
        read("/etc/passwd").as_deref(),
        Some(&b"root:x:0:0::/root:/bin/sh\n"[..])
    );

    // History: newest first; the empty CMD entry has no size, the layers have their sizes.
    let h = env.store.history(&got.id).expect("history");
    assert_eq!(h.len(), 3);
    assert_eq!(h[0].created_by, "CMD [\"sh\"]");
    assert_eq!(h[0].size, 0);
    assert_eq!(h[0].id, got.id);
    assert_eq!(h[1].id, "<missing>");
    assert_eq!(h[1].size, 7);
    assert_eq!(h[2].size, 26 + 15 + 2);
    assert_eq!(got.size, 7 + 26 + 15 + 2);
}

#[test]
fn legacy_layout_with_symlinked_layers_in_a_gzip_archive() {
    let env = env();
    let layer = base_layer();
    let config = config_for(&[&layer, &layer], CREATED);
    let id = digest(&config);
    let mut b = tar::Builder::new(Vec::new());
    add_file(&mut b, &format!("{}.json", hex_of(&id)), &config);
    add_file(&mut b, "aaaa/layer.tar", &layer);
    add_file(&mut b, "aaaa/VERSION", b"1.0");
    add_symlink(&mut b, "bbbb/layer.tar", "../aaaa/layer.tar");
    add_file(&mut b, "repositories", br#"{"legacy":{"v1":"bbbb"}}"#);
    let manifest = json!([{
        "Config": format!("{}.json", hex_of(&id)),
        "RepoTags": ["legacy:v1"],
        "Layers": ["aaaa/layer.tar", "bbbb/layer.tar"],
    }]);
    add_file(
        &mut b,
        "./manifest.json",
        &serde_json::to_vec(&manifest).expect("json"),
    );
    let archive = gzip(&b.into_inner().expect("tar"));
    let (loaded, _) = load(&env, &archive).expect("load");
    assert_eq!(loaded[0].id, id);
    assert_eq!(loaded[0].tags, vec!["legacy:v1".to_string()]);
    let img = env.store.resolve("legacy:v1").expect("resolve");
    assert_eq!(img.chain_ids.len(), 2);
    // The same layer twice still makes two snapshots (different chain ids), unpacked once each.
    assert_eq!(env.snapshot_count(), 2);
    // The spooled metadata members (manifest.json, repositories, VERSION) were collected.
    assert_eq!(env.blob_count(), 2);
}

/// An OCI layout: index.json → nested index (foreign platform, attestation, host) → manifest.
fn oci_layout(name_annotation: (&str, &str)) -> (Vec<u8>, String) {
    let (base, top) = (base_layer(), top_layer());
    let top_gz = gzip(&top);
    let config = config_for(&[&base, &top], CREATED);
    let desc = |mt: &str, data: &[u8]| json!({"mediaType": mt, "digest": digest(data), "size": data.len()});
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": desc("application/vnd.oci.image.config.v1+json", &config),
        "layers": [
            desc("application/vnd.oci.image.layer.v1.tar", &base),
            desc("application/vnd.oci.image.layer.v1.tar+gzip", &top_gz),
        ],
    }))
    .expect("manifest");
    let attestation = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": desc("application/vnd.oci.image.config.v1+json", b"{}"),
        "layers": [],
    }))
    .expect("attestation");
    let mut m = desc("application/vnd.oci.image.manifest.v1+json", &manifest);
    m["platform"] = json!({"os": "linux", "architecture": host_arch()});
    let mut other = desc("application/vnd.oci.image.manifest.v1+json", b"not shipped");
    other["platform"] = json!({"os": "linux", "architecture": "s390x"});
    let mut att = desc("application/vnd.oci.image.manifest.v1+json", &attestation);
    att["platform"] = json!({"os": "unknown", "architecture": "unknown"});
    att["annotations"] = json!({"vnd.docker.reference.type": "attestation-manifest"});
    let nested = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [other, att, m],
    }))
    .expect("nested");
    let mut top_desc = desc("application/vnd.oci.image.index.v1+json", &nested);
    top_desc["annotations"] = json!({ name_annotation.0: name_annotation.1 });
    let index =
        serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [top_desc]})).expect("index");

    let mut b = tar::Builder::new(Vec::new());
    add_file(&mut b, "index.json", &index);
    add_file(&mut b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    for blob in [
        &base,
        &top_gz,
        &config,
        &manifest,
        &attestation,
        &b"{}".to_vec(),
        &nested,
    ] {
        add_file(
            &mut b,
            &format!("blobs/sha256/{}", hex_of(&digest(blob))),
            blob,
        );
    }
    (b.into_inner().expect("tar"), digest(&config))
}

#[test]
fn oci_layout_with_nested_index_picks_the_host_platform() {
    let env = env();
    let (archive, id) = oci_layout(("org.opencontainers.image.ref.name", "oci/img:v1"));
    let (loaded, lines) = load(&env, &archive).expect("load");
    assert_eq!(loaded[0].id, id);
    assert_eq!(lines, vec!["Loaded image: oci/img:v1"]);
    let img = env.store.resolve("oci/img:v1").expect("resolve");
    assert_eq!(
        env.store.read_file(&img.id, "/etc/shadow").expect("read"),
        None
    );

    // A bare tag names no repository: the image loads unnamed.
    let env2 = common::env();
    let (archive, id) = oci_layout(("org.opencontainers.image.ref.name", "latest"));
    let (loaded, lines) = load(&env2, &archive).expect("load");
    assert!(loaded[0].tags.is_empty());
    assert_eq!(lines, vec![format!("Loaded image ID: {id}")]);
}

#[test]
fn save_then_load_round_trips_ids_and_tags() {
    let env = env();
    load(&env, &docker_archive(&[two_layer_image(&["multi:1"])])).expect("load");
    let imported = import(&env.store, &rootfs(), Some("imp:latest"));
    env.store.tag("imp", "imp:other").expect("tag");
    let multi = env.store.resolve("multi:1").expect("multi");

    let mut out = Vec::new();
    env.store
        .save(&["multi:1".to_string(), "imp".to_string()], &mut out)
        .expect("save");

    // What the archive holds.
    let mut members: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut a = tar::Archive::new(out.as_slice());
    for e in a.entries().expect("entries") {
        let mut e = e.expect("entry");
        if !e.header().entry_type().is_file() {
            continue;
        }
        let path = e.path().expect("path").to_string_lossy().into_owned();
        let mut data = Vec::new();
        e.read_to_end(&mut data).expect("read");
        members.insert(path, data);
    }
    for m in ["oci-layout", "index.json", "manifest.json", "repositories"] {
        assert!(members.contains_key(m), "{m} missing");
    }
    // Every blob is named by its digest; layers are plain tars named by diff id.
    for (path, data) in &members {
        if let Some(hex) = path.strip_prefix("blobs/sha256/") {
            if !hex.is_empty() {
                assert_eq!(hex_of(&digest(data)), hex, "{path}");
            }
        }
    }
    for d in multi.diff_ids.iter().chain(&imported.diff_ids) {
        assert!(members.contains_key(&format!("blobs/sha256/{}", hex_of(d))));
    }
    let manifest: Value = serde_json::from_slice(&members["manifest.json"]).expect("json");
    let mut repo_tags: Vec<String> = manifest
        .as_array()
        .expect("array")
        .iter()
        .flat_map(|e| e["RepoTags"].as_array().cloned().unwrap_or_default())
        .map(|v| v.as_str().unwrap_or_default().to_string())
        .collect();
    repo_tags.sort();
    assert_eq!(repo_tags, vec!["imp:latest", "imp:other", "multi:1"]);
    let index: Value = serde_json::from_slice(&members["index.json"]).expect("json");
    assert_eq!(index["manifests"].as_array().expect("manifests").len(), 3);
    let repos: Value = serde_json::from_slice(&members["repositories"]).expect("json");
    assert_eq!(repos["multi"]["1"], hex_of(&multi.diff_ids[1]));

    // Delete everything, then load the archive back.
    for name in ["multi:1", "imp:latest", "imp:other"] {
        env.store
            .remove(name, false, false, &never)
            .expect("remove");
    }
    assert_eq!(env.blob_count(), 0);
    let (loaded, lines) = load(&env, &out).expect("load back");
    assert_eq!(loaded.len(), 2);
    assert!(lines.contains(&"Loaded image: imp:other".to_string()));
    assert_eq!(env.store.resolve("multi:1").expect("multi").id, multi.id);
    assert_eq!(env.store.resolve("imp:other").expect("imp").id, imported.id);
    assert_eq!(
        env.store
            .read_file(&multi.id, "/data/c")
            .expect("read")
            .as_deref(),
        Some(&b"c"[..])
    );

    // The saved OCI layout alone (without manifest.json) loads too, with the same ids.
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in &members {
        if path != "manifest.json" {
            add_file(&mut b, path, data);
        }
    }
    let env2 = common::env();
    let (loaded, _) = load(&env2, &b.into_inner().expect("tar")).expect("oci load");
    let mut ids: Vec<String> = loaded.iter().map(|l| l.id.clone()).collect();
    ids.sort();
    let mut want = vec![multi.id.clone(), imported.id.clone()];
    want.sort();
    assert_eq!(ids, want);
    assert_eq!(
        env2.store.resolve("imp:latest").expect("tag").id,
        imported.id
    );

    // Saving by id writes no names.
    let mut by_id = Vec::new();
    env.store
        .save(std::slice::from_ref(&imported.id), &mut by_id)
        .expect("save by id");
    let env3 = common::env();
    let (loaded, lines) = load(&env3, &by_id).expect("load by id");
    assert!(loaded[0].tags.is_empty());
    assert_eq!(lines, vec![format!("Loaded image ID: {}", imported.id)]);
}

#[test]
fn wrong_diff_id_fails_and_tags_nothing() {
    let env = env();
    // A good image and a bad one in the same archive: neither is recorded.
    let good = two_layer_image(&["good:1"]);
    let base = base_layer();
    let bad = TestImage {
        config: config_for(&[&tar_of(&[E::File("claimed", b"x")])], CREATED),
        blobs: vec![base],
        tags: vec!["bad:1".into()],
    };
    let err = load(&env, &docker_archive(&[good, bad])).expect_err("mismatch");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(err.to_string().contains("diff id mismatch"), "{err}");
    assert!(env.store.list().expect("list").is_empty());
    assert!(env.store.resolve("good:1").is_err());
    assert_eq!(env.blob_count(), 0);
    assert_eq!(env.snapshot_count(), 0);
}

#[test]
fn layer_count_mismatch_and_bad_blob_digest_fail() {
    let env = env();
    let mut img = two_layer_image(&["x:1"]);
    img.blobs.pop();
    let err = load(&env, &docker_archive(&[img])).expect_err("count");
    assert!(err.to_string().contains("diff ids"), "{err}");

    // A member named blobs/sha256/<hex> whose content has another digest.
    let mut b = tar::Builder::new(Vec::new());
    add_file(
        &mut b,
        &format!("blobs/sha256/{}", "a".repeat(64)),
        b"not that",
    );
    add_file(&mut b, "manifest.json", b"[]");
    let err = load(&env, &b.into_inner().expect("tar")).expect_err("digest");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(load(&env, b"").is_err());
    assert_eq!(env.blob_count(), 0);
    assert_eq!(env.snapshot_count(), 0);
}

#[test]
fn truncated_archive_fails_without_an_image() {
    let env = env();
    let archive = docker_archive(&[two_layer_image(&["trunc:1"])]);
    for cut in [archive.len() / 2, archive.len() - 1024 - 700, 1000] {
        assert!(load(&env, &archive[..cut]).is_err(), "cut at {cut}");
        assert!(env.store.list().expect("list").is_empty());
        assert_eq!(env.blob_count(), 0);
        assert_eq!(env.snapshot_count(), 0);
    }
}

#[test]
fn shared_layers_are_unpacked_once_and_kept_until_the_last_user() {
    let env = env();
    let base = base_layer();
    let a_top = tar_of(&[E::File("a", b"from a")]);
    let b_top = tar_of(&[E::File("b", b"from b")]);
    let a = TestImage {
        config: config_for(&[&base, &a_top], CREATED),
        blobs: vec![base.clone(), a_top],
        tags: vec!["a:1".into()],
    };
    let b = TestImage {
        config: config_for(&[&base, &b_top], CREATED),
        blobs: vec![gzip(&base), b_top],
        tags: vec!["b:1".into()],
    };
    load(&env, &docker_archive(&[a])).expect("load a");
    let base_chain = digest(&base);
    let marker = env.snapshot_dir(&base_chain).join("fs/marker");
    std::fs::write(&marker, b"unpacked once").expect("marker");
    // B shares the base layer (shipped gzip this time): it is verified, not unpacked again.
    load(&env, &docker_archive(&[b])).expect("load b");
    assert!(marker.exists(), "the shared snapshot was unpacked again");
    assert_eq!(env.snapshot_count(), 3);

    let actions = env
        .store
        .remove("a:1", false, false, &never)
        .expect("remove a");
    assert!(!actions.contains(&RemoveAction::Deleted(base_chain.clone())));
    assert!(
        env.snapshot_dir(&base_chain).exists(),
        "b still uses the base layer"
    );
    assert_eq!(env.snapshot_count(), 2);
    assert_eq!(
        env.store
            .read_file(&env.store.resolve("b:1").expect("b").id, "/b")
            .expect("read")
            .as_deref(),
        Some(&b"from b"[..])
    );
    let actions = env
        .store
        .remove("b:1", false, false, &never)
        .expect("remove b");
    assert!(actions.contains(&RemoveAction::Deleted(base_chain.clone())));
    assert_eq!(env.snapshot_count(), 0);
    assert_eq!(env.blob_count(), 0);
}

#[test]
fn loading_over_an_existing_tag_reports_the_move() {
    let env = env();
    let old = import(&env.store, &rootfs(), Some("moved:1"));
    let (_, lines) = load(&env, &docker_archive(&[two_layer_image(&["moved:1"])])).expect("load");
    assert_eq!(
        lines,
        vec![
            format!(
                "The image moved:1 already exists, renaming the old one with ID {} to empty string",
                old.id
            ),
            "Loaded image: moved:1".to_string(),
        ]
    );
    assert!(env
        .store
        .get(&old.id)
        .expect("old kept")
        .repo_tags
        .is_empty());
}
