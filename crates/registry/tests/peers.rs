//! Real peers against a real server process: skopeo (copy in and out, inspect, list-tags, delete) in the
//! clear, with token auth and over TLS; a server killed with SIGKILL mid-push; graceful shutdown finishing
//! an upload in flight; `berth-registry gc`; two replicas sharing one S3 bucket (moto's S3 server); podman
//! logging in, pushing and pulling through the token flow.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};

use berth_registry::digest::Algorithm;
use common::image::{layer, oci_layout};
use common::proc::{connect, read_response, request, send_head, Server};

fn skopeo(args: &[&str]) -> Output {
    Command::new("skopeo")
        .arg("--command-timeout")
        .arg("60s")
        .args(args)
        .output()
        .expect("skopeo must be installed (apt-get install skopeo)")
}

fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "skopeo failed: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or(serde_json::Value::Null)
}

/// Every blob of an OCI layout matches its name.
fn verify_layout(dir: &Path) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(dir.join("blobs/sha256")).expect("blobs") {
        let e = e.expect("entry");
        let data = std::fs::read(e.path()).expect("read");
        assert_eq!(
            Algorithm::Sha256.digest(&data).hex(),
            e.file_name().to_string_lossy()
        );
        n += 1;
    }
    n
}

#[test]
fn skopeo_copy_in_and_out_inspect_list_tags_delete() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let srv = Server::start(&tmp.path().join("root"), &["--delete-enabled"]);
    let a = &srv.addr;
    let v1 = tmp.path().join("v1");
    oci_layout(
        &v1,
        "v1",
        &[
            layer("hello", b"hello from layer one"),
            layer("world", b"layer two"),
        ],
    );
    let v2 = tmp.path().join("v2");
    oci_layout(&v2, "v2", &[layer("hello", b"another image")]);
    ok(skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{}:v1", v1.display()),
        &format!("docker://{a}/peers/img:v1"),
    ]));
    ok(skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{}:v2", v2.display()),
        &format!("docker://{a}/peers/img:v2"),
    ]));

    let inspect = json(&ok(skopeo(&[
        "inspect",
        "--tls-verify=false",
        &format!("docker://{a}/peers/img:v1"),
    ])));
    assert_eq!(
        inspect["Layers"].as_array().map(Vec::len),
        Some(2),
        "{inspect}"
    );
    assert_eq!(inspect["Architecture"], "amd64");
    let digest = inspect["Digest"].as_str().unwrap_or_default().to_string();
    let raw = ok(skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{a}/peers/img:v1"),
    ]));
    assert_eq!(
        Algorithm::Sha256.digest(raw.as_bytes()).to_string(),
        digest,
        "served byte for byte"
    );

    let tags = json(&ok(skopeo(&[
        "list-tags",
        "--tls-verify=false",
        &format!("docker://{a}/peers/img"),
    ])));
    assert_eq!(tags["Tags"], serde_json::json!(["v1", "v2"]));

    // Out to an OCI layout: same manifest, every blob intact.
    let out = tmp.path().join("out");
    ok(skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{a}/peers/img:v1"),
        &format!("oci:{}:v1", out.display()),
    ]));
    let idx = json(&std::fs::read_to_string(out.join("index.json")).expect("index"));
    assert_eq!(idx["manifests"][0]["digest"], digest.as_str());
    assert_eq!(verify_layout(&out), 4, "manifest, config, two layers");

    // Registry to registry (blobs mounted across repositories), and in docker schema 2.
    ok(skopeo(&[
        "copy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        &format!("docker://{a}/peers/img:v1"),
        &format!("docker://{a}/peers/copy:v1"),
    ]));
    ok(skopeo(&[
        "copy",
        "--format",
        "v2s2",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        &format!("docker://{a}/peers/img:v1"),
        &format!("docker://{a}/peers/docker:v1"),
    ]));
    let raw = json(&ok(skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{a}/peers/docker:v1"),
    ])));
    assert_eq!(
        raw["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    let cat = request(a, "GET", "/v2/_catalog", &[], b"");
    assert_eq!(
        json(&String::from_utf8_lossy(&cat.body))["repositories"],
        serde_json::json!(["peers/copy", "peers/docker", "peers/img"])
    );

    ok(skopeo(&[
        "delete",
        "--tls-verify=false",
        &format!("docker://{a}/peers/img:v2"),
    ]));
    let tags = json(&ok(skopeo(&[
        "list-tags",
        "--tls-verify=false",
        &format!("docker://{a}/peers/img"),
    ])));
    assert_eq!(tags["Tags"], serde_json::json!(["v1"]));
    let gone = skopeo(&[
        "inspect",
        "--tls-verify=false",
        &format!("docker://{a}/peers/img:v2"),
    ]);
    assert!(!gone.status.success());
}

fn write_htpasswd(dir: &Path) -> std::path::PathBuf {
    let p = dir.join("htpasswd");
    let hash = bcrypt::hash("s3cret", 4).expect("bcrypt");
    std::fs::write(&p, format!("alice:{hash}\n")).expect("htpasswd");
    p
}

#[test]
fn skopeo_with_token_auth_and_anonymous_pull_rules() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let htpasswd = write_htpasswd(tmp.path());
    let secret = tmp.path().join("secret");
    std::fs::write(&secret, [42u8; 32]).expect("secret");
    let cfg = tmp.path().join("config.json");
    let c = serde_json::json!({
        "auth": {
            "htpasswd": htpasswd, "token": {"secret_file": secret},
            "access": [{"repository": "public/*", "anonymous": ["pull"], "users": {"alice": ["pull", "push", "delete"]}}],
        },
    });
    std::fs::write(&cfg, serde_json::to_vec(&c).expect("json")).expect("config");
    let log = tmp.path().join("server.log");
    let mut srv = Server::start_logged(
        &tmp.path().join("root"),
        &["--config", cfg.to_str().unwrap_or_default()],
        &log,
    );
    let a = srv.addr.clone();
    let a = &a;
    let img = tmp.path().join("img");
    oci_layout(&img, "v1", &[layer("f", b"token flow")]);
    let src = format!("oci:{}:v1", img.display());

    let anon = skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        &src,
        &format!("docker://{a}/public/app:v1"),
    ]);
    assert!(!anon.status.success(), "anonymous push must fail");
    let wrong = skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        "alice:wrong",
        &src,
        &format!("docker://{a}/public/app:v1"),
    ]);
    assert!(!wrong.status.success(), "bad password must fail");
    for repo in ["public/app", "private/app"] {
        ok(skopeo(&[
            "copy",
            "--dest-tls-verify=false",
            "--dest-creds",
            "alice:s3cret",
            &src,
            &format!("docker://{a}/{repo}:v1"),
        ]));
    }
    // Anonymous pull: allowed by the rule for public/*, refused elsewhere.
    ok(skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--no-creds",
        &format!("docker://{a}/public/app:v1"),
    ]));
    let refused = skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--no-creds",
        &format!("docker://{a}/private/app:v1"),
    ]);
    assert!(!refused.status.success());
    ok(skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--creds",
        "alice:s3cret",
        &format!("docker://{a}/private/app:v1"),
    ]));

    // The challenge and the token endpoint, as docker sees them.
    let v2 = request(a, "GET", "/v2/", &[], b"");
    assert_eq!(v2.status, 401);
    let challenge = v2.header("www-authenticate");
    assert!(
        challenge.starts_with("Bearer realm=\"http://127.0.0.1/token\",service=\"berth-registry\""),
        "{challenge}"
    );
    let anon_tok = request(
        a,
        "GET",
        "/token?service=berth-registry&scope=repository:private/app:pull",
        &[],
        b"",
    );
    assert_eq!(anon_tok.status, 200);
    let t = json(&String::from_utf8_lossy(&anon_tok.body))["token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let denied = request(
        a,
        "GET",
        "/v2/private/app/tags/list",
        &[("Authorization", format!("Bearer {t}"))],
        b"",
    );
    assert_eq!(denied.status, 401);
    assert!(denied
        .header("www-authenticate")
        .contains("insufficient_scope"));
    // No secret in the logs, even at trace level: not the password, the Basic header, nor a token.
    srv.kill();
    let logs = std::fs::read_to_string(&log).expect("read log");
    assert!(
        logs.contains("/v2/private/app/tags/list"),
        "requests are logged"
    );
    let basic = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "alice:s3cret");
    for secret in ["s3cret", basic.as_str(), t.as_str(), "Bearer ", "Basic "] {
        assert!(!logs.contains(secret), "{secret:?} appears in the logs");
    }
}

