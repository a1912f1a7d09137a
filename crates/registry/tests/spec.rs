//! The distribution spec's endpoints and corner cases, through the axum app in process.

mod common;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use berth_registry::digest::Algorithm;
use bytes::Bytes;
use common::{image_manifest, registry, registry_with};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

#[tokio::test]
async fn base_endpoint_answers_with_the_api_version_header() {
    let r = registry();
    let resp = r.get("/v2/").await;
    assert_eq!(resp.status, StatusCode::OK);
    assert_eq!(
        resp.header("docker-distribution-api-version"),
        "registry/2.0"
    );
    assert_eq!(r.get("/v2/nope/nope").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn blob_get_head_and_ranges() {
    let r = registry();
    let d = r.push_blob("lib/x", b"0123456789").await;
    let head = r
        .call(
            Method::HEAD,
            &format!("/v2/lib/x/blobs/{d}"),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(head.status, StatusCode::OK);
    assert_eq!(head.header("content-length"), "10");
    assert_eq!(head.header("docker-content-digest"), d.to_string());
    assert!(head.body.is_empty());
    let get = r.get(&format!("/v2/lib/x/blobs/{d}")).await;
    assert_eq!(&get.body[..], b"0123456789");
    let part = r
        .call(
            Method::GET,
            &format!("/v2/lib/x/blobs/{d}"),
            &[("range", "bytes=2-5")],
            Body::empty(),
        )
        .await;
    assert_eq!(part.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(&part.body[..], b"2345");
    assert_eq!(part.header("content-range"), "bytes 2-5/10");
    let tail = r
        .call(
            Method::GET,
            &format!("/v2/lib/x/blobs/{d}"),
            &[("range", "bytes=-3")],
            Body::empty(),
        )
        .await;
    assert_eq!(&tail.body[..], b"789");
    let open = r
        .call(
            Method::GET,
            &format!("/v2/lib/x/blobs/{d}"),
            &[("range", "bytes=8-")],
            Body::empty(),
        )
        .await;
    assert_eq!(&open.body[..], b"89");
    let bad = r
        .call(
            Method::GET,
            &format!("/v2/lib/x/blobs/{d}"),
            &[("range", "bytes=20-30")],
            Body::empty(),
        )
        .await;
    assert_eq!(bad.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(bad.header("content-range"), "bytes */10");
    // Content-addressed but repository-scoped: another repository does not see it.
    let other = r.get(&format!("/v2/lib/y/blobs/{d}")).await;
    assert_eq!(
        (other.status, other.code().as_str()),
        (StatusCode::NOT_FOUND, "BLOB_UNKNOWN")
    );
    let bad_digest = r.get("/v2/lib/x/blobs/sha256:nothex").await;
    assert_eq!(
        (bad_digest.status, bad_digest.code().as_str()),
        (StatusCode::BAD_REQUEST, "DIGEST_INVALID")
    );
}

#[tokio::test]
async fn wrong_digest_on_put_stores_nothing() {
    let r = registry();
    let post = r
        .call(Method::POST, "/v2/a/blobs/uploads/", &[], Body::empty())
        .await;
    let loc = post.header("location");
    let claimed = Algorithm::Sha256.digest(b"what the client claims");
    let put = r
        .call(
            Method::PUT,
            &format!("{loc}?digest={claimed}"),
            &[],
            "other bytes",
        )
        .await;
    assert_eq!(
        (put.status, put.code().as_str()),
        (StatusCode::BAD_REQUEST, "DIGEST_INVALID")
    );
    assert_eq!(
        r.get(&format!("/v2/a/blobs/{claimed}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert!(!r
        .dir
        .path()
        .join("blobs/sha256")
        .join(&claimed.hex()[..2])
        .join(claimed.hex())
        .exists());
    // The session is over; the next push works.
    assert_eq!(r.get(&loc).await.code(), "BLOB_UPLOAD_UNKNOWN");
    r.push_blob("a", b"what the client claims").await;
}

#[tokio::test]
async fn single_post_empty_and_sha512_blobs() {
    let r = registry();
    let d = Algorithm::Sha256.digest(b"one shot");
    let resp = r
        .call(
            Method::POST,
            &format!("/v2/a/blobs/uploads/?digest={d}"),
            &[],
            "one shot",
        )
        .await;
    assert_eq!(resp.status, StatusCode::CREATED);
    assert_eq!(resp.header("location"), format!("/v2/a/blobs/{d}"));
    let empty = r.push_blob("a", b"").await;
    let head = r
        .call(
            Method::HEAD,
            &format!("/v2/a/blobs/{empty}"),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(
        (head.status, head.header("content-length").as_str()),
        (StatusCode::OK, "0")
    );
    assert!(r.get(&format!("/v2/a/blobs/{empty}")).await.body.is_empty());
    let d512 = Algorithm::Sha512.digest(b"long digest");
    let resp = r
        .call(
            Method::POST,
            &format!("/v2/a/blobs/uploads/?digest={d512}"),
            &[],
            "long digest",
        )
        .await;
    assert_eq!(resp.status, StatusCode::CREATED, "{:?}", resp.body);
    assert_eq!(
        &r.get(&format!("/v2/a/blobs/{d512}")).await.body[..],
        b"long digest"
    );
}

#[tokio::test]
async fn chunked_upload_in_order_out_of_order_status_and_cancel() {
    let r = registry();
    let post = r
        .call(Method::POST, "/v2/c/blobs/uploads/", &[], Body::empty())
        .await;
    assert_eq!(post.status, StatusCode::ACCEPTED);
    let loc = post.header("location");
    let id = post.header("docker-upload-uuid");
    assert!(loc.ends_with(&id));
    let p1 = r
        .call(
            Method::PATCH,
            &loc,
            &[
                ("content-range", "0-4"),
                ("content-type", "application/octet-stream"),
            ],
            "hello",
        )
        .await;
    assert_eq!(
        (p1.status, p1.header("range").as_str()),
        (StatusCode::ACCEPTED, "0-4")
    );
    let ooo = r
        .call(Method::PATCH, &loc, &[("content-range", "10-14")], "later")
        .await;
    assert_eq!(ooo.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(ooo.header("range"), "0-4");
    let status = r.get(&loc).await;
    assert_eq!(
        (status.status, status.header("range").as_str()),
        (StatusCode::NO_CONTENT, "0-4")
    );
    let p2 = r
        .call(Method::PATCH, &loc, &[("content-range", "5-10")], " world")
        .await;
    assert_eq!(p2.header("range"), "0-10");
    let d = Algorithm::Sha256.digest(b"hello world");
    let put = r
        .call(
            Method::PUT,
            &format!("{loc}?digest={d}"),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(put.status, StatusCode::CREATED);
    assert_eq!(
        &r.get(&format!("/v2/c/blobs/{d}")).await.body[..],
        b"hello world"
    );

    // Cancel, and unknown sessions.
    let post = r
        .call(Method::POST, "/v2/c/blobs/uploads/", &[], Body::empty())
        .await;
    let loc = post.header("location");
    assert_eq!(
        r.call(Method::DELETE, &loc, &[], Body::empty())
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let gone = r.call(Method::PATCH, &loc, &[], "x").await;
    assert_eq!(
        (gone.status, gone.code().as_str()),
        (StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN")
    );
    let bogus = r
        .call(
            Method::PATCH,
            "/v2/c/blobs/uploads/0123456789abcdef0123456789abcdef",
            &[],
            "x",
        )
        .await;
    assert_eq!(bogus.code(), "BLOB_UPLOAD_UNKNOWN");
    let traversal = r.get("/v2/c/blobs/uploads/..%2f..%2fetc").await;
    assert_eq!(traversal.code(), "BLOB_UPLOAD_UNKNOWN");
    // A session belongs to its repository.
    let post = r
        .call(Method::POST, "/v2/c/blobs/uploads/", &[], Body::empty())
        .await;
    let other = post.header("location").replace("/v2/c/", "/v2/d/");
    assert_eq!(r.get(&other).await.code(), "BLOB_UPLOAD_UNKNOWN");
}

#[tokio::test]
async fn a_client_that_disconnects_mid_upload_leaves_nothing_served() {
    let r = registry();
    let post = r
        .call(Method::POST, "/v2/a/blobs/uploads/", &[], Body::empty())
        .await;
    let loc = post.header("location");
    let failing = futures_util::stream::iter(vec![
        Ok::<_, std::io::Error>(Bytes::from_static(b"first part ")),
        Err(std::io::Error::other("connection reset")),
    ]);
    let resp = r
        .call(Method::PATCH, &loc, &[], Body::from_stream(failing))
        .await;
    assert_eq!(resp.code(), "BLOB_UPLOAD_INVALID");
    // The client can resume where the server says it is.
    assert_eq!(r.get(&loc).await.header("range"), "0-10");
    let d = Algorithm::Sha256.digest(b"first part second part");
    let put = r
        .call(
            Method::PUT,
            &format!("{loc}?digest={d}"),
            &[("content-range", "11-21")],
            "second part",
        )
        .await;
    assert_eq!(put.status, StatusCode::CREATED, "{:?}", put.body);
    assert_eq!(
        &r.get(&format!("/v2/a/blobs/{d}")).await.body[..],
        b"first part second part"
    );
}

#[tokio::test]
async fn two_clients_pushing_the_same_blob_at_once() {
    let r = registry();
    let data = vec![7u8; 3 << 20];
    let (a, b) = tokio::join!(r.push_blob("p/one", &data), r.push_blob("p/two", &data));
    assert_eq!(a, b);
    for repo in ["p/one", "p/two"] {
        let got = r.get(&format!("/v2/{repo}/blobs/{a}")).await;
        assert_eq!(got.body.len(), data.len());
        assert_eq!(Algorithm::Sha256.digest(&got.body), a);
    }
}

#[tokio::test]
async fn cross_repository_mount_or_fallback() {
    let r = registry();
    let d = r.push_blob("src", b"shared layer").await;
    let m = r
        .call(
            Method::POST,
            &format!("/v2/dst/blobs/uploads/?mount={d}&from=src"),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(m.status, StatusCode::CREATED);
    assert_eq!(m.header("location"), format!("/v2/dst/blobs/{d}"));
    assert_eq!(
        &r.get(&format!("/v2/dst/blobs/{d}")).await.body[..],
        b"shared layer"
    );
    let missing = Algorithm::Sha256.digest(b"absent");
    let f = r
        .call(
            Method::POST,
            &format!("/v2/dst/blobs/uploads/?mount={missing}&from=src"),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(f.status, StatusCode::ACCEPTED);
    assert!(f.header("location").starts_with("/v2/dst/blobs/uploads/"));
}

#[tokio::test]
async fn manifests_by_tag_and_digest_keep_their_media_type() {
    let r = registry();
    let (d, body) = r.push_image("lib/app", "v1", b"layer").await;
    for reference in ["v1".to_string(), d.to_string()] {
        let g = r.get(&format!("/v2/lib/app/manifests/{reference}")).await;
        assert_eq!(g.status, StatusCode::OK);
        assert_eq!(g.header("content-type"), OCI_MANIFEST);
        assert_eq!(g.header("docker-content-digest"), d.to_string());
        assert_eq!(g.body, body);
        let h = r
            .call(
                Method::HEAD,
                &format!("/v2/lib/app/manifests/{reference}"),
                &[],
                Body::empty(),
            )
            .await;
        assert_eq!(h.header("content-length"), body.len().to_string());
        assert!(h.body.is_empty());
    }
    // A Docker schema 2 manifest is served as Docker schema 2.
    let cfg = r.push_blob("lib/app", b"{}").await;
    let mut v: serde_json::Value =
        serde_json::from_slice(&image_manifest(&cfg, 2, &[])).expect("json");
    v["mediaType"] = "application/vnd.docker.distribution.manifest.v2+json".into();
    let docker = serde_json::to_vec(&v).expect("json");
    let ct = "application/vnd.docker.distribution.manifest.v2+json";
    let p = r
        .call(
            Method::PUT,
            "/v2/lib/app/manifests/docker",
            &[("content-type", ct)],
            docker,
        )
        .await;
    assert_eq!(p.status, StatusCode::CREATED);
    assert_eq!(
        r.get("/v2/lib/app/manifests/docker")
            .await
            .header("content-type"),
        ct
    );
    let unknown = r.get("/v2/lib/app/manifests/nope").await;
    assert_eq!(
        (unknown.status, unknown.code().as_str()),
        (StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN")
    );
}

#[tokio::test]
async fn bad_manifests_are_rejected() {
    let r = registry();
    let put = |reference: &'static str, ct: &'static str, body: Bytes| {
        let r = &r;
        async move {
            r.call(
                Method::PUT,
                &format!("/v2/m/manifests/{reference}"),
                &[("content-type", ct)],
                body,
            )
            .await
        }
    };
    // Missing referenced blobs.
    let ghost = Algorithm::Sha256.digest(b"ghost");
    let resp = put("t", OCI_MANIFEST, image_manifest(&ghost, 5, &[])).await;
    assert_eq!(
        (resp.status, resp.code().as_str()),
        (StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN")
    );
    let cfg = r.push_blob("m", b"{}").await;
    let resp = put(
        "t",
        OCI_MANIFEST,
        image_manifest(&cfg, 2, &[(ghost.clone(), 5)]),
    )
    .await;
    assert_eq!(resp.code(), "MANIFEST_BLOB_UNKNOWN");
    // Malformed JSON, wrong content type, wrong digest, bad tag.
    assert_eq!(
        put(
            "t",
            OCI_MANIFEST,
            Bytes::from_static(b"{\"schemaVersion\":")
        )
        .await
        .code(),
        "MANIFEST_INVALID"
    );
    let good = image_manifest(&cfg, 2, &[]);
    assert_eq!(
        put("t", "text/plain", good.clone()).await.code(),
        "MANIFEST_INVALID"
    );
    let docker = "application/vnd.docker.distribution.manifest.v2+json";
    assert_eq!(
        put("t", docker, good.clone()).await.code(),
        "MANIFEST_INVALID",
        "header contradicts body"
    );
    let wrong = Algorithm::Sha256.digest(b"not this");
    let resp = r
        .call(
            Method::PUT,
            &format!("/v2/m/manifests/{wrong}"),
            &[("content-type", OCI_MANIFEST)],
            good.clone(),
        )
        .await;
    assert_eq!(resp.code(), "DIGEST_INVALID");
    assert_eq!(
        put("-bad", OCI_MANIFEST, good.clone()).await.code(),
        "TAG_INVALID"
    );
    // Oversized.
    let big = Bytes::from(vec![b' '; (4 << 20) + 1]);
    assert_eq!(
        put("t", OCI_MANIFEST, big).await.status,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    // Nothing of it was stored.
    assert_eq!(r.get("/v2/m/manifests/t").await.code(), "MANIFEST_UNKNOWN");
    assert_eq!(
        put("t", OCI_MANIFEST, good).await.status,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn a_reference_that_is_no_tag_names_no_manifest() {
    // GET and HEAD of a manifest under an invalid tag find nothing (404, as the OCI conformance suite
    // checks with `.INVALID_MANIFEST_NAME`); pushing to it is refused as an invalid tag.
    let r = registry();
    let (_, body) = r.push_image("lib/app", "v1", b"layer").await;
    let path = "/v2/lib/app/manifests/.INVALID_MANIFEST_NAME";
    let get = r.get(path).await;
    assert_eq!(
        (get.status, get.code().as_str()),
        (StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN")
    );
    let head = r.call(Method::HEAD, path, &[], Body::empty()).await;
    assert_eq!(head.status, StatusCode::NOT_FOUND);
    assert!(head.body.is_empty());
    let put = r
        .call(Method::PUT, path, &[("content-type", OCI_MANIFEST)], body)
        .await;
    assert_eq!(
        (put.status, put.code().as_str()),
        (StatusCode::BAD_REQUEST, "TAG_INVALID")
    );
    // A malformed digest is still a bad request.
    let bad = r.get("/v2/lib/app/manifests/sha256:totallywrong").await;
    assert_eq!(
        (bad.status, bad.code().as_str()),
        (StatusCode::BAD_REQUEST, "DIGEST_INVALID")
    );
}

#[tokio::test]
async fn invalid_names_never_touch_the_store() {
    let r = registry();
    for path in [
        "/v2/UPPER/tags/list",
        "/v2/a/../b/tags/list",
        "/v2/a/%2e%2e/b/manifests/latest",
        "/v2/_layers/manifests/latest",
        "/v2/a//b/blobs/uploads/",
    ] {
        let resp = r.get(path).await;
        assert_eq!(
            (resp.status, resp.code().as_str()),
            (StatusCode::BAD_REQUEST, "NAME_INVALID"),
            "{path}"
        );
    }
    let post = r
        .call(
            Method::POST,
            "/v2/a/../../etc/blobs/uploads/",
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(post.code(), "NAME_INVALID");
    assert!(!r.dir.path().join("etc").exists());
}

#[tokio::test]
async fn indexes_need_their_manifests_and_artifacts_get_referrers() {
    let r = registry();
    let (img, img_body) = r.push_image("art", "v1", b"layer").await;
    let ghost = Algorithm::Sha256.digest(b"ghost manifest");
    let index = |children: &[(String, usize)]| {
        let m: Vec<serde_json::Value> = children
            .iter()
            .map(|(d, s)| {
                serde_json::json!({"mediaType": OCI_MANIFEST, "digest": d, "size": s,
                "platform": {"os": "linux", "architecture": "arm64"}})
            })
            .collect();
        serde_json::to_vec(
            &serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": m}),
        )
        .expect("json")
    };
    let bad = r
        .call(
            Method::PUT,
            "/v2/art/manifests/multi",
            &[("content-type", OCI_INDEX)],
            index(&[(ghost.to_string(), 9)]),
        )
        .await;
    assert_eq!(bad.code(), "MANIFEST_BLOB_UNKNOWN");
    let good = r
        .call(
            Method::PUT,
            "/v2/art/manifests/multi",
            &[("content-type", OCI_INDEX)],
            index(&[(img.to_string(), img_body.len())]),
        )
        .await;
    assert_eq!(good.status, StatusCode::CREATED);
    assert_eq!(
        r.get("/v2/art/manifests/multi")
            .await
            .header("content-type"),
        OCI_INDEX
    );

    // An artifact (a signature) with a subject; the empty config blob.
    let empty_cfg = r.push_blob("art", b"{}").await;
    let sig = r.push_blob("art", b"signature").await;
    let artifact = |at: &str| {
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": at,
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty_cfg, "size": 2},
            "layers": [{"mediaType": "application/octet-stream", "digest": sig, "size": 9}],
            "subject": {"mediaType": OCI_MANIFEST, "digest": img, "size": img_body.len()},
            "annotations": {"org.example": "yes"},
        }))
        .expect("json")
    };
    let a1 = artifact("application/vnd.example.sig");
    let a1d = Algorithm::Sha256.digest(&a1);
    let put = r
        .call(
            Method::PUT,
            &format!("/v2/art/manifests/{a1d}"),
            &[("content-type", OCI_MANIFEST)],
            a1,
        )
        .await;
    assert_eq!(put.status, StatusCode::CREATED, "{:?}", put.body);
    assert_eq!(put.header("oci-subject"), img.to_string());
    let a2 = artifact("application/vnd.example.sbom");
    let a2d = Algorithm::Sha256.digest(&a2);
    r.call(
        Method::PUT,
        &format!("/v2/art/manifests/{a2d}"),
        &[("content-type", OCI_MANIFEST)],
        a2,
    )
    .await;

    let all = r.get(&format!("/v2/art/referrers/{img}")).await;
    assert_eq!(all.header("content-type"), OCI_INDEX);
    let list = all.json()["manifests"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(list.len(), 2, "{}", all.json());
    assert!(list
        .iter()
        .all(|m| m["annotations"]["org.example"] == "yes"));
    let filtered = r
        .get(&format!(
            "/v2/art/referrers/{img}?artifactType=application/vnd.example.sbom"
        ))
        .await;
    assert_eq!(filtered.header("oci-filters-applied"), "artifactType");
    let list = filtered.json()["manifests"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["digest"], a2d.to_string());
    // No referrers: an empty index, not an error.
    let none = r.get(&format!("/v2/art/referrers/{ghost}")).await;
    assert_eq!(
        (
            none.status,
            none.json()["manifests"].as_array().map(Vec::len)
        ),
        (StatusCode::OK, Some(0))
    );
    // Deleting a referrer removes it from the list.
    r.call(
        Method::DELETE,
        &format!("/v2/art/manifests/{a1d}"),
        &[],
        Body::empty(),
    )
    .await;
    let after = r.get(&format!("/v2/art/referrers/{img}")).await;
    assert_eq!(after.json()["manifests"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn tags_and_catalog_paginate() {
    let r = registry();
    for t in ["c", "a", "b", "d"] {
        r.push_image("pg", t, b"l").await;
    }
    for repo in ["z", "y/x"] {
        r.push_image(repo, "latest", b"l").await;
    }
    let all = r.get("/v2/pg/tags/list").await;
    assert_eq!(
        all.json(),
        serde_json::json!({"name": "pg", "tags": ["a", "b", "c", "d"]})
    );
    let p1 = r.get("/v2/pg/tags/list?n=2").await;
    assert_eq!(p1.json()["tags"], serde_json::json!(["a", "b"]));
    assert_eq!(
        p1.header("link"),
        "</v2/pg/tags/list?n=2&last=b>; rel=\"next\""
    );
    let p2 = r.get("/v2/pg/tags/list?n=2&last=b").await;
    assert_eq!(p2.json()["tags"], serde_json::json!(["c", "d"]));
    assert_eq!(p2.header("link"), "");
    assert_eq!(
        r.get("/v2/pg/tags/list?n=0").await.json()["tags"],
        serde_json::json!([])
    );
    assert_eq!(
        r.get("/v2/pg/tags/list?n=x").await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(r.get("/v2/unknown/tags/list").await.code(), "NAME_UNKNOWN");
    let c = r.get("/v2/_catalog?n=2").await;
    assert_eq!(c.json()["repositories"], serde_json::json!(["pg", "y/x"]));
    assert!(c.header("link").contains("last=y%2Fx"));
    let c2 = r.get("/v2/_catalog?n=2&last=y%2Fx").await;
    assert_eq!(c2.json()["repositories"], serde_json::json!(["z"]));
}

#[tokio::test]
async fn deletes_and_their_switch() {
    let r = registry();
    let (d, _) = r.push_image("del", "v1", b"layer-del").await;
    r.call(
        Method::PUT,
        "/v2/del/manifests/v2",
        &[("content-type", OCI_MANIFEST)],
        r.get("/v2/del/manifests/v1").await.body,
    )
    .await;
    // Delete a tag only.
    assert_eq!(
        r.call(Method::DELETE, "/v2/del/manifests/v2", &[], Body::empty())
            .await
            .status,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        r.get("/v2/del/manifests/v2").await.code(),
        "MANIFEST_UNKNOWN"
    );
    assert_eq!(r.get("/v2/del/manifests/v1").await.status, StatusCode::OK);
    // Delete the manifest: its tags go too.
    let del = r
        .call(
            Method::DELETE,
            &format!("/v2/del/manifests/{d}"),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(del.status, StatusCode::ACCEPTED);
    assert_eq!(
        r.get("/v2/del/manifests/v1").await.code(),
        "MANIFEST_UNKNOWN"
    );
    assert_eq!(
        r.get(&format!("/v2/del/manifests/{d}")).await.code(),
        "MANIFEST_UNKNOWN"
    );
    let again = r
        .call(
            Method::DELETE,
            &format!("/v2/del/manifests/{d}"),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(again.code(), "MANIFEST_UNKNOWN");
    // Blobs.
    let b = Algorithm::Sha256.digest(b"layer-del");
    assert_eq!(
        r.call(
            Method::DELETE,
            &format!("/v2/del/blobs/{b}"),
            &[],
            Body::empty()
        )
        .await
        .status,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        r.get(&format!("/v2/del/blobs/{b}")).await.code(),
        "BLOB_UNKNOWN"
    );

    let ro = registry_with(|c| c.delete_enabled = false);
    let (d, _) = ro.push_image("del", "v1", b"x").await;
    let refused = ro
        .call(
            Method::DELETE,
            &format!("/v2/del/manifests/{d}"),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(
        (refused.status, refused.code().as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED")
    );
    assert_eq!(
        ro.get(&format!("/v2/del/manifests/{d}")).await.status,
        StatusCode::OK
    );
}
