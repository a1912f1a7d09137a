//! One conformance suite per storage trait, run against every implementation.

use std::path::Path;

use bytes::Bytes;
use futures_util::TryStreamExt;

use super::{BlobStore, ByteRange, Descriptor, ManifestLink, MetadataStore, StorageError, TagLink};
use crate::digest::{Algorithm, Digest};

async fn collect(s: super::ByteStream) -> Vec<u8> {
    let chunks: Vec<Bytes> = s.try_collect().await.expect("stream blob");
    chunks.concat()
}

/// Exercises a [`BlobStore`]; `staging` is a local directory for staged files.
pub(crate) async fn blob_store(store: &dyn BlobStore, staging: &Path) {
    let data = Bytes::from_static(b"hello, registry");
    let d = Algorithm::Sha256.digest(&data);
    assert_eq!(store.stat(&d).await.expect("stat"), None);
    assert!(store.open(&d, None).await.expect("open").is_none());
    assert!(store.get(&d).await.expect("get").is_none());

    // Wrong content for a digest: rejected, nothing stored.
    let wrong = Algorithm::Sha256.digest(b"other");
    let err = store.put(&wrong, data.clone()).await.expect_err("mismatch");
    assert!(matches!(err, StorageError::DigestMismatch { .. }), "{err}");
    assert_eq!(store.stat(&wrong).await.expect("stat"), None);

    store.put(&d, data.clone()).await.expect("put");
    store
        .put(&d, data.clone())
        .await
        .expect("put again is harmless");
    assert_eq!(store.stat(&d).await.expect("stat"), Some(data.len() as u64));
    assert_eq!(
        store.get(&d).await.expect("get").as_deref(),
        Some(&data[..])
    );
    let all = collect(store.open(&d, None).await.expect("open").expect("present")).await;
    assert_eq!(all, data);
    let part = store
        .open(&d, Some(ByteRange { start: 7, end: 14 }))
        .await
        .expect("open range")
        .expect("present");
    assert_eq!(collect(part).await, b"registry");

    // Empty blob, sha512.
    let empty = Algorithm::Sha512.digest(b"");
    store.put(&empty, Bytes::new()).await.expect("put empty");
    assert_eq!(store.stat(&empty).await.expect("stat"), Some(0));
    assert!(collect(
        store
            .open(&empty, None)
            .await
            .expect("open")
            .expect("present")
    )
    .await
    .is_empty());

    // Staged files: verified before commit.
    let staged = staging.join("staged-good");
    std::fs::write(&staged, b"staged content").expect("write staged");
    let sd = Algorithm::Sha256.digest(b"staged content");
    store.commit_file(&sd, &staged, None).await.expect("commit");
    assert_eq!(
        store.get(&sd).await.expect("get").as_deref(),
        Some(&b"staged content"[..])
    );
    let bad = staging.join("staged-bad");
    std::fs::write(&bad, b"tampered").expect("write staged");
    let bd = Algorithm::Sha256.digest(b"expected");
    assert!(matches!(
        store.commit_file(&bd, &bad, None).await,
        Err(StorageError::DigestMismatch { .. })
    ));
    // A digest computed while writing is trusted for the comparison: a mismatch is refused unread.
    let pre = staging.join("staged-pre");
    std::fs::write(&pre, b"pre-hashed").expect("write staged");
    let pd = Algorithm::Sha256.digest(b"pre-hashed");
    assert!(matches!(
        store.commit_file(&pd, &pre, Some(&bd)).await,
        Err(StorageError::DigestMismatch { .. })
    ));
    assert_eq!(store.stat(&pd).await.expect("stat"), None);
    std::fs::write(&pre, b"pre-hashed").expect("write staged");
    store
        .commit_file(&pd, &pre, Some(&pd))
        .await
        .expect("commit pre-hashed");
    assert_eq!(
        store.get(&pd).await.expect("get").as_deref(),
        Some(&b"pre-hashed"[..])
    );
    assert_eq!(store.stat(&bd).await.expect("stat"), None);

    let before = store
        .modified(&d)
        .await
        .expect("modified")
        .expect("present");
    // S3 reports modification times to the second (an HTTP date): wait past the next second.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    store.touch(&d).await.expect("touch");
    let after = store
        .modified(&d)
        .await
        .expect("modified")
        .expect("present");
    assert!(after > before, "touch moves the modification time");
    assert_eq!(store.modified(&wrong).await.expect("modified"), None);
    let mut listed: Vec<Digest> = store
        .list()
        .await
        .expect("list")
        .into_iter()
        .map(|(d, _)| d)
        .collect();
    listed.sort();
    let mut want = vec![d.clone(), empty.clone(), sd.clone(), pd.clone()];
    want.sort();
    assert_eq!(listed, want);
    assert!(store.delete(&d).await.expect("delete"));
    assert!(!store.delete(&d).await.expect("delete again"));
    assert_eq!(store.stat(&d).await.expect("stat"), None);
}