#[test]
fn skopeo_over_tls() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let certs = tmp.path().join("certs");
    std::fs::create_dir_all(&certs).expect("mkdir");
    let st = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(tmp.path().join("key.pem"))
        .arg("-out")
        .arg(certs.join("ca.crt"))
        .output()
        .expect("openssl must be installed");
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let srv = Server::start(
        &tmp.path().join("root"),
        &[
            "--tls-cert",
            certs.join("ca.crt").to_str().unwrap_or_default(),
            "--tls-key",
            tmp.path().join("key.pem").to_str().unwrap_or_default(),
        ],
    );
    let a = &srv.addr;
    let img = tmp.path().join("img");
    oci_layout(&img, "v1", &[layer("f", b"over tls")]);
    let cert_dir = certs.to_str().unwrap_or_default();
    ok(skopeo(&[
        "copy",
        "--dest-cert-dir",
        cert_dir,
        &format!("oci:{}:v1", img.display()),
        &format!("docker://{a}/tls/app:v1"),
    ]));
    let inspect = json(&ok(skopeo(&[
        "inspect",
        "--cert-dir",
        cert_dir,
        &format!("docker://{a}/tls/app:v1"),
    ])));
    assert_eq!(inspect["Layers"].as_array().map(Vec::len), Some(1));
    // Without trusting the certificate, the client refuses.
    assert!(!skopeo(&["inspect", &format!("docker://{a}/tls/app:v1")])
        .status
        .success());
}

