//! Test harness: Debian's `docker-registry` on 127.0.0.1, images built as OCI layouts and seeded
//! with `skopeo`, temp image stores, and a small axum proxy in front of the registry that can
//! demand Bearer tokens (with its own token endpoint), tamper with a blob, or cut a download.
//! Only processes the tests start are killed, by their handle. No traffic leaves loopback.
#![allow(dead_code)] // Each test binary uses a different subset of these helpers.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_distribution::{ClientOptions, DockerConfig, RegistryClient};
use berth_image::ImageStore;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub fn digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn wait_for_port(port: u16, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("registry exited early: {status}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("registry did not listen on {port}");
}

/// A running `docker-registry`, killed (by its pid) on drop.
pub struct Registry {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Child,
}

impl Registry {
    /// Starts a registry; with `htpasswd`, Basic auth for that `user:password`.
    pub fn start(htpasswd: Option<(&str, &str)>) -> Registry {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let mut auth = String::new();
        if let Some((user, pass)) = htpasswd {
            let out = Command::new("htpasswd")
                .args(["-Bbn", user, pass])
                .output()
                .expect("htpasswd (apache2-utils) must be installed");
            assert!(out.status.success(), "htpasswd failed");
            let file = dir.path().join("htpasswd");
            std::fs::write(&file, &out.stdout).expect("write htpasswd");
            auth = format!(
                "auth:\n  htpasswd:\n    realm: test-realm\n    path: {}\n",
                file.display()
            );
        }
        let config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{auth}",
            dir.path().join("data").display()
        );
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).expect("write config");
        let mut child = Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry must be installed");
        wait_for_port(port, &mut child);
        Registry { dir, port, child }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A temp image store.
pub struct Store {
    pub dir: tempfile::TempDir,
    pub db: Arc<redb::Database>,
    pub store: ImageStore,
}

impl Store {
    pub fn new() -> Store {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Arc::new(redb::Database::create(dir.path().join("metadata.redb")).expect("db"));
        let store = ImageStore::open(dir.path(), db.clone()).expect("open store");
        Store { dir, db, store }
    }

    /// The store as a restarted daemon opens it.
    pub fn reopen(&mut self) {
        self.store = ImageStore::open(self.dir.path(), self.db.clone()).expect("reopen");
    }

    pub fn partials(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.dir.path().join("content/ingest"))
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default()
    }

    pub fn has_blob(&self, d: &str) -> bool {
        self.store.has_blob(d).expect("has_blob")
    }
}

/// A client with a private `config.json` and quick retries.
pub fn client(config_dir: &Path, attempts: u32) -> RegistryClient {
    RegistryClient::new(ClientOptions {
        docker_config: DockerConfig::new(config_dir.join("config.json")),
        max_attempts: attempts,
        retry_delay: Duration::from_millis(20),
        ..ClientOptions::default()
    })
    .expect("client")
}

pub enum E<'a> {
    Dir(&'a str),
    File(&'a str, &'a [u8]),
    Symlink(&'a str, &'a str),
}

pub fn tar_of(entries: &[E<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        match e {
            E::Dir(p) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, p, std::io::empty()).expect("dir");
            }
            E::File(p, data) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o755);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, p, *data).expect("file");
            }
            E::Symlink(p, target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                b.append_link(&mut h, p, target).expect("symlink");
            }
        }
    }
    b.into_inner().expect("tar")
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).expect("gzip");
    e.finish().expect("gzip")
}

/// The busybox layer: `bin/busybox` and `bin/sh` → busybox.
pub fn busybox_layer() -> Vec<u8> {
    let bb = std::fs::read("/bin/busybox").expect("busybox-static must be installed");
    tar_of(&[
        E::Dir("bin"),
        E::File("bin/busybox", &bb),
        E::Symlink("bin/sh", "busybox"),
    ])
}

