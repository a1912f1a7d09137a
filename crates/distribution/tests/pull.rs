//! Pull against Debian's `docker-registry` on 127.0.0.1 (seeded with skopeo), directly and
//! through the test proxy (Bearer tokens, tampered blobs, cut connections).

mod common;

use berth_distribution::{pull, DistError, PullOptions};
use berth_image::{Platform, Reference};
use common::*;

fn platform(s: &str) -> Platform {
    Platform::parse(s).expect("platform")
}

/// A two-layer image (busybox, then a file) pushed as `<registry>/<repo>:<tag>`.
fn seed_two_layers(reg: &str, repo: &str, tag: &str, creds: Option<&str>) -> Built {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut layout = Layout::new(dir.path());
    let second = tar_of(&[
        E::Dir("etc"),
        E::File("etc/hello.txt", b"hello from layer two\n"),
    ]);
    let built = layout.image("amd64", &[busybox_layer(), second], "/bin/sh");
    layout.tag_manifest(&built, tag);
    skopeo_copy(dir.path(), tag, &format!("{reg}/{repo}:{tag}"), creds);
    built
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_by_tag_then_by_digest_then_up_to_date() {
    let reg = Registry::start(None);
    let built = seed_two_layers(&reg.host(), "test/two", "v1", None);
    let s = Store::new();
    let cfg = tempfile::tempdir().expect("tempdir");
    let c = client(cfg.path(), 3);
    let r = Reference::parse(&format!("{}/test/two:v1", reg.host())).expect("ref");
    let events = Events::default();
    let started = std::time::Instant::now();
    let out = pull(
        &s.store,
        &c,
        &r,
        &platform("linux/amd64"),
        &PullOptions::default(),
        events.sink(),
    )
    .await
    .expect("pull");
    eprintln!("pull of a 2-layer image took {:?}", started.elapsed());
    assert!(out.updated);
    assert_eq!(out.image.id, built.config_digest);
    assert_eq!(out.digest, built.manifest_digest);
    assert_eq!(
        out.image.repo_tags,
        vec![format!("{}/test/two:v1", reg.host())]
    );
    assert_eq!(
        out.image.repo_digests,
        vec![format!("{}/test/two@{}", reg.host(), built.manifest_digest)]
    );
    let hello = s
        .store
        .read_file(&out.image.id, "/etc/hello.txt")
        .expect("read")
        .expect("present");
    assert_eq!(hello, b"hello from layer two\n");
    assert!(s
        .store
        .read_file(&out.image.id, "/bin/busybox")
        .expect("read")
        .is_some());

    let st = events.statuses();
    let l0 = berth_distribution::short(&built.layers[0].1);
    let expected_order = [
        "v1: Pulling from test/two".to_string(),
        format!("{l0}: Pulling fs layer"),
        format!("{l0}: Downloading"),
        format!("{l0}: Verifying Checksum"),
        format!("{l0}: Download complete"),
        format!("{l0}: Extracting"),
        format!("{l0}: Pull complete"),
        format!("Digest: {}", built.manifest_digest),
        format!(
            "Status: Downloaded newer image for {}/test/two:v1",
            reg.host()
        ),
    ];
    let mut pos = 0;
    for want in &expected_order {
        let found = st[pos..].iter().position(|s| s == want);
        assert!(
            found.is_some(),
            "missing {want:?} after position {pos} in {st:#?}"
        );
        pos += found.unwrap_or(0) + 1;
    }
    assert!(
        s.partials().is_empty(),
        "no ingest leftovers: {:?}",
        s.partials()
    );

    // Again: nothing is downloaded and Docker's up-to-date status is reported.
    let again = Events::default();
    let out2 = pull(
        &s.store,
        &c,
        &r,
        &platform("linux/amd64"),
        &PullOptions::default(),
        again.sink(),
    )
    .await
    .expect("pull again");
    assert!(!out2.updated);
    let st = again.statuses();
    assert!(st.iter().all(|s| !s.contains("Downloading")), "{st:#?}");
    assert_eq!(
        st.last().map(String::as_str),
        Some(format!("Status: Image is up to date for {}/test/two:v1", reg.host()).as_str())
    );

    // By digest into a fresh store: no tag, the repo digest only.
    let s2 = Store::new();
    let by_digest = Reference::parse(&format!(
        "{}/test/two@{}",
        reg.host(),
        built.manifest_digest
    ))
    .expect("ref");
    let out3 = pull(
        &s2.store,
        &c,
        &by_digest,
        &platform("linux/amd64"),
        &PullOptions::default(),
        |_| {},
    )
    .await
    .expect("pull by digest");
    assert_eq!(out3.image.id, built.config_digest);
    assert!(out3.image.repo_tags.is_empty());
    assert_eq!(out3.image.repo_digests.len(), 1);

    // A manifest over the cap is refused before it is parsed.
    let small = PullOptions {
        max_manifest_size: 64,
        ..PullOptions::default()
    };
    let err = pull(&s2.store, &c, &r, &platform("linux/amd64"), &small, |_| {})
        .await
        .expect_err("manifest too large");
    assert!(matches!(err, DistError::TooLarge { .. }), "{err:?}");

    // Unknown tag: Docker-like message, 404 kind.
    let missing = Reference::parse(&format!("{}/test/two:nope", reg.host())).expect("ref");
    let err = pull(
        &s2.store,
        &c,
        &missing,
        &platform("linux/amd64"),
        &PullOptions::default(),
        |_| {},
    )
    .await
    .expect_err("missing tag");
    assert!(matches!(err, DistError::NotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("manifest unknown"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_with_two_platforms() {
    let reg = Registry::start(None);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut layout = Layout::new(dir.path());
    let amd = layout.image("amd64", &[tar_of(&[E::File("arch", b"amd64\n")])], "amd");
    let arm = layout.image("arm64", &[tar_of(&[E::File("arch", b"arm64\n")])], "arm");
    let index_digest = layout.tag_index(&[(&amd, "amd64"), (&arm, "arm64")], "multi");
    skopeo_copy(
        dir.path(),
        "multi",
        &format!("{}/test/multi:1", reg.host()),
        None,
    );

    let c = client(dir.path(), 3);
    let r = Reference::parse(&format!("{}/test/multi:1", reg.host())).expect("ref");
    let s = Store::new();
    let out = pull(
        &s.store,
        &c,
        &r,
        &platform("linux/arm64"),
        &PullOptions::default(),
        |_| {},
    )
    .await
    .expect("pull arm64");
    assert_eq!(out.image.id, arm.config_digest);
    assert_eq!(out.digest, index_digest, "the repo digest is the index's");
    assert_eq!(out.image.config.architecture, "arm64");
    let out = pull(
        &s.store,
        &c,
        &r,
        &platform("linux/amd64"),
        &PullOptions::default(),
        |_| {},
    )
    .await
    .expect("pull amd64");
    assert_eq!(out.image.id, amd.config_digest);
    assert_eq!(
        s.store.read_file(&out.image.id, "/arch").expect("read"),
        Some(b"amd64\n".to_vec())
    );
    let err = pull(
        &s.store,
        &c,
        &r,
        &platform("linux/s390x"),
        &PullOptions::default(),
        |_| {},
    )
    .await
    .expect_err("no s390x");
    assert_eq!(
        err.to_string(),
        "no matching manifest for linux/s390x in the manifest list entries"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_login_and_pull() {
    let reg = Registry::start(Some(("alice", "s3cret")));
    let built = seed_two_layers(&reg.host(), "private/img", "1", Some("alice:s3cret"));
    let cfg = tempfile::tempdir().expect("tempdir");
    let r = Reference::parse(&format!("{}/private/img:1", reg.host())).expect("ref");
    let s = Store::new();

    let anon = client(cfg.path(), 2);
    let err = pull(
        &s.store,
        &anon,
        &r,
        &platform("linux/amd64"),
        &PullOptions::default(),
        |_| {},
    )
    .await
    .expect_err("anonymous pull");
    assert!(matches!(err, DistError::AccessDenied { .. }), "{err:?}");
    assert!(
        err.to_string().contains("may require 'docker login'"),
        "{err}"
    );

    let err = berth_distribution::login(&anon, &reg.host(), "alice", "wrong")
        .await
        .expect_err("bad password");
    assert!(matches!(err, DistError::LoginFailed { .. }), "{err:?}");
    assert!(!cfg.path().join("config.json").exists());

    let ok = berth_distribution::login(&anon, &reg.host(), "alice", "s3cret")
        .await
        .expect("login");
    assert_eq!(ok.status, "Login Succeeded");
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cfg.path().join("config.json")).expect("config"))
            .expect("json");
    assert_eq!(doc["auths"][reg.host()]["auth"], "YWxpY2U6czNjcmV0");

    // A new client reads the stored credentials.
    let fresh = client(cfg.path(), 2);
    let out = pull(
        &s.store,
        &fresh,
        &r,
        &platform("linux/amd64"),
        &PullOptions::default(),
        |_| {},
    )
    .await
    .expect("pull with credentials");
    assert_eq!(out.image.id, built.config_digest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_token_flow() {
    let reg = Registry::start(None);
    let built = seed_two_layers(&reg.host(), "tok/img", "1", None);
    let px = proxy(
        reg.host(),
        ProxyRules {
            bearer: true,
            token_creds: Some(("bob".into(), "pw".into())),
            ..ProxyRules::default()
        },
    )
    .await;
    let cfg = tempfile::tempdir().expect("tempdir");
    let r = Reference::parse(&format!("{}/tok/img:1", px.host())).expect("ref");
    let s = Store::new();
    let err = pull(
        &s.store,
        &client(cfg.path(), 2),
        &r,
        &platform("linux/amd64"),
        &PullOptions::default(),
        |_| {},
    )
    .await
    .expect_err("anonymous token refused");
    assert!(matches!(err, DistError::AccessDenied { .. }), "{err:?}");

    let c = client(cfg.path(), 2);
    berth_distribution::login(&c, &px.host(), "bob", "pw")
        .await
        .expect("login");
    let out = pull(
        &s.store,
        &c,
        &r,
        &platform("linux/amd64"),
        &PullOptions::default(),
        |_| {},
    )
    .await
    .expect("pull with token");
    assert_eq!(out.image.id, built.config_digest);
    let seen = px.seen.lock().expect("lock").clone();
    let token_requests: Vec<_> = seen.iter().filter(|s| s.path == "/token").collect();
    assert!(
        token_requests
            .iter()
            .any(|t| t.query.contains("scope=repository%3Atok%2Fimg%3Apull")
                && t.query.contains("service=test-registry")),
        "{token_requests:#?}"
    );
    // One token for the pull's scope: every registry request after it carries it.
    let after_login = seen.iter().rposition(|s| s.path == "/token").unwrap_or(0);
    assert!(seen[after_login + 1..]
        .iter()
        .all(|s| s.authorization.as_deref() == Some("Bearer test-token")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_blob_is_rejected_and_nothing_is_stored() {
    let reg = Registry::start(None);
    let built = seed_two_layers(&reg.host(), "bad/img", "1", None);
    let bad = built.layers[1].1.clone();
    let px = proxy(
        reg.host(),
        ProxyRules {
            tamper_blob: Some(bad.clone()),
            ..ProxyRules::default()
        },
    )
    .await;
    let cfg = tempfile::tempdir().expect("tempdir");
    let r = Reference::parse(&format!("{}/bad/img:1", px.host())).expect("ref");
    let s = Store::new();
    let err = pull(
        &s.store,
        &client(cfg.path(), 3),
        &r,
        &platform("linux/amd64"),
        &PullOptions::default(),
        |_| {},
    )
    .await
    .expect_err("tampered blob");
    let text = format!("{err}: {:?}", std::error::Error::source(&err));
    assert!(text.contains("digest mismatch"), "{text}");
    assert!(err.is_bad_content());
    assert!(
        s.store.list().expect("list").is_empty(),
        "no image recorded"
    );
    assert!(!s.has_blob(&bad), "the bad blob is not stored");
    assert!(
        !s.has_blob(&built.config_digest),
        "the pull's other blobs were swept"
    );
    // Downloads cut short by the failure stay resumable; the bad blob's partial is gone.
    let bad_partial = format!("{}.partial", bad.trim_start_matches("sha256:"));
    assert!(
        s.partials().iter().all(|p| !p.ends_with(&bad_partial)),
        "the bad partial is deleted: {:?}",
        s.partials()
    );
    assert_eq!(
        std::fs::read_dir(s.dir.path().join("snapshots"))
            .expect("ls")
            .count(),
        0,
        "no snapshot"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_connection_resumes_with_range() {
    let reg = Registry::start(None);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut layout = Layout::new(dir.path());
    let big = noise(3 << 20, 7);
    let built = layout.image("amd64", &[tar_of(&[E::File("big.bin", &big)])], "x");
    layout.tag_manifest(&built, "big");
    skopeo_copy(
        dir.path(),
        "big",
        &format!("{}/cut/img:big", reg.host()),
        None,
    );
    let layer = built.layers[0].1.clone();
    let cut_at = 1 << 20;
    let px = proxy(
        reg.host(),
        ProxyRules {
            cut_blob: Some((layer.clone(), cut_at)),
            ..ProxyRules::default()
        },
    )
    .await;
    let r = Reference::parse(&format!("{}/cut/img:big", px.host())).expect("ref");

    // Within one pull: the retry asks only for the rest.
    let s = Store::new();
    let events = Events::default();
    let out = pull(
        &s.store,
        &client(dir.path(), 3),
        &r,
        &platform("linux/amd64"),
        &PullOptions::default(),
        events.sink(),
    )
    .await
    .expect("pull resumes");
    assert_eq!(out.image.id, built.config_digest);
    let ranges = px.ranges();
    assert_eq!(ranges.len(), 1, "{ranges:?}");
    let from: u64 = ranges[0]
        .trim_start_matches("bytes=")
        .trim_end_matches('-')
        .parse()
        .expect("range start");
    assert!(from > 0 && from <= cut_at as u64, "resumed from {from}");
    assert!(events.statuses().iter().any(|s| s.contains("Retrying in")));
    assert_eq!(
        s.store
            .read_file(&out.image.id, "/big.bin")
            .expect("read")
            .map(|b| b.len()),
        Some(big.len())
    );

    // Across a daemon restart: a pull with no retries fails, keeps what arrived, and the pull
    // after reopening the store resumes it.
    px.rules.lock().expect("lock").cut_blob = Some((layer.clone(), cut_at));
    px.seen.lock().expect("lock").clear();
    let mut s = Store::new();
    let err = pull(
        &s.store,
        &client(dir.path(), 1),
        &r,
        &platform("linux/amd64"),
        &PullOptions::default(),
        |_| {},
    )
    .await
    .expect_err("cut without retries");
    assert!(matches!(err, DistError::Interrupted { .. }), "{err:?}");
    assert_eq!(s.partials().len(), 1, "the partial download is kept");
    s.reopen();
    assert_eq!(s.partials().len(), 1, "open keeps resumable partials");
    let out = pull(
        &s.store,
        &client(dir.path(), 1),
        &r,
        &platform("linux/amd64"),
        &PullOptions::default(),
        |_| {},
    )
    .await
    .expect("resumed pull");
    assert_eq!(out.image.id, built.config_digest);
    let ranges = px.ranges();
    assert_eq!(ranges.len(), 1, "{ranges:?}");
    assert_ne!(ranges[0], "bytes=0-");
    assert!(s.partials().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unavailable_and_rate_limited_registry_is_retried() {
    let reg = Registry::start(None);
    let built = seed_two_layers(&reg.host(), "flaky/img", "1", None);
    let px = proxy(
        reg.host(),
        ProxyRules {
            unavailable: 3,
            ..ProxyRules::default()
        },
    )
    .await;
    let cfg = tempfile::tempdir().expect("tempdir");
    let r = Reference::parse(&format!("{}/flaky/img:1", px.host())).expect("ref");
    let s = Store::new();
    let out = pull(
        &s.store,
        &client(cfg.path(), 5),
        &r,
        &platform("linux/amd64"),
        &PullOptions::default(),
        |_| {},
    )
    .await
    .expect("pull after retries");
    assert_eq!(out.image.id, built.config_digest);

    // With fewer attempts than failures, the user gets the status and the registry's words.
    px.rules.lock().expect("lock").unavailable = 10;
    let s = Store::new();
    let err = pull(
        &s.store,
        &client(cfg.path(), 2),
        &r,
        &platform("linux/amd64"),
        &PullOptions::default(),
        |_| {},
    )
    .await
    .expect_err("still unavailable");
    assert!(err.to_string().contains("503"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_hub_names_go_to_the_mirror() {
    let reg = Registry::start(None);
    let built = seed_two_layers(&reg.host(), "library/mirrored", "1", None);
    let cfg = tempfile::tempdir().expect("tempdir");
    let c = berth_distribution::RegistryClient::new(berth_distribution::ClientOptions {
        docker_config: berth_distribution::DockerConfig::new(cfg.path().join("config.json")),
        registry_mirrors: vec![format!("http://{}", reg.host())],
        max_attempts: 2,
        retry_delay: std::time::Duration::from_millis(20),
        ..berth_distribution::ClientOptions::default()
    })
    .expect("client");
    // `mirrored:1` is docker.io/library/mirrored:1; the mirror has it, so nothing leaves loopback.
    let r = Reference::parse("mirrored:1").expect("ref");
    let s = Store::new();
    let out = pull(
        &s.store,
        &c,
        &r,
        &platform("linux/amd64"),
        &PullOptions::default(),
        |_| {},
    )
    .await
    .expect("pull through the mirror");
    assert_eq!(out.image.id, built.config_digest);
    assert_eq!(out.image.repo_tags, vec!["mirrored:1".to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_pull_is_completed_by_the_next() {
    let reg = Registry::start(None);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut layout = Layout::new(dir.path());
    let built = layout.image(
        "amd64",
        &[tar_of(&[E::File("big.bin", &noise(2 << 20, 9))])],
        "x",
    );
    layout.tag_manifest(&built, "1");
    skopeo_copy(
        dir.path(),
        "1",
        &format!("{}/ctrlc/img:1", reg.host()),
        None,
    );
    let layer = built.layers[0].1.clone();
    let px = proxy(
        reg.host(),
        ProxyRules {
            stall_blob: Some((layer.clone(), 700_000)),
            ..ProxyRules::default()
        },
    )
    .await;
    let r = Reference::parse(&format!("{}/ctrlc/img:1", px.host())).expect("ref");
    let s = Store::new();
    let c = client(dir.path(), 2);
    // "Ctrl-C": the pull future is dropped while the layer download hangs.
    let events = Events::default();
    let cancelled = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        pull(
            &s.store,
            &c,
            &r,
            &platform("linux/amd64"),
            &PullOptions::default(),
            events.sink(),
        ),
    )
    .await;
    assert!(cancelled.is_err(), "the pull was still running");
    assert!(events.statuses().iter().any(|s| s.ends_with("Downloading")));
    // The blocking unpacker notices the closed stream and stops; the partial stays.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while s
        .store
        .begin_ingest()
        .ingest(&layer, built.layers[0].0.len() as u64)
        .is_err()
    {
        assert!(std::time::Instant::now() < deadline, "ingest still busy");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(s.partials().len(), 1);
    px.seen.lock().expect("lock").clear();
    let out = pull(
        &s.store,
        &c,
        &r,
        &platform("linux/amd64"),
        &PullOptions::default(),
        |_| {},
    )
    .await
    .expect("next pull completes");
    assert_eq!(out.image.id, built.config_digest);
    let ranges = px.ranges();
    assert_eq!(ranges.len(), 1, "{ranges:?}");
    assert_ne!(ranges[0], "bytes=0-", "resumed, not restarted");
    assert!(s.partials().is_empty());
}