#[test]
fn sigkill_mid_push_serves_no_corrupt_blob_and_the_next_push_succeeds() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("root");
    let mut srv = Server::start(&root, &[]);
    let data = vec![0xabu8; 4 << 20];
    let d = Algorithm::Sha256.digest(&data);
    let post = request(&srv.addr, "POST", "/v2/crash/blobs/uploads/", &[], b"");
    let loc = post.header("location");
    // PUT the whole blob, but die after half of it.
    let mut s = connect(&srv.addr);
    send_head(
        &mut s,
        "PUT",
        &format!("{loc}?digest={d}"),
        &[("Content-Length", data.len().to_string())],
    );
    s.write_all(&data[..data.len() / 2]).expect("half");
    s.flush().expect("flush");
    std::thread::sleep(std::time::Duration::from_millis(200));
    srv.kill();
    drop(s);

    let srv = Server::start(&root, &[]);
    let head = request(&srv.addr, "HEAD", &format!("/v2/crash/blobs/{d}"), &[], b"");
    assert_eq!(head.status, 404, "no partial blob is served");
    assert!(!root
        .join("blobs/sha256")
        .join(&d.hex()[..2])
        .join(d.hex())
        .exists());
    // The session survived with what arrived; a fresh push of the whole blob works.
    let post = request(
        &srv.addr,
        "POST",
        &format!("/v2/crash/blobs/uploads/?digest={d}"),
        &[],
        &data,
    );
    assert_eq!(post.status, 201);
    let get = request(&srv.addr, "GET", &format!("/v2/crash/blobs/{d}"), &[], b"");
    assert_eq!(Algorithm::Sha256.digest(&get.body), d);
}

