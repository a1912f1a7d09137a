//! The embedded `hello-world` image: made on first use from the program compiled into berth, so
//! `berth run hello-world` needs no registry.

use crate::error::{EngineError, Result};
use berth_image::{ImageStore, ImportOptions, Reference};

/// Whether `name` refers to the embedded image.
pub fn is_hello(name: &str) -> bool {
    Reference::parse(name)
        .map(|r| r.full() == "docker.io/library/hello-world:latest")
        .unwrap_or(false)
}

/// A rootfs tar holding `/hello`.
pub fn rootfs_tar() -> Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(berth_hello::HELLO.len() as u64);
    h.set_mode(0o755);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, "hello", berth_hello::HELLO)
        .map_err(|e| EngineError::io("build hello-world layer", e))?;
    b.into_inner()
        .map_err(|e| EngineError::io("build hello-world layer", e))
}

/// Import the embedded image into `store` as `hello-world:latest`.
pub fn seed(store: &ImageStore) -> Result<berth_image::Image> {
    let tar = rootfs_tar()?;
    let opts = ImportOptions {
        reference: Some(
            Reference::parse(berth_hello::IMAGE)
                .map_err(|e| EngineError::Internal(format!("hello-world reference: {e}")))?,
        ),
        changes: vec!["CMD [\"/hello\"]".into()],
        message: "embedded hello-world".into(),
        platform: None,
    };
    Ok(store.import(std::io::Cursor::new(tar), opts)?)
}
