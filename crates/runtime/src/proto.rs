//! The shim protocol: frames on a unix stream socket, in both directions.
//!
//! A frame is Docker's stdcopy header — one kind byte, three zero bytes, a big-endian `u32` length — and the
//! payload. Output frames (`Stdout`, `Stderr`) can therefore be forwarded unchanged to Docker clients that
//! expect the multiplexed stream. Control traffic is JSON in `Control` frames; the end of the container is an
//! `Exit` frame that every connection receives just before the shim closes it.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// What a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    Stdin = 0,
    Stdout = 1,
    Stderr = 2,
    Control = 3,
    Exit = 4,
}

impl Kind {
    pub fn from_byte(b: u8) -> Option<Kind> {
        Some(match b {
            0 => Kind::Stdin,
            1 => Kind::Stdout,
            2 => Kind::Stderr,
            3 => Kind::Control,
            4 => Kind::Exit,
            _ => return None,
        })
    }
}

pub const HEADER_LEN: usize = 8;
/// No frame is larger than this; a peer that announces more is broken.
pub const MAX_FRAME: usize = 16 << 20;

/// Encode one frame.
pub fn encode(kind: Kind, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(HEADER_LEN + payload.len());
    v.extend_from_slice(&header(kind, payload.len()));
    v.extend_from_slice(payload);
    v
}

/// The 8-byte header for a payload of `len` bytes.
pub fn header(kind: Kind, len: usize) -> [u8; HEADER_LEN] {
    let l = (len as u32).to_be_bytes();
    [kind as u8, 0, 0, 0, l[0], l[1], l[2], l[3]]
}

/// Parse a header: the kind and the payload length.
pub fn parse_header(h: &[u8; HEADER_LEN]) -> Result<(Kind, usize), ProtoError> {
    let kind = Kind::from_byte(h[0]).ok_or(ProtoError::BadKind(h[0]))?;
    let len = u32::from_be_bytes([h[4], h[5], h[6], h[7]]) as usize;
    if len > MAX_FRAME {
        return Err(ProtoError::TooLarge(len));
    }
    Ok((kind, len))
}

/// Incremental decoder for a byte stream of frames. Frames are taken from the front without moving what
/// follows; the consumed front is dropped when it is all consumed or has grown large.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
    start: usize,
}

impl Decoder {
    pub fn push(&mut self, data: &[u8]) {
        self.compact();
        self.buf.extend_from_slice(data);
    }

    /// The buffer to read more bytes into directly (append to it; don't touch what it holds).
    pub fn buffer(&mut self) -> &mut Vec<u8> {
        self.compact();
        &mut self.buf
    }

    fn compact(&mut self) {
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start >= 64 * 1024 && self.start * 2 >= self.buf.len() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
    }

    /// The next complete frame, if any.
    pub fn next_frame(&mut self) -> Result<Option<(Kind, Vec<u8>)>, ProtoError> {
        let avail = &self.buf[self.start..];
        if avail.len() < HEADER_LEN {
            return Ok(None);
        }
        let mut h = [0u8; HEADER_LEN];
        h.copy_from_slice(&avail[..HEADER_LEN]);
        let (kind, len) = parse_header(&h)?;
        if avail.len() < HEADER_LEN + len {
            return Ok(None);
        }
        let payload = avail[HEADER_LEN..HEADER_LEN + len].to_vec();
        self.start += HEADER_LEN + len;
        Ok(Some((kind, payload)))
    }
}

/// A request from the daemon to the shim.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Let the created container run its entrypoint.
    Start,
    /// Send a signal to the container's init process.
    Kill {
        signal: i32,
    },
    /// Stream output (and accept stdin frames) on this connection.
    Attach {
        stdout: bool,
        stderr: bool,
        stdin: bool,
    },
    /// Close the container's stdin (the attached client half-closed).
    CloseStdin,
    /// The container's current state.
    State,
    /// Freeze every process of the container (cgroup freezer), or thaw them.
    Pause,
    Resume,
    /// Set the terminal size of the container (`exec: None`) or of one of its execs.
    Resize {
        exec: Option<String>,
        rows: u16,
        cols: u16,
    },
    /// Run another process in the container (`docker exec`). `process` is an OCI `Process` JSON file. This
    /// connection then carries that process's output (and takes its stdin), and ends with its `Exit` frame.
    Exec {
        exec: String,
        process: std::path::PathBuf,
        tty: bool,
        stdin: bool,
        #[serde(default)]
        console_size: Option<(u16, u16)>,
    },
}

/// The shim's answer to a [`Request`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Reply {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    #[serde(default)]
    pub started: bool,
}

/// How the container ended; written to `exit.json` and sent in the `Exit` frame.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct ExitStatus {
    /// The exit code as Docker reports it: the code, or 128 + signal.
    pub exit_code: i32,
    pub oom_killed: bool,
    /// RFC 3339 time of the exit.
    pub finished_at: String,
    /// Set when the container never ran (start failed): the reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Whether the container's program had been started (an init that ended before its start also
    /// leaves an exit status).
    #[serde(default)]
    pub started: bool,
}