#[test]
fn graceful_shutdown_finishes_an_upload_in_flight() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut srv = Server::start(&tmp.path().join("root"), &[]);
    let data = vec![1u8; 1 << 20];
    let d = Algorithm::Sha256.digest(&data);
    let mut s = connect(&srv.addr);
    send_head(
        &mut s,
        "POST",
        &format!("/v2/g/blobs/uploads/?digest={d}"),
        &[("Content-Length", data.len().to_string())],
    );
    s.write_all(&data[..1000]).expect("first bytes");
    s.flush().expect("flush");
    std::thread::sleep(std::time::Duration::from_millis(200));
    srv.terminate();
    std::thread::sleep(std::time::Duration::from_millis(200));
    s.write_all(&data[1000..])
        .expect("rest of the body after SIGTERM");
    let resp = read_response(&mut s);
    assert_eq!(resp.status, 201, "the upload in flight completes");
    let status = srv.child.wait().expect("wait");
    assert!(status.success(), "clean exit: {status}");
    // Committed for real.
    let srv = Server::start(&tmp.path().join("root"), &[]);
    let head = request(&srv.addr, "HEAD", &format!("/v2/g/blobs/{d}"), &[], b"");
    assert_eq!(head.status, 200);
}

#[test]
fn gc_command_dry_run_then_collect() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("root");
    {
        let srv = Server::start(&root, &["--delete-enabled"]);
        let a = &srv.addr;
        let img = tmp.path().join("img");
        oci_layout(&img, "v1", &[layer("f", b"to be collected")]);
        ok(skopeo(&[
            "copy",
            "--dest-tls-verify=false",
            &format!("oci:{}:v1", img.display()),
            &format!("docker://{a}/gc/app:v1"),
        ]));
        ok(skopeo(&[
            "delete",
            "--tls-verify=false",
            &format!("docker://{a}/gc/app:v1"),
        ]));
    }
    let gc = |extra: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_berth-registry"))
            .args(["gc", "--grace-period", "0", "--root"])
            .arg(&root)
            .args(extra)
            .output()
            .expect("run gc");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let count = || walk_files(&root.join("blobs"));
    let before = count();
    let dry = gc(&["--dry-run"]);
    assert_eq!(
        dry.lines()
            .filter(|l| l.starts_with("would delete sha256:"))
            .count(),
        3,
        "{dry}"
    );
    assert_eq!(count(), before);
    let real = gc(&[]);
    assert!(real.contains("deleted 3 blobs"), "{real}");
    assert_eq!(count(), before - 3);
}

/// podman with its own storage (vfs, no mounts), configuration and credentials file under `dir`.
struct Podman {
    dir: std::path::PathBuf,
}

impl Podman {
    fn new(dir: &Path) -> Podman {
        std::fs::create_dir_all(dir.join("tmp")).expect("podman dir");
        std::fs::write(
            dir.join("containers.conf"),
            "[engine]\nruntime = \"runc\"\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n",
        )
        .expect("containers.conf");
        std::fs::write(dir.join("auth.json"), "{}").expect("auth.json");
        Podman {
            dir: dir.to_path_buf(),
        }
    }

    fn run(&self, args: &[&str], stdin: &str) -> Output {
        let mut child = Command::new("podman")
            .arg("--root")
            .arg(self.dir.join("root"))
            .arg("--runroot")
            .arg(self.dir.join("run"))
            .args(["--storage-driver", "vfs"])
            .args(args)
            .env("CONTAINERS_CONF", self.dir.join("containers.conf"))
            .env("REGISTRY_AUTH_FILE", self.dir.join("auth.json"))
            .env("TMPDIR", self.dir.join("tmp"))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("podman must be installed (apt-get install podman)");
        let mut input = child.stdin.take().expect("stdin");
        input.write_all(stdin.as_bytes()).expect("write stdin");
        drop(input);
        child.wait_with_output().expect("podman output")
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args, "");
        assert!(
            o.status.success(),
            "podman {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&o.stderr),
            String::from_utf8_lossy(&o.stdout)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
}

/// podman as a client of the token flow: refused anonymously, `podman login` then push in Docker's and OCI's
/// formats, anonymous pull only where the rules allow it, and the digests podman reports are the registry's.
#[test]
fn podman_logs_in_pushes_and_pulls_through_the_token_flow() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let htpasswd = write_htpasswd(tmp.path());
    let secret = tmp.path().join("secret");
    std::fs::write(&secret, [7u8; 32]).expect("secret");
    let cfg = tmp.path().join("config.json");
    let c = serde_json::json!({
        "auth": {
            "htpasswd": htpasswd, "token": {"secret_file": secret},
            "access": [{"repository": "public/*", "anonymous": ["pull"], "users": {"alice": ["pull", "push"]}}],
        },
    });
    std::fs::write(&cfg, serde_json::to_vec(&c).expect("json")).expect("config");
    let srv = Server::start(
        &tmp.path().join("root"),
        &["--config", cfg.to_str().unwrap_or_default()],
    );
    let a = &srv.addr;
    let pm = Podman::new(&tmp.path().join("podman"));
    let l = tmp.path().join("layer.tar");
    std::fs::write(&l, layer("hello", b"pushed by podman")).expect("layer");
    pm.ok(&["import", l.to_str().unwrap_or_default(), "local/app:v1"]);