/// Incompressible data, so a cut in the middle of its blob is a cut in the middle of the file.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// An image written into an OCI layout.
#[derive(Debug, Clone)]
pub struct Built {
    pub config: Vec<u8>,
    pub config_digest: String,
    pub manifest: Vec<u8>,
    pub manifest_digest: String,
    /// (gzip blob, digest) per layer.
    pub layers: Vec<(Vec<u8>, String)>,
}

/// Writes blobs into an OCI layout directory.
pub struct Layout {
    pub dir: PathBuf,
    index: Vec<Value>,
}

impl Layout {
    pub fn new(dir: &Path) -> Layout {
        std::fs::create_dir_all(dir.join("blobs/sha256")).expect("mkdir");
        std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#)
            .expect("oci-layout");
        Layout {
            dir: dir.to_path_buf(),
            index: Vec::new(),
        }
    }

    pub fn blob(&self, data: &[u8]) -> String {
        let d = digest(data);
        std::fs::write(
            self.dir
                .join("blobs/sha256")
                .join(d.trim_start_matches("sha256:")),
            data,
        )
        .expect("blob");
        d
    }

    /// An image of plain tars (gzip-compressed here) for `arch`.
    pub fn image(&self, arch: &str, tars: &[Vec<u8>], cmd: &str) -> Built {
        let mut layers = Vec::new();
        let mut diff_ids = Vec::new();
        for t in tars {
            diff_ids.push(digest(t));
            let gz = gzip(t);
            let d = self.blob(&gz);
            layers.push((gz, d));
        }
        let config = serde_json::to_vec(&json!({
            "architecture": arch,
            "os": "linux",
            "created": "2024-01-01T00:00:00Z",
            "config": {"Cmd": [cmd], "Env": ["PATH=/bin"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": tars.iter().map(|_| json!({"created_by": "test"})).collect::<Vec<_>>(),
        }))
        .expect("config");
        let config_digest = self.blob(&config);
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
            "layers": layers.iter().map(|(b, d)| json!({
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": b.len()
            })).collect::<Vec<_>>(),
        }))
        .expect("manifest");
        let manifest_digest = self.blob(&manifest);
        Built {
            config,
            config_digest,
            manifest,
            manifest_digest,
            layers,
        }
    }

    /// Names an image manifest in `index.json`.
    pub fn tag_manifest(&mut self, b: &Built, name: &str) {
        self.index.push(json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": b.manifest_digest, "size": b.manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": name},
        }));
        self.write_index();
    }

    /// Names an index of (image, arch) in `index.json`; returns the index digest.
    pub fn tag_index(&mut self, images: &[(&Built, &str)], name: &str) -> String {
        let index = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": images.iter().map(|(b, arch)| json!({
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": b.manifest_digest, "size": b.manifest.len(),
                "platform": {"architecture": arch, "os": "linux"},
            })).collect::<Vec<_>>(),
        }))
        .expect("index");
        let d = self.blob(&index);
        self.index.push(json!({
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": d, "size": index.len(),
            "annotations": {"org.opencontainers.image.ref.name": name},
        }));
        self.write_index();
        d
    }

    fn write_index(&self) {
        let doc = json!({"schemaVersion": 2, "manifests": self.index});
        std::fs::write(
            self.dir.join("index.json"),
            serde_json::to_vec(&doc).expect("json"),
        )
        .expect("index.json");
    }
}

