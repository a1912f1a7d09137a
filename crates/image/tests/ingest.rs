//! The pull-side API: resumable ingest, streaming unpack with digest checks, bomb limits, and
//! committing pulled images (tag plus repo digest) that push sends back byte for byte.

mod common;

use std::io::Write;

use berth_image::{
    ErrorKind, ImageError, LayerTarget, PulledImage, PulledLayer, Reference, UnpackLimits,
};
use common::*;

struct Pulled {
    tar: Vec<u8>,
    blob: Vec<u8>,
    config: Vec<u8>,
    manifest: Vec<u8>,
}

fn one_layer() -> Pulled {
    let tar = tar_of(&[E::Dir("etc"), E::File("etc/motd", b"pulled\n")]);
    let blob = gzip(&tar);
    let config = config_for(&[&tar], "2024-01-01T00:00:00Z");
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest(&blob), "size": blob.len()}],
    }))
    .expect("manifest");
    Pulled {
        tar,
        blob,
        config,
        manifest,
    }
}

fn target(p: &Pulled) -> LayerTarget {
    LayerTarget::for_image(&[(digest(&p.blob), p.blob.len() as u64)], &[digest(&p.tar)])
        .expect("targets")
        .remove(0)
}

#[test]
fn resumed_ingest_unpacks_commits_and_pushes_the_same_bytes() {
    let env = env();
    let p = one_layer();
    let t = target(&p);
    let half = p.blob.len() / 2;
    {
        let session = env.store.begin_ingest();
        let mut ing = session.ingest(&t.digest, t.size).expect("ingest");
        assert_eq!(ing.offset(), 0);
        ing.write_all(&p.blob[..half]).expect("write");
        // A second writer of the same blob is refused while this one is open.
        assert!(matches!(
            session.ingest(&t.digest, t.size),
            Err(ImageError::IngestBusy { .. })
        ));
    }
    // A daemon restart keeps the partial.
    let store = env.reopen();
    let session = store.begin_ingest();
    let ing = session.ingest(&t.digest, t.size).expect("resume");
    assert_eq!(ing.offset(), half as u64);
    let info = session
        .unpack_stream(ing, &t, &p.blob[half..], &UnpackLimits::default())
        .expect("unpack");
    assert_eq!(info.diff_size, p.tar.len() as u64);
    assert!(store.has_blob(&t.digest).expect("has"));
    let reference = Reference::parse("registry.test/x/y:1").expect("ref");
    let pulled = PulledImage {
        reference: reference.clone(),
        repo_digest: digest(&p.manifest),
        manifest: p.manifest.clone(),
        manifest_media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        config: p.config.clone(),
        layers: vec![PulledLayer {
            digest: t.digest.clone(),
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
            size: t.size,
        }],
    };
    let c = session.commit_pulled(&pulled).expect("commit");
    assert!(c.updated);
    assert_eq!(c.image.repo_tags, vec!["registry.test/x/y:1".to_string()]);
    assert_eq!(
        c.image.repo_digests,
        vec![format!("registry.test/x/y@{}", digest(&p.manifest))]
    );
    drop(session);
    assert_eq!(
        store.read_file(&c.image.id, "/etc/motd").expect("read"),
        Some(b"pulled\n".to_vec())
    );
    let again = store.begin_ingest().commit_pulled(&pulled).expect("again");
    assert!(!again.updated, "same image: up to date");
    let pm = store
        .push_manifest("registry.test/x/y:1")
        .expect("push manifest");
    assert_eq!(pm.bytes, p.manifest);
    assert_eq!(pm.digest, digest(&p.manifest));
    assert_eq!(pm.layers[0].digest, t.digest);
    // Survives GC and a restart: everything is referenced.
    let store = env.reopen();
    assert!(store.has_blob(&t.digest).expect("has"));
    assert_eq!(count(&env.root().join("content/ingest")), 0);
}

#[test]
fn wrong_blob_digest_leaves_nothing() {
    let env = env();
    let p = one_layer();
    let t = target(&p);
    let mut tampered = p.blob.clone();
    tampered[4] ^= 0xff; // gzip mtime: same tar inside, another digest
    let session = env.store.begin_ingest();
    let ing = session.ingest(&t.digest, t.size).expect("ingest");
    let err = session
        .unpack_stream(ing, &t, tampered.as_slice(), &UnpackLimits::default())
        .expect_err("digest mismatch");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(format!("{err:?}").contains("DigestMismatch"), "{err:?}");
    drop(session);
    assert!(!env.store.has_blob(&t.digest).expect("has"));
    assert_eq!(
        count(&env.root().join("content/ingest")),
        0,
        "bad partial removed"
    );
    assert_eq!(env.snapshot_count(), 0, "no snapshot published");
}

#[test]
fn decompression_bomb_is_stopped() {
    let env = env();
    let zeros = vec![0u8; 32 << 20];
    let tar = tar_of(&[E::File("zeros", &zeros)]);
    let blob = gzip(&tar);
    let t = LayerTarget::for_image(&[(digest(&blob), blob.len() as u64)], &[digest(&tar)])
        .expect("targets")
        .remove(0);
    let limits = UnpackLimits {
        max_ratio: 50,
        ratio_slack: 1 << 20,
        ..UnpackLimits::default()
    };
    let session = env.store.begin_ingest();
    let ing = session.ingest(&t.digest, t.size).expect("ingest");
    let err = session
        .unpack_stream(ing, &t, blob.as_slice(), &limits)
        .expect_err("bomb");
    assert!(
        matches!(err, ImageError::DecompressionBomb { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("decompression bomb"));
    drop(session);
    assert_eq!(env.snapshot_count(), 0);
}

#[test]
fn stored_blob_unpacks_without_download() {
    let env = env();
    let p = one_layer();
    let t = target(&p);
    let session = env.store.begin_ingest();
    let mut ing = session.ingest(&t.digest, t.size).expect("ingest");
    ing.write_all(&p.blob).expect("write");
    ing.commit().expect("commit blob");
    let info = session
        .unpack_stored(&t, &UnpackLimits::default())
        .expect("unpack stored");
    assert_eq!(info.diff_size, p.tar.len() as u64);
    assert!(session.has_snapshot(&t.chain_id).expect("has"));
    // A blob longer than its descriptor is refused as it arrives, and its partial dropped.
    let other = gzip(b"x");
    let d = digest(&other);
    let mut ing = session.ingest(&d, 1).expect("ingest");
    assert!(ing.write_all(&other).is_err());
    drop(ing);
    assert_eq!(count(&env.root().join("content/ingest")), 0);
}