/// Exercises a [`MetadataStore`].
pub(crate) async fn metadata_store(m: &dyn MetadataStore) {
    let d1 = Algorithm::Sha256.digest(b"m1");
    let d2 = Algorithm::Sha512.digest(b"m2");
    let blob = Algorithm::Sha256.digest(b"layer");
    assert!(m.repositories().await.expect("repos").is_empty());
    assert!(!m.blob_linked("a/b", &blob).await.expect("linked"));
    m.link_blob("a/b", &blob).await.expect("link");
    assert!(m.blob_linked("a/b", &blob).await.expect("linked"));
    assert!(!m.blob_linked("a", &blob).await.expect("other repo"));
    assert_eq!(
        m.blob_links("a/b").await.expect("links"),
        vec![blob.clone()]
    );
    // A repository is listed once it holds a manifest.
    assert!(m.repositories().await.expect("repos").is_empty());
    let link = ManifestLink {
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        size: 10,
        pushed: "2024-01-01T00:00:00Z".into(),
        subject: Some(d2.clone()),
    };
    m.put_manifest("a/b", &d1, &link)
        .await
        .expect("put manifest");
    m.put_manifest("a", &d2, &link).await.expect("put manifest");
    m.put_manifest("z", &d2, &link).await.expect("put manifest");
    assert_eq!(
        m.manifest("a/b", &d1).await.expect("get"),
        Some(link.clone())
    );
    assert_eq!(m.manifest("a", &d1).await.expect("get"), None);
    assert_eq!(
        m.repositories().await.expect("repos"),
        vec!["a", "a/b", "z"]
    );
    let mut ms = m.manifests("a/b").await.expect("list");
    ms.sort();
    assert_eq!(ms, vec![d1.clone()]);

    let t = TagLink {
        digest: d1.clone(),
        pushed: "2024-01-02T00:00:00Z".into(),
    };
    for tag in ["v2", "latest", "v1"] {
        m.put_tag("a/b", tag, &t).await.expect("tag");
    }
    let names: Vec<String> = m
        .tags("a/b")
        .await
        .expect("tags")
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, vec!["latest", "v1", "v2"]);
    assert_eq!(m.tag("a/b", "v1").await.expect("tag"), Some(t.clone()));
    assert!(m.delete_tag("a/b", "v1").await.expect("delete tag"));
    assert!(!m.delete_tag("a/b", "v1").await.expect("delete tag again"));
    assert_eq!(m.tag("a/b", "v1").await.expect("tag"), None);

    let r = Descriptor {
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        digest: d1.clone(),
        size: 10,
        artifact_type: Some("application/x-sig".into()),
        annotations: None,
    };
    m.add_referrer("a/b", &d2, &r).await.expect("add referrer");
    assert_eq!(
        m.referrers("a/b", &d2).await.expect("referrers"),
        vec![r.clone()]
    );
    assert!(m.referrers("a", &d2).await.expect("referrers").is_empty());
    m.remove_referrer("a/b", &d2, &d1).await.expect("remove");
    assert!(m.referrers("a/b", &d2).await.expect("referrers").is_empty());

    assert!(m.delete_manifest("a/b", &d1).await.expect("delete"));
    assert!(!m.delete_manifest("a/b", &d1).await.expect("delete again"));
    assert_eq!(m.repositories().await.expect("repos"), vec!["a", "z"]);
    assert!(m.unlink_blob("a/b", &blob).await.expect("unlink"));
    assert!(!m.blob_linked("a/b", &blob).await.expect("linked"));
}
