//! The directory: pages and `/v1/search` in process, and a real browser (headless Chromium) loading the
//! front page, searching, clicking through to a repository, with a screenshot.

mod common;

use axum::http::StatusCode;
use base64::Engine as _;
use berth_registry::auth::{AccessRule, Action};
use common::cdp::Browser;
use common::proc::{request, Server};
use common::{registry, registry_with};

#[tokio::test]
async fn front_page_repository_page_and_search() {
    let r = registry();
    r.push_image("library/busybox", "1.36", b"busybox layer")
        .await;
    r.push_image("library/busybox", "latest", b"busybox layer")
        .await;
    r.push_image("team/app", "v1", b"<script>alert(1)</script>")
        .await;
    let home = r.get("/").await;
    assert_eq!(home.status, StatusCode::OK);
    let html = String::from_utf8_lossy(&home.body);
    assert!(html.contains("href=\"/r/library/busybox\""), "{html}");
    assert!(html.contains("docker pull localhost/team/app:v1"));
    assert!(html.contains("linux/amd64"));
    assert!(html.contains("2 tags"));
    assert!(html.contains("type=\"search\""));
    let filtered = String::from_utf8_lossy(&r.get("/?q=busy").await.body).into_owned();
    assert!(filtered.contains("library/busybox") && !filtered.contains("team/app"));

    let page = r.get("/r/library/busybox").await;
    let html = String::from_utf8_lossy(&page.body);
    assert!(html.contains("1.36") && html.contains("latest"));
    assert!(html.contains("layers") && html.contains("application/vnd.oci.image.layer.v1.tar"));
    assert!(
        html.contains("&quot;architecture&quot;: &quot;amd64&quot;"),
        "config shown, escaped"
    );
    assert_eq!(r.get("/r/nope").await.status, StatusCode::NOT_FOUND);
    assert_eq!(r.get("/r/..%2fetc").await.status, StatusCode::NOT_FOUND);

    let s = r.get("/v1/search?q=app&n=10").await.json();
    assert_eq!(s["num_results"], 1);
    assert_eq!(s["results"][0]["name"], "team/app");
    assert_eq!(s["results"][0]["star_count"], 0);
    let all = r.get("/v1/search?q=&n=1&page=2").await.json();
    assert_eq!(
        (all["num_results"].as_u64(), all["num_pages"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(all["results"][0]["name"], "team/app");

    let metrics = String::from_utf8_lossy(&r.get("/metrics").await.body).into_owned();
    assert!(
        metrics.contains("berth_registry_http_requests_total{method=\"GET\",code=\"200\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("berth_registry_blob_bytes_received_total"));
}

#[tokio::test]
async fn with_auth_the_directory_shows_only_anonymously_pullable_repositories() {
    let hash = bcrypt::hash("pw", 4).expect("bcrypt");
    let dir = tempfile::tempdir().expect("tempdir");
    let hp = dir.path().join("htpasswd");
    std::fs::write(&hp, format!("u:{hash}\n")).expect("write");
    let r = registry_with(|c| {
        c.auth = Some(berth_registry::config::AuthConfig {
            htpasswd: Some(hp.clone()),
            access: vec![AccessRule {
                repository: "public/*".into(),
                anonymous: vec![Action::Pull],
                users: [("u".to_string(), vec![Action::Push])]
                    .into_iter()
                    .collect(),
            }],
            ..Default::default()
        });
    });
    let cred = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("u:pw")
    );
    for repo in ["public/a", "secret/b"] {
        let cfg = berth_registry::digest::Algorithm::Sha256.digest(b"{}");
        let resp = r
            .call(
                axum::http::Method::POST,
                &format!("/v2/{repo}/blobs/uploads/?digest={cfg}"),
                &[("authorization", &cred)],
                "{}",
            )
            .await;
        assert_eq!(resp.status, StatusCode::CREATED);
        let m = common::image_manifest(&cfg, 2, &[]);
        let resp = r
            .call(
                axum::http::Method::PUT,
                &format!("/v2/{repo}/manifests/v1"),
                &[
                    ("authorization", &cred),
                    ("content-type", "application/vnd.oci.image.manifest.v1+json"),
                ],
                m,
            )
            .await;
        assert_eq!(resp.status, StatusCode::CREATED);
    }
    let html = String::from_utf8_lossy(&r.get("/").await.body).into_owned();
    assert!(html.contains("public/a") && !html.contains("secret/b"));
    assert_eq!(r.get("/r/secret/b").await.status, StatusCode::NOT_FOUND);
    let s = r.get("/v1/search?q=").await.json();
    assert_eq!(s["num_results"], 1);
    assert_eq!(
        r.get("/v2/secret/b/manifests/v1").await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[test]
fn chromium_loads_searches_and_clicks_through_with_a_screenshot() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let srv = Server::start(&tmp.path().join("root"), &[]);
    let a = &srv.addr;
    // Push two images with raw requests.
    for (repo, layer) in [
        ("web/frontend", &b"frontend layer"[..]),
        ("web/backend", b"backend layer"),
    ] {
        let cfg =
            br#"{"architecture":"arm64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
        let mut descs = Vec::new();
        for blob in [&cfg[..], layer] {
            let d = berth_registry::digest::Algorithm::Sha256.digest(blob);
            let resp = request(
                a,
                "POST",
                &format!("/v2/{repo}/blobs/uploads/?digest={d}"),
                &[],
                blob,
            );
            assert_eq!(resp.status, 201);
            descs.push((d, blob.len()));
        }
        let m = common::image_manifest(&descs[0].0, descs[0].1, &descs[1..]);
        let ct = (
            "Content-Type",
            "application/vnd.oci.image.manifest.v1+json".to_string(),
        );
        assert_eq!(
            request(a, "PUT", &format!("/v2/{repo}/manifests/v1"), &[ct], &m).status,
            201
        );
    }

    let browser = Browser::start();
    let mut page = browser.page();
    page.call("Page.enable", serde_json::json!({}));
    page.call(
        "Page.navigate",
        serde_json::json!({"url": format!("http://{a}/")}),
    );
    page.wait_for(
        "document.readyState === 'complete' && document.querySelectorAll('a.repo').length === 2",
    );
    assert_eq!(
        page.eval("document.getElementById('count').textContent"),
        "2"
    );
    // Typing in the search box filters the list.
    page.eval("const q=document.getElementById('q'); q.value='front'; q.dispatchEvent(new Event('input')); 0");
    assert_eq!(
        page.eval("document.getElementById('count').textContent"),
        "1"
    );
    assert_eq!(
        page.eval("[...document.querySelectorAll('.card')].filter(c=>c.style.display!=='none').map(c=>c.dataset.name).join()"),
        "web/frontend"
    );
    let shot = page.call(
        "Page.captureScreenshot",
        serde_json::json!({"format": "png"}),
    );
    let png = base64::engine::general_purpose::STANDARD
        .decode(shot["data"].as_str().unwrap_or_default())
        .expect("base64 png");
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 5_000,
        "a real screenshot ({} bytes)",
        png.len()
    );
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("registry-directory.png");
    std::fs::write(&out, &png).expect("save screenshot");

    // Click through to the repository.
    page.eval("[...document.querySelectorAll('a.repo')].find(a=>a.textContent==='web/frontend').click(); 0");
    page.wait_for("location.pathname === '/r/web/frontend' && document.readyState === 'complete' && !!document.getElementById('repo-name')");
    assert_eq!(
        page.eval("document.getElementById('repo-name').textContent"),
        "web/frontend"
    );
    assert_eq!(page.eval("document.querySelectorAll('tr.tag').length"), 1);
    let text = page.eval("document.body.innerText");
    assert!(
        text.as_str().unwrap_or_default().contains("linux/arm64"),
        "{text}"
    );
    let shot = page.call(
        "Page.captureScreenshot",
        serde_json::json!({"format": "png"}),
    );
    let png = base64::engine::general_purpose::STANDARD
        .decode(shot["data"].as_str().unwrap_or_default())
        .expect("base64 png");
    std::fs::write(out.with_file_name("registry-repository.png"), &png).expect("save screenshot");
}
