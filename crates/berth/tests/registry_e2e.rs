//! Pull and push through berth's daemon, with berth's CLI and the real docker CLI, against `berth registry`
//! and Debian's `docker-registry` (the reference implementation) on loopback.

mod common;

use common::{failed, ok, text, Daemon};
use std::path::Path;
use std::process::{Command, Stdio};

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

/// Debian's `docker-registry` behind TLS (a CA this test makes, client certificates required) and
/// htpasswd Basic auth, on a non-loopback address: inside a network namespace this test creates,
/// reached over a veth pair. (On loopback berth, like Docker, would skip verification.)
struct TlsRegistry {
    netns: String,
    child: Option<std::process::Child>,
    dir: tempfile::TempDir,
    addr: String,
}

impl Drop for TlsRegistry {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        // Deleting the namespace destroys its veth end, and with it the host's end.
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns])
            .status();
    }
}

fn sh(cmd: &mut Command) {
    let out = cmd.output().expect("spawn");
    assert!(out.status.success(), "{cmd:?}: {}", text(&out.stderr));
}

fn openssl(dir: &Path, args: &[&str]) {
    sh(Command::new("openssl").current_dir(dir).args(args));
}

impl TlsRegistry {
    fn start() -> TlsRegistry {
        let pid = std::process::id();
        let netns = format!("berth-tls-{pid}");
        let (host_if, ns_if) = (
            format!("btl{}h", pid % 100000),
            format!("btl{}n", pid % 100000),
        );
        let net = format!("10.98.{}", pid % 250);
        let ip = format!("{net}.2");
        let dir = tempfile::tempdir().unwrap();
        let mut reg = TlsRegistry {
            netns: netns.clone(),
            child: None,
            addr: format!("{ip}:5000"),
            dir,
        };
        sh(Command::new("ip").args(["netns", "add", &netns]));
        sh(Command::new("ip").args([
            "link", "add", &host_if, "type", "veth", "peer", "name", &ns_if, "netns", &netns,
        ]));
        sh(Command::new("ip").args(["addr", "add", &format!("{net}.1/30"), "dev", &host_if]));
        sh(Command::new("ip").args(["link", "set", &host_if, "up"]));
        sh(Command::new("ip").args([
            "-n",
            &netns,
            "addr",
            "add",
            &format!("{ip}/30"),
            "dev",
            &ns_if,
        ]));
        sh(Command::new("ip").args(["-n", &netns, "link", "set", &ns_if, "up"]));
        sh(Command::new("ip").args(["-n", &netns, "link", "set", "lo", "up"]));

        // A CA, a server certificate for the registry's address, a client certificate.
        let d = reg.dir.path();
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let mut ca = vec!["req", "-x509", "-days", "2", "-subj", "/CN=berth test CA"];
        ca.extend(ec);
        ca.extend(["-keyout", "ca.key", "-out", "ca.crt"]);
        openssl(d, &ca);
        for (name, ext) in [
            (
                "server",
                format!("subjectAltName=IP:{ip}\nextendedKeyUsage=serverAuth\n"),
            ),
            ("client", "extendedKeyUsage=clientAuth\n".to_string()),
        ] {
            std::fs::write(d.join(format!("{name}.ext")), ext).unwrap();
            let mut req = vec!["req", "-subj"];
            let subj = format!("/CN={name}");
            req.push(&subj);
            req.extend(ec);
            let (key, csr, crt, extf) = (
                format!("{name}.key"),
                format!("{name}.csr"),
                format!("{name}.cert"),
                format!("{name}.ext"),
            );
            req.extend(["-keyout", &key, "-out", &csr]);
            openssl(d, &req);
            openssl(
                d,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &csr,
                    "-CA",
                    "ca.crt",
                    "-CAkey",
                    "ca.key",
                    "-CAcreateserial",
                    "-days",
                    "2",
                    "-extfile",
                    &extf,
                    "-out",
                    &crt,
                ],
            );
        }
        let htpasswd = Command::new("htpasswd")
            .args(["-Bbn", "alice", "s3cret"])
            .output()
            .expect("htpasswd (apache2-utils)");
        std::fs::write(d.join("htpasswd"), &htpasswd.stdout).unwrap();
        let p = |f: &str| d.join(f).display().to_string();
        std::fs::write(
            d.join("config.yml"),
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
                 http:\n  addr: {}\n  tls:\n    certificate: {}\n    key: {}\n    clientcas:\n      - {}\n\
                 auth:\n  htpasswd:\n    realm: test-realm\n    path: {}\n",
                p("data"),
                reg.addr,
                p("server.cert"),
                p("server.key"),
                p("ca.crt"),
                p("htpasswd"),
            ),
        )
        .unwrap();
        let bin = ["/usr/bin/docker-registry", "/usr/sbin/docker-registry"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("Debian's docker-registry is installed (scripts/test.sh installs it)");
        // `ip netns exec` enters the namespace and execs the registry: the child is the registry.
        reg.child = Some(
            Command::new("ip")
                .args(["netns", "exec", &netns, bin, "serve"])
                .arg(d.join("config.yml"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        while std::net::TcpStream::connect(&reg.addr).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "the TLS registry at {} did not come up",
                reg.addr
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        reg
    }

    fn file(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.dir.path().join(name)).unwrap()
    }
}

#[test]
fn push_and_pull_over_tls_with_a_ca_and_client_certificate_from_certs_d() {
    let reg = TlsRegistry::start();
    let d = Daemon::start();
    d.import_busybox();
    let name = format!("{}/secure/busybox:1", reg.addr);
    ok(&d.berth(&["tag", "busybox", &name]));

    // Nothing in certs.d: the registry's certificate is not trusted, and the user is told why.
    let err = failed(&d.berth(&["push", &name]));
    assert!(
        err.contains(&reg.addr) && err.to_lowercase().contains("certificate"),
        "{err}"
    );

    // The CA in certs.d next to the daemon's configuration file, as in /etc/docker/certs.d.
    let certs = d.dir.path().join("certs.d").join(&reg.addr);
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::write(certs.join("ca.crt"), reg.file("ca.crt")).unwrap();
    // Trusted now, but the registry wants a client certificate: the handshake still fails.
    failed(&d.berth(&["push", &name]));
    // A misnamed CA (`.cert` without a key) is refused with Docker's hint, not ignored.
    std::fs::write(certs.join("extra.cert"), reg.file("ca.crt")).unwrap();
    let err = failed(&d.berth(&["push", &name]));
    assert!(
        err.contains("CA certificates must use the extension .crt"),
        "{err}"
    );
    std::fs::remove_file(certs.join("extra.cert")).unwrap();
    std::fs::write(certs.join("client.cert"), reg.file("client.cert")).unwrap();
    std::fs::write(certs.join("client.key"), reg.file("client.key")).unwrap();

    // TLS works; the registry now asks for credentials.
    let err = failed(&d.berth(&["push", &name]));
    assert!(
        err.contains("no basic auth credentials") || err.contains("denied"),
        "{err}"
    );
    let out = d.with_stdin(
        false,
        &["login", "-u", "alice", "--password-stdin", &reg.addr],
        b"s3cret\n",
    );
    assert!(ok(&out).contains("Login Succeeded"));
    let pushed = ok(&d.berth(&["push", &name]));
    assert!(pushed.contains("1: digest: sha256:"), "{pushed}");

    // skopeo, with the same directory as its --cert-dir, sees what berth pushed.
    let inspect = Command::new("skopeo")
        .args(["inspect", "--cert-dir"])
        .arg(&certs)
        .args(["--creds", "alice:s3cret", &format!("docker://{name}")])
        .output()
        .expect("skopeo");
    let inspect: serde_json::Value = serde_json::from_slice(&inspect.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", text(&inspect.stderr)));
    assert_eq!(
        inspect["Layers"].as_array().map(Vec::len),
        Some(1),
        "{inspect}"
    );

    // berth pulls it back and runs it.
    ok(&d.berth(&["rmi", &name]));
    let pulled = ok(&d.berth(&["pull", &name]));
    assert!(pulled.contains("Downloaded newer image"), "{pulled}");
    let out = d.berth(&["run", "--rm", &name, "echo", "over tls"]);
    assert_eq!(ok(&out), "over tls\n");

    // The real docker CLI, logged in through berth, pulls over the same TLS settings.
    ok(&d.berth(&["rmi", &name]));
    let out = d.with_stdin(
        true,
        &["login", "-u", "alice", "--password-stdin", &reg.addr],
        b"s3cret\n",
    );
    assert!(ok(&out).contains("Login Succeeded"));
    let out = d.docker(&["pull", &name]);
    assert!(ok(&out).contains("Downloaded newer image"));
}
