//! The online garbage collector: what it deletes, what it keeps, and that running it during pushes never
//! leaves an accepted manifest with a missing blob.

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use berth_registry::digest::Algorithm;
use berth_registry::gc::{collect, GcOptions};
use common::{image_manifest, registry};

fn opts(grace: Duration, dry_run: bool) -> GcOptions {
    GcOptions {
        grace,
        dry_run,
        ..GcOptions::default()
    }
}

#[tokio::test]
async fn collects_what_no_manifest_references() {
    let r = registry();
    let (a, _) = r.push_image("gc/app", "a", b"layer a").await;
    let (b, _) = r.push_image("gc/app", "b", b"layer b").await;
    let orphan = r.push_blob("gc/app", b"uploaded, never referenced").await;
    let del = r
        .call(
            Method::DELETE,
            &format!("/v2/gc/app/manifests/{b}"),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(del.status, StatusCode::ACCEPTED);

    // Recent blobs are spared (a push may be about to reference them).
    let kept = collect(&r.st.registry, &opts(Duration::from_secs(3600), false))
        .await
        .expect("gc");
    assert!(kept.deleted.is_empty());
    assert_eq!(kept.kept_recent, 3, "manifest b, its layer, the orphan");

    let dry = collect(&r.st.registry, &opts(Duration::ZERO, true))
        .await
        .expect("gc");
    let mut want = vec![
        b.clone(),
        Algorithm::Sha256.digest(b"layer b"),
        orphan.clone(),
    ];
    want.sort();
    assert_eq!(dry.deleted, want);
    assert_eq!(
        r.get(&format!("/v2/gc/app/blobs/{orphan}")).await.status,
        StatusCode::OK,
        "dry run"
    );

    let done = collect(&r.st.registry, &opts(Duration::ZERO, false))
        .await
        .expect("gc");
    assert_eq!(done.deleted, want);
    assert_eq!(
        done.links_removed, 2,
        "layer b and the orphan were linked to gc/app"
    );
    assert_eq!(
        r.get(&format!("/v2/gc/app/blobs/{orphan}")).await.code(),
        "BLOB_UNKNOWN"
    );
    // What is still referenced is intact.
    let m = r.get("/v2/gc/app/manifests/a").await;
    assert_eq!(m.header("docker-content-digest"), a.to_string());
    let la = Algorithm::Sha256.digest(b"layer a");
    assert_eq!(
        &r.get(&format!("/v2/gc/app/blobs/{la}")).await.body[..],
        b"layer a"
    );
    // Pushing the collected layer again works.
    r.push_image("gc/app", "b", b"layer b").await;
}

#[tokio::test]
async fn pushes_during_collection_never_accept_a_manifest_with_missing_blobs() {
    let r = registry();
    let pusher = async {
        let mut accepted = Vec::new();
        for i in 0..25u32 {
            let repo = format!("race/r{}", i % 3);
            let cfg = format!("{{\"n\":{i}}}");
            let layer = format!("layer {i}");
            let cd = r.push_blob(&repo, cfg.as_bytes()).await;
            let ld = r.push_blob(&repo, layer.as_bytes()).await;
            tokio::task::yield_now().await;
            let m = image_manifest(&cd, cfg.len(), &[(ld.clone(), layer.len())]);
            let resp = r
                .call(
                    Method::PUT,
                    &format!("/v2/{repo}/manifests/t{i}"),
                    &[("content-type", "application/vnd.oci.image.manifest.v1+json")],
                    m,
                )
                .await;
            match resp.status {
                StatusCode::CREATED => accepted.push((repo, cd, ld)),
                _ => assert_eq!(
                    resp.code(),
                    "MANIFEST_BLOB_UNKNOWN",
                    "only a collected blob may refuse"
                ),
            }
        }
        accepted
    };
    let collector = async {
        let mut runs = 0;
        for _ in 0..25 {
            collect(&r.st.registry, &opts(Duration::ZERO, false))
                .await
                .expect("gc");
            runs += 1;
            tokio::task::yield_now().await;
        }
        runs
    };
    let (accepted, runs) = tokio::join!(pusher, collector);
    assert_eq!(runs, 25);
    assert!(!accepted.is_empty());
    // A final collection: everything an accepted manifest references must survive it too.
    collect(&r.st.registry, &opts(Duration::ZERO, false))
        .await
        .expect("gc");
    for (repo, cd, ld) in accepted {
        for d in [cd, ld] {
            let got = r.get(&format!("/v2/{repo}/blobs/{d}")).await;
            assert_eq!(got.status, StatusCode::OK, "{repo} {d}");
            assert_eq!(Algorithm::Sha256.digest(&got.body), d);
        }
    }
}
