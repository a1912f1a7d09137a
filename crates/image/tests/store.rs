//! Import, lookup, tag, remove, prune, history and disk usage against a real temp store.

mod common;

use berth_image::{ErrorKind, ImageError, ImportOptions, PruneFilters, Reference, RemoveAction};
use common::*;

fn never(_: &str) -> bool {
    false
}

#[test]
fn import_resolve_tag_and_remove() {
    let env = env();
    let tar = rootfs();
    let store = &env.store;
    let img = store
        .import(
            tar.as_slice(),
            ImportOptions {
                reference: Some(Reference::parse_named("test/one:1").expect("ref")),
                changes: vec![r#"CMD ["sh"]"#.into(), "ENV A=b".into(), "EXPOSE 80".into()],
                message: String::new(),
                platform: None,
            },
        )
        .expect("import");

    // The layer blob is the plain tar, so its digest is the diff id.
    assert_eq!(img.diff_ids, vec![digest(&tar)]);
    assert_eq!(img.chain_ids, img.diff_ids);
    assert_eq!(img.repo_tags, vec!["test/one:1".to_string()]);
    assert_eq!(img.config.os, "linux");
    assert_eq!(img.config.architecture, host_arch());
    assert_eq!(img.config.config.cmd, Some(vec!["sh".to_string()]));
    assert_eq!(img.config.config.env, Some(vec!["A=b".to_string()]));
    assert_eq!(img.config.history.len(), 1);
    assert_eq!(
        img.config.history[0].comment.as_deref(),
        Some("Imported from -")
    );
    assert!(img.created.is_some());
    let content_bytes = [30u64, 4, 15].iter().sum::<u64>();
    assert_eq!(img.size, content_bytes);
    // The id is the digest of the stored config bytes.
    let config_blob = std::fs::read(
        env.root()
            .join("content/blobs/sha256")
            .join(hex_of(&img.id)),
    )
    .expect("config blob");
    assert_eq!(digest(&config_blob), img.id);

    // Every way of naming it.
    let hex = hex_of(&img.id).to_string();
    for name in [
        img.id.clone(),
        hex.clone(),
        hex[..12].to_string(),
        format!("sha256:{}", &hex[..8]),
        "test/one:1".to_string(),
        "docker.io/test/one:1".to_string(),
    ] {
        assert_eq!(store.resolve(&name).expect(&name).id, img.id, "{name}");
    }
    assert_eq!(store.get(&hex).expect("get").id, img.id);
    let missing = store.resolve("test/one:2").expect_err("missing tag");
    assert_eq!(missing.kind(), ErrorKind::NotFound);
    assert_eq!(missing.to_string(), "No such image: test/one:2");
    assert_eq!(
        store.resolve("UPPER").expect_err("bad").kind(),
        ErrorKind::InvalidArgument
    );
    assert_eq!(store.list().expect("list").len(), 1);

    // The merged view serves /etc/passwd, through layer_dirs.
    let dirs = store.layer_dirs(&img.id).expect("layer dirs");
    assert_eq!(dirs, vec![env.snapshot_dir(&img.chain_ids[0]).join("fs")]);
    assert_eq!(
        store
            .read_file(&img.id, "/etc/passwd")
            .expect("read")
            .as_deref(),
        Some(&b"root:x:0:0:root:/root:/bin/sh\n"[..])
    );
    assert_eq!(store.read_file(&img.id, "/etc/group").expect("read"), None);

    // Tags: a second repository.
    store.tag("test/one:1", "test/two").expect("tag");
    assert!(matches!(
        store.tag("test/one:1", &format!("x@sha256:{}", "a".repeat(64))),
        Err(ImageError::DigestTag { .. })
    ));
    assert_eq!(
        store.tag("nope", "x").expect_err("no source").kind(),
        ErrorKind::NotFound
    );
    let mut tags = store.resolve("test/two").expect("two").repo_tags;
    tags.sort();
    assert_eq!(
        tags,
        vec!["test/one:1".to_string(), "test/two:latest".to_string()]
    );

    // By id with two repositories: refused without force.
    let err = store
        .remove(&img.id, false, false, &never)
        .expect_err("conflict");
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert_eq!(
        err.to_string(),
        format!(
            "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
            &hex[..12]
        )
    );
    // By name: untag only.
    assert_eq!(
        store
            .remove("test/two", false, false, &never)
            .expect("untag"),
        vec![RemoveAction::Untagged("test/two:latest".into())]
    );
    // The last name of an image a container uses: refused without force.
    let used = |id: &str| id == img.id;
    let err = store
        .remove("test/one:1", false, false, &used)
        .expect_err("in use");
    assert!(matches!(err, ImageError::ImageInUse { .. }));
    assert_eq!(err.kind(), ErrorKind::Conflict);

    // The last name: untag, delete the image, its layer and its blobs.
    let actions = store
        .remove("test/one:1", false, false, &never)
        .expect("remove");
    assert_eq!(
        actions,
        vec![
            RemoveAction::Untagged("test/one:1".into()),
            RemoveAction::Deleted(img.id.clone()),
            RemoveAction::Deleted(img.chain_ids[0].clone()),
        ]
    );
    assert_eq!(
        store.resolve(&img.id).expect_err("gone").kind(),
        ErrorKind::NotFound
    );
    assert!(store.list().expect("list").is_empty());
    assert_eq!(env.blob_count(), 0);
    assert_eq!(env.snapshot_count(), 0);
    assert_eq!(store.disk_usage().expect("du"), 0);
}

#[test]
fn force_remove_of_an_image_in_use_keeps_it_untagged() {
    let env = env();
    let img = import(&env.store, &rootfs(), Some("keep:1"));
    let used = |id: &str| id == img.id;
    let err = env
        .store
        .remove(&img.id, false, false, &used)
        .expect_err("in use");
    assert!(matches!(err, ImageError::ImageInUse { .. }));
    let actions = env
        .store
        .remove(&img.id, true, false, &used)
        .expect("force");
    assert_eq!(actions, vec![RemoveAction::Untagged("keep:1".into())]);
    let kept = env.store.get(&img.id).expect("still there");
    assert!(kept.repo_tags.is_empty());
    assert_eq!(env.snapshot_count(), 1);
    // Forced removal by id of an unused image with two repositories.
    let other = import(&env.store, &tar_of(&[E::File("a", b"a")]), Some("r1:x"));
    env.store.tag("r1:x", "r2:y").expect("tag");
    let actions = env
        .store
        .remove(&other.id, true, false, &never)
        .expect("force");
    assert!(actions.contains(&RemoveAction::Untagged("r1:x".into())));
    assert!(actions.contains(&RemoveAction::Untagged("r2:y".into())));
    assert!(actions.contains(&RemoveAction::Deleted(other.id.clone())));
}

#[test]
fn gzip_import_gets_the_plain_diff_id_and_platform_option() {
    let env = env();
    let tar = rootfs();
    let img = env
        .store
        .import(
            gzip(&tar).as_slice(),
            ImportOptions {
                platform: Some("linux/arm64".into()),
                message: "Imported from rootfs.tar.gz".into(),
                ..ImportOptions::default()
            },
        )
        .expect("import");
    assert_eq!(img.diff_ids, vec![digest(&tar)]);
    assert_eq!(img.config.architecture, "arm64");
    assert_eq!(img.config.variant.as_deref(), Some("v8"));
    assert_eq!(
        img.config.history[0].comment.as_deref(),
        Some("Imported from rootfs.tar.gz")
    );
    assert!(img.repo_tags.is_empty());
}

#[test]
fn failed_imports_leave_nothing() {
    let env = env();
    let bad_change = env.store.import(
        rootfs().as_slice(),
        ImportOptions {
            changes: vec!["RUN rm -rf /".into()],
            ..ImportOptions::default()
        },
    );
    assert_eq!(
        bad_change.expect_err("change").kind(),
        ErrorKind::InvalidArgument
    );
    let bad_platform = env.store.import(
        rootfs().as_slice(),
        ImportOptions {
            platform: Some("windows/amd64".into()),
            ..ImportOptions::default()
        },
    );
    assert_eq!(
        bad_platform.expect_err("platform").kind(),
        ErrorKind::InvalidArgument
    );
    let garbage = vec![0x42u8; 3000];
    assert!(env
        .store
        .import(garbage.as_slice(), ImportOptions::default())
        .is_err());
    let truncated = rootfs();
    assert!(env
        .store
        .import(&truncated[..700], ImportOptions::default())
        .is_err());
    assert!(env.store.list().expect("list").is_empty());
    assert_eq!(env.blob_count(), 0);
    assert_eq!(env.snapshot_count(), 0);
    assert_eq!(count(&env.root().join("content/ingest")), 0);
}

#[test]
fn ambiguous_prefix_is_an_error() {
    let env = env();
    let mut by_first: std::collections::HashMap<char, String> = Default::default();
    for i in 0..40 {
        let data = format!("file {i}");
        let img = import(&env.store, &tar_of(&[E::File("f", data.as_bytes())]), None);
        let first = hex_of(&img.id).chars().next().expect("hex");
        if let Some(prev) = by_first.insert(first, img.id.clone()) {
            assert_ne!(prev, img.id);
            let err = env
                .store
                .resolve(&first.to_string())
                .expect_err("ambiguous");
            assert!(matches!(err, ImageError::AmbiguousId { .. }), "{err}");
            return;
        }
    }
    panic!("40 imports never shared a first hex digit");
}

#[test]
fn tag_moves_and_dangling_images_are_pruned() {
    let env = env();
    let store = &env.store;
    let first = import(store, &tar_of(&[E::File("v", b"1")]), Some("app:latest"));
    let second = import(store, &tar_of(&[E::File("v", b"2")]), Some("app:latest"));
    assert_ne!(first.id, second.id);
    // The tag moved; the old image is dangling.
    assert!(store.get(&first.id).expect("first").repo_tags.is_empty());
    assert_eq!(store.resolve("app").expect("app").id, second.id);
    let third = import(store, &tar_of(&[E::File("v", b"3")]), None);

    // Dangling only, skipping the one a container uses.
    let used = |id: &str| id == third.id;
    let report = store
        .prune(false, &PruneFilters::default(), &used)
        .expect("prune");
    assert!(report
        .deleted
        .contains(&RemoveAction::Deleted(first.id.clone())));
    assert!(!report
        .deleted
        .contains(&RemoveAction::Deleted(third.id.clone())));
    assert!(report.space_reclaimed > 0);
    assert!(store.get(&second.id).is_ok() && store.get(&third.id).is_ok());

    // A label filter that does not match keeps everything.
    let filters = PruneFilters {
        label: vec!["nope=1".into()],
        ..PruneFilters::default()
    };
    assert!(store
        .prune(true, &filters, &never)
        .expect("prune")
        .deleted
        .is_empty());
    // `until` in the past keeps everything too.
    let filters = PruneFilters {
        until: Some(chrono::DateTime::UNIX_EPOCH),
        ..PruneFilters::default()
    };
    assert!(store
        .prune(true, &filters, &never)
        .expect("prune")
        .deleted
        .is_empty());

    // All: tagged images go as well.
    let report = store
        .prune(true, &PruneFilters::default(), &never)
        .expect("prune all");
    assert!(report
        .deleted
        .contains(&RemoveAction::Untagged("app:latest".into())));
    assert!(store.list().expect("list").is_empty());
    assert_eq!(env.blob_count(), 0);
    assert_eq!(env.snapshot_count(), 0);
}

#[test]
fn history_of_an_import() {
    let env = env();
    let img = import(&env.store, &rootfs(), Some("hist:1"));
    let h = env.store.history("hist:1").expect("history");
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].id, img.id);
    assert_eq!(h[0].tags, vec!["hist:1".to_string()]);
    assert_eq!(h[0].size, img.size);
    assert_eq!(h[0].comment, "Imported from -");
    assert!(env.store.disk_usage().expect("du") >= img.size);
}