/// `skopeo copy --all oci:<layout>:<name> docker://<dest>`.
pub fn skopeo_copy(layout: &Path, name: &str, dest: &str, creds: Option<&str>) {
    let mut cmd = Command::new("skopeo");
    cmd.args(["copy", "--all", "--quiet", "--dest-tls-verify=false"]);
    if let Some(c) = creds {
        cmd.arg(format!("--dest-creds={c}"));
    }
    let out = cmd
        .arg(format!("oci:{}:{name}", layout.display()))
        .arg(format!("docker://{dest}"))
        .output()
        .expect("skopeo must be installed");
    assert!(
        out.status.success(),
        "skopeo copy failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `skopeo inspect --raw` of a reference: the manifest bytes the registry serves.
pub fn skopeo_raw(reference: &str) -> Vec<u8> {
    let out = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .output()
        .expect("skopeo");
    assert!(
        out.status.success(),
        "skopeo inspect failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// `skopeo inspect` (parsed) of a reference.
pub fn skopeo_inspect(reference: &str) -> Value {
    let out = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .output()
        .expect("skopeo");
    assert!(
        out.status.success(),
        "skopeo inspect failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("inspect json")
}

/// One request the proxy saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: String,
    pub range: Option<String>,
    pub authorization: Option<String>,
}

/// What the proxy does besides forwarding.
#[derive(Debug, Default)]
pub struct ProxyRules {
    /// Demand `Bearer` tokens from `/token` (which wants this `user:password` when set).
    pub bearer: bool,
    pub token_creds: Option<(String, String)>,
    /// Serve this blob with its gzip header's mtime changed (same size, same content, wrong digest).
    pub tamper_blob: Option<String>,
    /// Cut the next download of this blob after this many bytes.
    pub cut_blob: Option<(String, usize)>,
    /// Send this many bytes of the next download of this blob, then stall forever.
    pub stall_blob: Option<(String, usize)>,
    /// Answer this many blob downloads with `503` (then `429` once) before forwarding again.
    pub unavailable: usize,
}

pub struct Proxy {
    pub port: u16,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    pub rules: Arc<Mutex<ProxyRules>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn ranges(&self) -> Vec<String> {
        self.seen
            .lock()
            .expect("lock")
            .iter()
            .filter_map(|s| s.range.clone())
            .collect()
    }
}

/// Starts a proxy to `upstream` (host:port) on a free loopback port.
pub async fn proxy(upstream: String, rules: ProxyRules) -> Proxy {
    use axum::body::Body;
    use axum::extract::{Request, State};
    use axum::response::Response;

    #[derive(Clone)]
    struct St {
        upstream: String,
        port: u16,
        http: reqwest::Client,
        seen: Arc<Mutex<Vec<Seen>>>,
        rules: Arc<Mutex<ProxyRules>>,
    }

    async fn handle(State(st): State<St>, req: Request) -> Response {
        let (parts, body) = req.into_parts();
        let path = parts.uri.path().to_string();
        let query = parts.uri.query().unwrap_or("").to_string();
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        st.seen.lock().expect("lock").push(Seen {
            method: parts.method.to_string(),
            path: path.clone(),
            query: query.clone(),
            range: header("range"),
            authorization: header("authorization"),
        });
        let (bearer, token_creds) = {
            let r = st.rules.lock().expect("lock");
            (r.bearer, r.token_creds.clone())
        };
        if path == "/token" {
            if let Some((u, p)) = token_creds {
                use base64::Engine;
                let want = format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
                );
                if header("authorization").as_deref() != Some(want.as_str()) {
                    return Response::builder()
                        .status(401)
                        .body(Body::from(
                            r#"{"details":"incorrect username or password"}"#,
                        ))
                        .expect("response");
                }
            }
            return Response::builder()
                .status(200)
                .header("content-type", "application/json")
                .body(Body::from(r#"{"token":"test-token","expires_in":300}"#))
                .expect("response");
        }
        if bearer && header("authorization").as_deref() != Some("Bearer test-token") {
            let realm = format!("http://127.0.0.1:{}/token", st.port);
            return Response::builder()
                .status(401)
                .header(
                    "www-authenticate",
                    format!(r#"Bearer realm="{realm}",service="test-registry""#),
                )
                .body(Body::from(
                    r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
                ))
                .expect("response");
        }
        if parts.method == "GET" && path.contains("/blobs/sha256:") {
            let mut r = st.rules.lock().expect("lock");
            if r.unavailable > 0 {
                r.unavailable -= 1;
                let status = if r.unavailable == 0 { 429 } else { 503 };
                return Response::builder()
                    .status(status)
                    .header("retry-after", "0")
                    .body(Body::from("try later"))
                    .expect("response");
            }
        }
        let bytes = axum::body::to_bytes(body, 64 << 20).await.expect("body");
        let url = format!("http://{}{}", st.upstream, parts.uri);
        let mut fwd = st.http.request(parts.method.clone(), url).body(bytes);
        for (k, v) in parts.headers.iter() {
            if k != "host" && k != "authorization" {
                fwd = fwd.header(k, v);
            }
        }
        let up = fwd.send().await.expect("upstream");
        let status = up.status();
        let headers = up.headers().clone();
        let mut data = up.bytes().await.expect("upstream body").to_vec();
        let blob = path.rsplit('/').next().unwrap_or("").to_string();
        let is_blob_get = parts.method == "GET" && path.contains("/blobs/sha256:");
        let (tamper, cut) = {
            let mut r = st.rules.lock().expect("lock");
            let tamper = r.tamper_blob.as_deref() == Some(blob.as_str());
            let cut = match &r.cut_blob {
                Some((d, n)) if is_blob_get && *d == blob => {
                    let n = *n;
                    r.cut_blob = None;
                    Some(n)
                }
                _ => None,
            };
            let stall = match &r.stall_blob {
                Some((d, n)) if is_blob_get && *d == blob => {
                    let n = *n;
                    r.stall_blob = None;
                    Some(n)
                }
                _ => None,
            };
            (tamper, cut.map(|n| (n, false)).or(stall.map(|n| (n, true))))
        };
        if tamper && is_blob_get && data.len() > 8 {
            data[4] ^= 0x5a; // gzip MTIME: same length, same content, another digest
        }
        let mut resp = Response::builder().status(status);
        for (k, v) in headers.iter() {
            if k != "transfer-encoding" && k != "content-length" && k != "connection" {
                resp = resp.header(k, v);
            }
        }
        if let Some((n, stall)) = cut {
            use futures_util::StreamExt;
            let total = data.len();
            let head = bytes::Bytes::copy_from_slice(&data[..n.min(total)]);
            let end = if stall {
                futures_util::stream::pending().boxed()
            } else {
                futures_util::stream::iter(vec![Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "cut",
                ))])
                .boxed()
            };
            let stream = futures_util::stream::iter(vec![Ok(head)]).chain(end);
            return resp
                .header("content-length", total)
                .body(Body::from_stream(stream))
                .expect("response");
        }
        resp.header("content-length", data.len())
            .body(Body::from(data))
            .expect("response")
    }

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let rules = Arc::new(Mutex::new(rules));
    let st = St {
        upstream,
        port,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
        seen: seen.clone(),
        rules: rules.clone(),
    };
    let app = axum::Router::new().fallback(handle).with_state(st);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Proxy {
        port,
        seen,
        rules,
        task,
    }
}

/// Collects progress events.
#[derive(Default, Clone)]
pub struct Events(pub Arc<Mutex<Vec<berth_distribution::Progress>>>);

impl Events {
    pub fn sink(&self) -> impl Fn(berth_distribution::Progress) + Send + Sync + 'static {
        let v = self.0.clone();
        move |p| v.lock().expect("lock").push(p)
    }

    pub fn statuses(&self) -> Vec<String> {
        self.0
            .lock()
            .expect("lock")
            .iter()
            .map(|p| match &p.id {
                Some(id) => format!("{id}: {}", p.status()),
                None => p.status(),
            })
            .collect()
    }
}

/// Tags of a map, sorted, for comparisons.
pub fn sorted(v: &[String]) -> Vec<String> {
    let mut v = v.to_vec();
    v.sort();
    v
}

pub type Annotations = BTreeMap<String, String>;