/// Log rotation settings of the json-file driver.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LogConfig {
    pub path: PathBuf,
    /// Rotate when the file reaches this size; 0 means never.
    pub max_size: u64,
    /// How many files to keep, the live one included.
    pub max_files: u32,
}

/// Everything a shim needs: handed to the shim on its input (one line of JSON, after the state directory's).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ShimConfig {
    pub id: String,
    /// Holds `config.json` (the OCI spec, for OCI tools: the shim is handed `spec`); its `root.path` is `rootfs`.
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// The overlay to mount at `rootfs` before the container is created.
    pub lower: Vec<PathBuf>,
    pub upper: PathBuf,
    pub work: PathBuf,
    /// Mount the overlay `volatile` (see `berth_sys::mount::Overlay`): set for `--rm` containers.
    #[serde(default)]
    pub volatile: bool,
    /// The control socket.
    pub socket: PathBuf,
    /// Where the exit status is recorded (atomically).
    pub exit_file: PathBuf,
    pub log: Option<LogConfig>,
    pub open_stdin: bool,
    /// The container has a terminal: its stdio is a pty whose master the shim receives on a console socket.
    #[serde(default)]
    pub tty: bool,
    /// The terminal size (rows, columns) to start with, so the first program sees the client's size.
    #[serde(default)]
    pub console_size: Option<(u16, u16)>,
    /// Files whose `oom_kill N` line tells whether the kernel OOM-killed a process of this container.
    #[serde(default)]
    pub oom_event_files: Vec<PathBuf>,
    /// A seccomp filter the daemon compiled (see [`crate::filter`]); the spec then has no seccomp section
    /// and the shim loads this before the container's process, and every exec'd one, runs its program.
    #[serde(default)]
    pub seccomp: Option<SeccompFilter>,
    /// The container's OCI spec, as in the bundle's `config.json` (written for OCI tools) but for a seccomp
    /// section compiled into `seccomp`. Required: an `Option` for the shim to take it out.
    pub spec: Option<oci_spec::runtime::Spec>,
}

/// Where a precompiled seccomp program lies and how to load it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SeccompFilter {
    /// The exported BPF program (native-endian `struct sock_filter`s).
    pub program: PathBuf,
    /// `seccomp(2)` flags (`SECCOMP_FILTER_FLAG_*`).
    pub flags: u32,
    /// The init may have the kernel compile it on a thread of its own while it sets its root up (see
    /// [`crate::filter::Compiled::compile_ahead`]).
    #[serde(default)]
    pub compile_ahead: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ProtoError {
    #[error("unknown frame kind {0}")]
    BadKind(u8),
    #[error("frame of {0} bytes is larger than the protocol allows")]
    TooLarge(usize),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_across_split_reads() {
        let mut bytes = encode(Kind::Stdout, b"hello\n");
        bytes.extend(encode(Kind::Control, br#"{"op":"start"}"#));
        bytes.extend(encode(Kind::Stderr, b""));
        let mut d = Decoder::default();
        let mut got = vec![];
        for chunk in bytes.chunks(3) {
            d.push(chunk);
            while let Some(f) = d.next_frame().unwrap() {
                got.push(f);
            }
        }
        assert_eq!(got.len(), 3);
        assert_eq!(got[0], (Kind::Stdout, b"hello\n".to_vec()));
        let req: Request = serde_json::from_slice(&got[1].1).unwrap();
        assert_eq!(req, Request::Start);
        assert_eq!(got[2], (Kind::Stderr, vec![]));
    }

    #[test]
    fn many_frames_through_the_read_buffer_keep_their_order() {
        // Frames of varied sizes arriving in odd-sized reads, appended through `buffer()` as the
        // daemon reads: the consumed front is dropped on the way and nothing is lost or reordered.
        let frames: Vec<Vec<u8>> = (0..400u32)
            .map(|i| vec![(i % 251) as u8; (i as usize * 37) % 3000])
            .collect();
        let mut bytes = Vec::new();
        for f in &frames {
            bytes.extend(encode(Kind::Stdout, f));
        }
        let mut d = Decoder::default();
        let mut got = Vec::new();
        for chunk in bytes.chunks(7001) {
            d.buffer().extend_from_slice(chunk);
            while let Some((_, p)) = d.next_frame().unwrap() {
                got.push(p);
            }
        }
        assert_eq!(got, frames);
    }

    #[test]
    fn header_is_docker_stdcopy() {
        assert_eq!(header(Kind::Stderr, 258), [2, 0, 0, 0, 0, 0, 1, 2]);
    }

    #[test]
    fn bad_frames_are_errors() {
        let mut d = Decoder::default();
        d.push(&[9, 0, 0, 0, 0, 0, 0, 1, 0]);
        assert!(matches!(d.next_frame(), Err(ProtoError::BadKind(9))));
        let mut d = Decoder::default();
        d.push(&[1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
        assert!(matches!(d.next_frame(), Err(ProtoError::TooLarge(_))));
    }
}
