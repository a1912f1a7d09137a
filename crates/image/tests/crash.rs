//! Crash leftovers are cleaned at open, and the store stays consistent.

mod common;

use std::sync::Arc;

use berth_image::{ErrorKind, ImageStore};
use common::*;

#[test]
fn reopen_cleans_what_a_crash_left() {
    let env = env();
    let img = import(&env.store, &rootfs(), Some("survivor:1"));
    let root = env.root().to_path_buf();

    // What a crash in the middle of a pull/load/GC leaves behind.
    let ingest = root.join("content/ingest/0123456789abcdef");
    std::fs::write(&ingest, b"half a blob").expect("ingest");
    let orphan_hex = "e".repeat(64);
    let tmp = root.join(format!("snapshots/{orphan_hex}.tmp-42/fs/usr"));
    std::fs::create_dir_all(&tmp).expect("tmp snapshot");
    std::fs::write(tmp.join("half"), b"x").expect("half file");
    let del = root.join(format!("snapshots/{}.del-7/fs", hex_of(&img.chain_ids[0])));
    std::fs::create_dir_all(&del).expect("del snapshot");
    // A complete snapshot and a blob whose image was never committed.
    let orphan = root.join(format!("snapshots/{orphan_hex}"));
    std::fs::create_dir_all(orphan.join("fs")).expect("orphan");
    std::fs::write(
        orphan.join("info.json"),
        format!(r#"{{"chain_id":"sha256:{orphan_hex}","diff_id":"sha256:{orphan_hex}","size":0,"diff_size":0}}"#),
    )
    .expect("orphan info");
    let orphan_blob = b"orphan blob";
    std::fs::write(
        root.join("content/blobs/sha256")
            .join(hex_of(&digest(orphan_blob))),
        orphan_blob,
    )
    .expect("orphan blob");
    let blobs_before = env.blob_count();

    let store = env.reopen();
    assert_eq!(count(&root.join("content/ingest")), 0);
    assert!(!tmp.exists() && !del.exists() && !orphan.exists());
    assert_eq!(env.blob_count(), blobs_before - 1);
    assert_eq!(env.snapshot_count(), 1);
    let again = store.resolve("survivor:1").expect("image survives");
    assert_eq!(again.id, img.id);
    assert_eq!(
        store
            .read_file(&img.id, "/etc/hostname")
            .expect("read")
            .as_deref(),
        Some(&b"box\n"[..])
    );
}

#[test]
fn a_missing_snapshot_is_unpacked_again_from_its_blob() {
    let env = env();
    let img = import(&env.store, &rootfs(), Some("heal:1"));
    std::fs::remove_dir_all(env.snapshot_dir(&img.chain_ids[0])).expect("rm snapshot");
    let dirs = env.store.layer_dirs(&img.id).expect("layer dirs");
    assert!(dirs[0].join("etc/passwd").is_file());
}

#[test]
fn a_newer_schema_is_refused() {
    let env = env();
    drop(env.store);
    let txn = env.db.begin_write().expect("write");
    {
        let def: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("berth.image.meta");
        let mut t = txn.open_table(def).expect("table");
        t.insert("schema_version", 2u64).expect("insert");
    }
    txn.commit().expect("commit");
    let err = ImageStore::open(env.dir.path(), Arc::clone(&env.db)).expect_err("schema");
    assert_eq!(err.kind(), ErrorKind::Internal);
    assert!(err.to_string().contains("schema version 2"), "{err}");
}

#[test]
fn store_is_shareable_across_threads() {
    let env = env();
    let store = env.store.clone();
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let s = store.clone();
            std::thread::spawn(move || {
                let tar = tar_of(&[E::File("f", format!("thread {i}").as_bytes())]);
                let img = import(&s, &tar, Some(&format!("t{i}:1")));
                // Dangling images to prune, so GC runs while other threads import: it must not
                // eat their blobs or snapshots before they are committed.
                for j in 0..3 {
                    let junk = tar_of(&[E::File("j", format!("junk {i} {j}").as_bytes())]);
                    import(&s, &junk, None);
                    s.prune(false, &Default::default(), &|_| false)
                        .expect("prune");
                }
                img.id
            })
        })
        .collect();
    for h in handles {
        let id = h.join().expect("thread");
        assert!(env.store.get(&id).is_ok());
        assert!(env.store.layer_dirs(&id).expect("dirs")[0]
            .join("f")
            .is_file());
    }
    assert_eq!(env.store.list().expect("list").len(), 4);
    assert_eq!(env.snapshot_count(), 4);
}
