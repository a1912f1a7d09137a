//! Shared helpers of the integration tests: an in-process registry, requests through tower, test images.
#![allow(dead_code)] // each test binary uses a different subset

pub mod cdp;
pub mod image;
pub mod moto;
pub mod proc;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use berth_registry::api::{router, AppState};
use berth_registry::config::{self, Config};
use berth_registry::digest::{Algorithm, Digest};
use bytes::Bytes;
use http_body_util::BodyExt;
use tower::ServiceExt;

pub struct Reg {
    pub st: Arc<AppState>,
    pub app: axum::Router,
    pub dir: tempfile::TempDir,
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn header(&self, k: &str) -> String {
        self.headers
            .get(k)
            .map(|v| v.to_str().unwrap_or("").to_string())
            .unwrap_or_default()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The spec error code of an error body.
    pub fn code(&self) -> String {
        self.json()["errors"][0]["code"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }
}

pub fn registry_with(f: impl FnOnce(&mut Config)) -> Reg {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = Config {
        root: dir.path().to_path_buf(),
        delete_enabled: true,
        ..Config::default()
    };
    f(&mut cfg);
    let st = Arc::new(config::build(&cfg).expect("build registry"));
    Reg {
        app: router(st.clone()),
        st,
        dir,
    }
}

pub fn registry() -> Reg {
    registry_with(|_| {})
}

impl Reg {
    pub async fn send(&self, req: Request<Body>) -> Resp {
        let resp = self.app.clone().oneshot(req).await.expect("infallible");
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        Resp {
            status,
            headers,
            body,
        }
    }

    pub async fn call(
        &self,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: impl Into<Body>,
    ) -> Resp {
        let mut b = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        self.send(b.body(body.into()).expect("request")).await
    }

    pub async fn get(&self, uri: &str) -> Resp {
        self.call(Method::GET, uri, &[], Body::empty()).await
    }

    /// Monolithic upload (POST then PUT); asserts success.
    pub async fn push_blob(&self, repo: &str, data: &[u8]) -> Digest {
        let d = Algorithm::Sha256.digest(data);
        let r = self
            .call(
                Method::POST,
                &format!("/v2/{repo}/blobs/uploads/"),
                &[],
                Body::empty(),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
        let loc = r.header("location");
        let r = self
            .call(
                Method::PUT,
                &format!("{loc}?digest={d}"),
                &[],
                Bytes::copy_from_slice(data),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        assert_eq!(r.header("docker-content-digest"), d.to_string());
        d
    }

    /// Pushes a config and one layer, then an OCI manifest under `reference`; returns the manifest digest.
    pub async fn push_image(&self, repo: &str, reference: &str, layer: &[u8]) -> (Digest, Bytes) {
        let config =
            br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
        let cd = self.push_blob(repo, config).await;
        let ld = self.push_blob(repo, layer).await;
        let m = image_manifest(&cd, config.len(), &[(ld, layer.len())]);
        let r = self
            .call(
                Method::PUT,
                &format!("/v2/{repo}/manifests/{reference}"),
                &[("content-type", "application/vnd.oci.image.manifest.v1+json")],
                m.clone(),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        (Algorithm::Sha256.digest(&m), m)
    }
}

pub fn image_manifest(config: &Digest, config_size: usize, layers: &[(Digest, usize)]) -> Bytes {
    let layers: Vec<serde_json::Value> = layers
        .iter()
        .map(|(d, s)| serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": s}))
        .collect();
    let v = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": config_size},
        "layers": layers,
    });
    Bytes::from(serde_json::to_vec(&v).expect("json"))
}
