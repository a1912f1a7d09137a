//! Typed progress events of pull and push, one per line Docker prints, so the daemon can emit
//! Docker's JSON progress (`{"status": ..., "id": ..., "progressDetail": {"current", "total"}}`)
//! from [`Progress::status`], [`Progress::id`] and the byte counts.

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `<tag>: Pulling from <repository path>` (the id is the tag or digest).
    PullingFrom(String),
    PullingFsLayer,
    Waiting,
    AlreadyExists,
    Downloading,
    /// A download failed and is retried (resuming) after this many seconds.
    RetryingIn(u64),
    VerifyingChecksum,
    DownloadComplete,
    Extracting,
    PullComplete,
    /// `Digest: sha256:...`.
    Digest(String),
    /// `Status: Downloaded newer image for <ref>`.
    DownloadedNewer(String),
    /// `Status: Image is up to date for <ref>`.
    UpToDate(String),
    /// `The push refers to repository [<repository>]`.
    PushRefersTo(String),
    Preparing,
    Pushing,
    Pushed,
    LayerAlreadyExists,
    /// `Mounted from <repository path>`.
    MountedFrom(String),
    /// `<tag>: digest: <digest> size: <manifest size>`.
    PushDigest {
        tag: String,
        digest: String,
        size: u64,
    },
}

/// One progress event: a per-layer event has the layer's short id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// The 12-hex short digest of the layer, or the tag for `PullingFrom`; `None` for lines that
    /// are about the whole image.
    pub id: Option<String>,
    pub event: Event,
    /// Bytes done, for `Downloading`, `Extracting`, `Pushing`.
    pub current: Option<u64>,
    /// Total bytes, with `current`.
    pub total: Option<u64>,
}

impl Progress {
    pub(crate) fn image(event: Event) -> Progress {
        Progress {
            id: None,
            event,
            current: None,
            total: None,
        }
    }

    pub(crate) fn layer(digest: &str, event: Event) -> Progress {
        Progress {
            id: Some(short(digest)),
            event,
            current: None,
            total: None,
        }
    }

    pub(crate) fn bytes(digest: &str, event: Event, current: u64, total: u64) -> Progress {
        Progress {
            id: Some(short(digest)),
            event,
            current: Some(current),
            total: Some(total),
        }
    }

    /// Docker's status text for this event.
    pub fn status(&self) -> String {
        match &self.event {
            Event::PullingFrom(repo) => format!("Pulling from {repo}"),
            Event::PullingFsLayer => "Pulling fs layer".to_string(),
            Event::Waiting => "Waiting".to_string(),
            Event::AlreadyExists => "Already exists".to_string(),
            Event::Downloading => "Downloading".to_string(),
            Event::RetryingIn(s) => {
                format!("Retrying in {s} second{}", if *s == 1 { "" } else { "s" })
            }
            Event::VerifyingChecksum => "Verifying Checksum".to_string(),
            Event::DownloadComplete => "Download complete".to_string(),
            Event::Extracting => "Extracting".to_string(),
            Event::PullComplete => "Pull complete".to_string(),
            Event::Digest(d) => format!("Digest: {d}"),
            Event::DownloadedNewer(r) => format!("Status: Downloaded newer image for {r}"),
            Event::UpToDate(r) => format!("Status: Image is up to date for {r}"),
            Event::PushRefersTo(r) => format!("The push refers to repository [{r}]"),
            Event::Preparing => "Preparing".to_string(),
            Event::Pushing => "Pushing".to_string(),
            Event::Pushed => "Pushed".to_string(),
            Event::LayerAlreadyExists => "Layer already exists".to_string(),
            Event::MountedFrom(r) => format!("Mounted from {r}"),
            Event::PushDigest { tag, digest, size } => {
                format!("{tag}: digest: {digest} size: {size}")
            }
        }
    }
}

/// The 12-hex short form of a digest.
pub fn short(digest: &str) -> String {
    berth_image::short_id(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_wording() {
        let d = format!("sha256:{}", "ab".repeat(32));
        let p = Progress::bytes(&d, Event::Downloading, 5, 10);
        assert_eq!(p.id.as_deref(), Some("abababababab"));
        assert_eq!(p.status(), "Downloading");
        assert_eq!(
            Progress::image(Event::UpToDate("busybox:latest".into())).status(),
            "Status: Image is up to date for busybox:latest"
        );
        assert_eq!(
            Progress::image(Event::RetryingIn(1)).status(),
            "Retrying in 1 second"
        );
    }
}