    let public = format!("{a}/public/app:v1");
    let private = format!("{a}/private/app:v1");
    let anon = pm.run(&["push", "--tls-verify=false", "local/app:v1", &public], "");
    assert!(!anon.status.success(), "an anonymous push must be refused");
    let err = String::from_utf8_lossy(&anon.stderr).to_lowercase();
    assert!(
        err.contains("unauthorized") || err.contains("authentication required"),
        "{err}"
    );
    let wrong = pm.run(
        &[
            "login",
            "--tls-verify=false",
            "-u",
            "alice",
            "--password-stdin",
            a,
        ],
        "nope",
    );
    assert!(!wrong.status.success(), "a wrong password must be refused");
    let login = pm.run(
        &[
            "login",
            "--tls-verify=false",
            "-u",
            "alice",
            "--password-stdin",
            a,
        ],
        "s3cret",
    );
    assert!(
        login.status.success(),
        "{}",
        String::from_utf8_lossy(&login.stderr)
    );

    let digest_file = tmp.path().join("digest");
    let df = digest_file.to_str().unwrap_or_default();
    pm.ok(&[
        "push",
        "--tls-verify=false",
        "--digestfile",
        df,
        "local/app:v1",
        &public,
    ]);
    let pushed = std::fs::read_to_string(&digest_file).expect("digest file");
    pm.ok(&[
        "push",
        "--tls-verify=false",
        "--format",
        "v2s2",
        "local/app:v1",
        &private,
    ]);

