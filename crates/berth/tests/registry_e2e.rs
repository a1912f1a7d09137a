//! Pull and push through berth's daemon, with berth's CLI and the real docker CLI, against `berth registry`
//! and Debian's `docker-registry` (the reference implementation) on loopback.

mod common;

use common::{text, Daemon};

#[test]
fn push_and_pull_through_berths_own_registry() {
    let d = Daemon::start();
    d.import_busybox();
    let reg = common::berth_registry();
    let name = format!("{}/lib/busybox:1", reg.addr);
    assert!(d.berth(&["tag", "busybox", &name]).status.success());
    let out = d.berth(&["push", &name]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let pushed = text(&out.stdout);
    assert!(
        pushed.contains("Pushed") && pushed.contains("1: digest: sha256:"),
        "{pushed}"
    );
    // The imported layer, stored uncompressed, went out gzip-compressed, as Docker sends layers.
    let raw = std::process::Command::new("skopeo")
        .args([
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{name}"),
        ])
        .output()
        .expect("skopeo");
    let manifest: serde_json::Value = serde_json::from_slice(&raw.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", text(&raw.stderr)));
    let layer = &manifest["layers"][0];
    assert!(
        layer["mediaType"].as_str().unwrap_or("").ends_with("gzip"),
        "{manifest}"
    );
    let diff_size: u64 = text(
        &d.berth(&["image", "inspect", "-f", "{{.Size}}", &name])
            .stdout,
    )
    .trim()
    .parse()
    .unwrap();
    assert!(layer["size"].as_u64().unwrap() < diff_size, "{manifest}");
    let id = text(&d.berth(&["images", "-q", "--no-trunc", &name]).stdout)
        .trim()
        .to_string();
    assert!(d.berth(&["rmi", &name]).status.success());
    assert!(d.berth(&["rmi", "busybox"]).status.success());
    assert!(text(&d.berth(&["images", "-q"]).stdout).trim().is_empty());
    let out = d.berth(&["pull", &name]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let pulled = text(&out.stdout);
    assert!(
        pulled.contains("Pull complete") && pulled.contains("Status: Downloaded newer image"),
        "{pulled}"
    );
    assert_eq!(
        text(&d.berth(&["images", "-q", "--no-trunc", &name]).stdout).trim(),
        id
    );
    let out = d.berth(&["pull", &name]);
    assert!(
        text(&out.stdout).contains("Image is up to date"),
        "{}",
        text(&out.stdout)
    );
    // The docker CLI through berth: push under another name (a cross-repository mount), pull, run.
    let other = format!("{}/lib/other:latest", reg.addr);
    assert!(d.docker(&["tag", &name, &other]).status.success());
    let out = d.docker(&["push", &other]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("latest: digest: sha256:"),
        "{}",
        text(&out.stdout)
    );
    assert!(d.docker(&["rmi", &other]).status.success());
    let out = d.docker(&["run", "--rm", &other, "echo", "ran"]);
    assert_eq!(text(&out.stdout), "ran\n", "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("Unable to find image"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn pull_from_the_reference_registry_and_bad_names() {
    let d = Daemon::start();
    d.import_busybox();
    let reg = common::reference_registry();
    let name = format!("{}/team/app:v1", reg.addr);
    assert!(d.berth(&["tag", "busybox", &name]).status.success());
    let out = d.docker(&["push", &name]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(d.berth(&["rmi", &name]).status.success());
    let out = d.docker(&["pull", &name]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = d.berth(&["run", "--rm", "--pull", "always", &name, "echo", "fresh"]);
    assert_eq!(text(&out.stdout), "fresh\n", "{}", text(&out.stderr));
    let out = d.berth(&["pull", &format!("{}/team/missing:v1", reg.addr)]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).to_lowercase().contains("not found")
            || text(&out.stderr).contains("unknown"),
        "{}",
        text(&out.stderr)
    );
    let out = d.berth(&[
        "run",
        "--pull",
        "never",
        "--rm",
        &format!("{}/team/missing:v1", reg.addr),
        "true",
    ]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out.stderr).contains("No such image"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn pull_all_tags_and_search_with_the_docker_cli() {
    let d = Daemon::start();
    d.import_busybox();
    let reg = common::berth_registry();
    let repo = format!("{}/tools/bb", reg.addr);
    for t in ["1", "2", "stable"] {
        let name = format!("{repo}:{t}");
        assert!(d.docker(&["tag", "busybox", &name]).status.success());
        let out = d.docker(&["push", "-q", &name]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(d.docker(&["rmi", &name]).status.success());
    }
    let out = d.docker(&["pull", "-a", &repo]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let tags = text(&d.docker(&["images", "--format", "{{.Tag}}", &repo]).stdout);
    let mut tags: Vec<&str> = tags.lines().collect();
    tags.sort();
    assert_eq!(tags, vec!["1", "2", "stable"]);
    // A plain pull names one tag (latest), never all of them.
    let out = d.berth(&["pull", &repo]);
    assert!(!out.status.success(), "no latest tag was pushed");
    let out = d.docker(&["pull", "-a", &format!("{repo}:1")]);
    assert!(!out.status.success());
    // search asks the registry's index.
    let out = d.docker(&["search", &format!("{}/bb", reg.addr)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(s.starts_with("NAME"), "{s}");
    assert!(s.contains("tools/bb"), "{s}");
    let out = d.berth(&[
        "search",
        "--format",
        "{{.Name}}",
        &format!("{}/nothing-like-this", reg.addr),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "");
}
