//! Push to Debian's `docker-registry` on 127.0.0.1, checked with skopeo and by pulling back.

mod common;

use berth_distribution::{pull, push, PullOptions, PushOptions};
use berth_image::{ImportOptions, Platform, Reference};
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_pull_back_skip_mount_and_chunked() {
    let reg = Registry::start(None);
    let s = Store::new();
    let name = format!("{}/push/a:1", reg.host());
    let imported = s
        .store
        .import(
            busybox_layer().as_slice(),
            ImportOptions {
                reference: Some(Reference::parse(&name).expect("ref")),
                changes: vec![r#"CMD ["/bin/sh"]"#.to_string()],
                platform: Some("linux/amd64".to_string()),
                ..ImportOptions::default()
            },
        )
        .expect("import");
    let cfg = tempfile::tempdir().expect("tempdir");
    let c = client(cfg.path(), 3);
    let r = Reference::parse(&name).expect("ref");

    let events = Events::default();
    let started = std::time::Instant::now();
    let out = push(&s.store, &c, &r, &PushOptions::default(), events.sink())
        .await
        .expect("push");
    eprintln!("push of a 1-layer image took {:?}", started.elapsed());
    assert_eq!((out.uploaded, out.mounted, out.existing), (2, 0, 0));
    let st = events.statuses();
    assert_eq!(
        st[0],
        format!("The push refers to repository [{}/push/a]", reg.host())
    );
    assert!(st.iter().any(|s| s.ends_with(": Pushed")), "{st:#?}");
    assert_eq!(
        st.last().map(String::as_str),
        Some(format!("1: digest: {} size: {}", out.digest, out.size).as_str())
    );

    // skopeo sees exactly the manifest we reported.
    let raw = skopeo_raw(&name);
    assert_eq!(digest(&raw), out.digest);
    let inspect = skopeo_inspect(&name);
    assert_eq!(inspect["Digest"], out.digest.as_str());
    assert_eq!(inspect["Architecture"], "amd64");
    assert_eq!(inspect["Layers"].as_array().map(Vec::len), Some(1));
    // The repo digest is recorded, as Docker does after a push.
    let img = s.store.resolve(&name).expect("resolve");
    assert!(img
        .repo_digests
        .contains(&format!("{}/push/a@{}", reg.host(), out.digest)));

    // Pulled back into another store: the same image, the same digest.
    let s2 = Store::new();
    let back = pull(
        &s2.store,
        &c,
        &r,
        &Platform::parse("linux/amd64").expect("p"),
        &PullOptions::default(),
        |_| {},
    )
    .await
    .expect("pull back");
    assert_eq!(back.image.id, imported.id);
    assert_eq!(back.digest, out.digest);
    assert!(s2
        .store
        .read_file(&back.image.id, "/bin/busybox")
        .expect("read")
        .is_some());
    // And pushed from there: the stored manifest bytes go back unchanged.
    let again = push(&s2.store, &c, &r, &PushOptions::default(), |_| {})
        .await
        .expect("push pulled image");
    assert_eq!(again.digest, out.digest);

    // Pushing again skips every blob.
    let events = Events::default();
    let again = push(&s.store, &c, &r, &PushOptions::default(), events.sink())
        .await
        .expect("push again");
    assert_eq!((again.uploaded, again.mounted, again.existing), (0, 0, 2));
    assert!(events
        .statuses()
        .iter()
        .any(|s| s.ends_with(": Layer already exists")));

    // Another repository of the same registry: blobs are mounted, not uploaded.
    let b = format!("{}/push/b:1", reg.host());
    s.store.tag(&name, &b).expect("tag");
    let events = Events::default();
    let mounted = push(
        &s.store,
        &c,
        &Reference::parse(&b).expect("ref"),
        &PushOptions::default(),
        events.sink(),
    )
    .await
    .expect("push b");
    assert_eq!((mounted.uploaded, mounted.mounted), (0, 2));
    assert!(
        events
            .statuses()
            .iter()
            .any(|s| s.ends_with(": Mounted from push/a")),
        "{:#?}",
        events.statuses()
    );
    assert_eq!(mounted.digest, out.digest);

    // Chunked upload to a third repository without mount sources.
    let s3 = Store::new();
    let other = format!("{}/chunked/c:2", reg.host());
    let img3 = s3
        .store
        .import(
            tar_of(&[E::File("data.bin", &noise(300_000, 3))]).as_slice(),
            ImportOptions {
                reference: Some(Reference::parse(&other).expect("ref")),
                platform: Some("linux/amd64".to_string()),
                ..ImportOptions::default()
            },
        )
        .expect("import");
    let chunked = push(
        &s3.store,
        &c,
        &Reference::parse(&other).expect("ref"),
        &PushOptions {
            chunk_size: Some(64 * 1024),
            ..PushOptions::default()
        },
        |_| {},
    )
    .await
    .expect("chunked push");
    assert_eq!(chunked.uploaded, 2);
    assert_eq!(skopeo_inspect(&other)["Digest"], chunked.digest.as_str());
    let s4 = Store::new();
    let back = pull(
        &s4.store,
        &c,
        &Reference::parse(&other).expect("ref"),
        &Platform::parse("linux/amd64").expect("p"),
        &PullOptions::default(),
        |_| {},
    )
    .await
    .expect("pull chunked back");
    assert_eq!(back.image.id, img3.id);
}