    // What podman pushed, as another client sees it: OCI for an imported image, Docker's schema 2 on request.
    let raw = ok(skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--no-creds",
        &format!("docker://{public}"),
    ]));
    assert_eq!(Algorithm::Sha256.digest(raw.as_bytes()).to_string(), pushed);
    assert_eq!(
        json(&raw)["config"]["mediaType"],
        "application/vnd.oci.image.config.v1+json"
    );
    let raw = json(&ok(skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--creds",
        "alice:s3cret",
        &format!("docker://{private}"),
    ])));
    assert_eq!(
        raw["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );

    // Pull back: anonymously where the rules allow it, only after login elsewhere.
    pm.ok(&["logout", a]);
    pm.ok(&["rmi", "local/app:v1"]);
    pm.ok(&["pull", "--tls-verify=false", &public]);
    let got = pm.ok(&["image", "inspect", "--format", "{{.Digest}}", &public]);
    assert_eq!(got.trim(), pushed);
    let refused = pm.run(&["pull", "--tls-verify=false", &private], "");
    assert!(
        !refused.status.success(),
        "an anonymous pull of private/ must be refused"
    );
    pm.run(
        &[
            "login",
            "--tls-verify=false",
            "-u",
            "alice",
            "--password-stdin",
            a,
        ],
        "s3cret",
    );
    pm.ok(&["pull", "--tls-verify=false", &private]);
    let listed = pm.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(
        listed.contains(&private) && listed.contains(&public),
        "{listed}"
    );
}

/// Two registry processes, each with its own local root, store everything in one S3 bucket: what one
/// replica receives, the other serves, lists and deletes; the collector run against the bucket finds it.
#[test]
fn two_replicas_share_one_s3_bucket() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let s3 = common::moto::Moto::start();
    s3.create_bucket("registry");
    let cfg = tmp.path().join("registry.json");
    std::fs::write(
        &cfg,
        serde_json::json!({
            "delete_enabled": true,
            "storage": {"kind": "s3", "bucket": "registry", "endpoint": s3.endpoint,
                        "region": common::moto::REGION, "allow_http": true},
        })
        .to_string(),
    )
    .expect("config");
    let env = s3.env();
    let cfg_arg = cfg.to_str().expect("utf-8 path");
    let start =
        |name: &str| Server::start_with_env(&tmp.path().join(name), &["--config", cfg_arg], &env);
    let (one, two) = (start("one"), start("two"));
    let (a, b) = (&one.addr, &two.addr);

    let img = tmp.path().join("img");
    oci_layout(
        &img,
        "v1",
        &[
            layer("one", b"first layer, in S3"),
            layer("two", b"second layer"),
        ],
    );
    let other = tmp.path().join("other");
    oci_layout(&other, "v2", &[layer("three", b"only in v2")]);
    for (dir, tag) in [(&img, "v1"), (&other, "v2")] {
        ok(skopeo(&[
            "copy",
            "--dest-tls-verify=false",
            &format!("oci:{}:{tag}", dir.display()),
            &format!("docker://{a}/shared/app:{tag}"),
        ]));
    }
    let blobs = s3.keys("registry", "blobs/");
    assert_eq!(
        blobs.len(),
        7,
        "two configs, three layers, two manifests: {blobs:?}"
    );

    // The other replica serves what the first received, byte for byte.
    let tags = json(&ok(skopeo(&[
        "list-tags",
        "--tls-verify=false",
        &format!("docker://{b}/shared/app"),
    ])));
    assert_eq!(tags["Tags"], serde_json::json!(["v1", "v2"]));
    let out = tmp.path().join("out");
    ok(skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{b}/shared/app:v1"),
        &format!("oci:{}:v1", out.display()),
    ]));
    assert_eq!(verify_layout(&out), 4, "manifest, config, two layers");
    let cat = request(b, "GET", "/v2/_catalog", &[], b"");
    assert_eq!(
        json(&String::from_utf8_lossy(&cat.body))["repositories"],
        serde_json::json!(["shared/app"])
    );

    // A delete through one replica is seen by the other.
    ok(skopeo(&[
        "delete",
        "--tls-verify=false",
        &format!("docker://{b}/shared/app:v2"),
    ]));
    let gone = skopeo(&[
        "inspect",
        "--tls-verify=false",
        &format!("docker://{a}/shared/app:v2"),
    ]);
    assert!(
        !gone.status.success(),
        "v2 still served by the other replica"
    );

    // The collector works on the bucket while both replicas run: v2's config and layer go, v1 stays whole.
    let gc = Command::new(env!("CARGO_BIN_EXE_berth-registry"))
        .args(["gc", "--grace-period", "0", "--config", cfg_arg, "--root"])
        .arg(tmp.path().join("gc"))
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("run gc");
    let report = String::from_utf8_lossy(&gc.stdout);
    assert!(
        gc.status.success(),
        "{}",
        String::from_utf8_lossy(&gc.stderr)
    );
    assert!(report.contains("deleted 3 blobs"), "{report}");
    assert_eq!(s3.keys("registry", "blobs/").len(), 4);
    let again = tmp.path().join("again");
    ok(skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{a}/shared/app:v1"),
        &format!("oci:{}:v1", again.display()),
    ]));
    assert_eq!(verify_layout(&again), 4);
}

fn walk_files(dir: &Path) -> usize {
    let mut n = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                stack.push(e.path());
            } else {
                n += 1;
            }
        }
    }
    n
}
