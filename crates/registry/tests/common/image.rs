//! Test images: an OCI image layout written by the test (tar layers from the `tar` crate), for skopeo.

use std::path::Path;

use berth_registry::digest::{Algorithm, Digest};

fn write_blob(dir: &Path, data: &[u8]) -> Digest {
    let d = Algorithm::Sha256.digest(data);
    let p = dir.join("blobs/sha256");
    std::fs::create_dir_all(&p).expect("mkdir blobs");
    std::fs::write(p.join(d.hex()), data).expect("write blob");
    d
}

/// A tar with one file.
pub fn layer(name: &str, content: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(content.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, name, content).expect("append");
    b.into_inner().expect("finish tar")
}

/// Writes an OCI layout at `dir` holding one image tagged `tag` with `layers`; returns the manifest digest.
pub fn oci_layout(dir: &Path, tag: &str, layers: &[Vec<u8>]) -> Digest {
    std::fs::create_dir_all(dir).expect("mkdir layout");
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)
        .expect("oci-layout");
    let mut descs = Vec::new();
    let mut diff_ids = Vec::new();
    for l in layers {
        let d = write_blob(dir, l);
        diff_ids.push(d.to_string());
        descs.push(serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": l.len()}));
    }
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["/hello"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .expect("config");
    let cd = write_blob(dir, &config);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": config.len()},
        "layers": descs,
    }))
    .expect("manifest");
    let md = write_blob(dir, &manifest);
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md,
            "size": manifest.len(), "annotations": {"org.opencontainers.image.ref.name": tag}}],
    });
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&index).expect("index"),
    )
    .expect("index.json");
    md
}
