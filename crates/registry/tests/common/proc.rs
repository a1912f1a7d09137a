//! A registry server process (the `berth-registry` binary) in a temp root, and a raw HTTP/1.1 client.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Server {
    pub child: Child,
    /// `127.0.0.1:port`.
    pub addr: String,
}

impl Server {
    /// Starts `berth-registry serve --addr 127.0.0.1:0 --root <root> <extra...>`, waits for its address.
    pub fn start(root: &Path, extra: &[&str]) -> Server {
        Server::spawn(root, &["--log-level", "warn"], extra, &[], Stdio::inherit())
    }

    /// Like `start`, with extra environment variables.
    pub fn start_with_env(root: &Path, extra: &[&str], env: &[(&str, String)]) -> Server {
        Server::spawn(root, &["--log-level", "warn"], extra, env, Stdio::inherit())
    }

    /// Like `start`, with every log line (trace level) written to `log`.
    pub fn start_logged(root: &Path, extra: &[&str], log: &Path) -> Server {
        let f = std::fs::File::create(log).expect("log file");
        Server::spawn(root, &["--log-level", "trace"], extra, &[], Stdio::from(f))
    }

    fn spawn(
        root: &Path,
        log_args: &[&str],
        extra: &[&str],
        env: &[(&str, String)],
        stderr: Stdio,
    ) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_berth-registry"))
            .args(["serve", "--addr", "127.0.0.1:0", "--root"])
            .arg(root)
            .args(log_args)
            .args(extra)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start berth-registry");
        let out = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(out)
            .read_line(&mut line)
            .expect("read address");
        let addr = line
            .trim()
            .rsplit("://")
            .next()
            .unwrap_or_default()
            .to_string();
        assert!(addr.starts_with("127.0.0.1:"), "unexpected banner {line:?}");
        Server { child, addr }
    }

    /// SIGKILL, as a crash.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM (this process's child only, by PID).
    pub fn terminate(&self) {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(ok.success());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A response: status, headers (lowercase names), body.
pub struct Raw {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Raw {
    pub fn header(&self, k: &str) -> String {
        self.headers
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }
}

pub fn connect(addr: &str) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    s
}

/// Writes a request head.
pub fn send_head(s: &mut TcpStream, method: &str, path: &str, headers: &[(&str, String)]) {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).expect("write head");
}

/// Reads one response (Content-Length bodies only).
pub fn read_response(s: &mut TcpStream) -> Raw {
    read_response_to(s, false)
}

/// Reads one response; a response to HEAD has no body whatever its Content-Length.
pub fn read_response_to(s: &mut TcpStream, head: bool) -> Raw {
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).expect("status line");
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).expect("header");
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; if head { 0 } else { len }];
    r.read_exact(&mut body).expect("body");
    Raw {
        status,
        headers,
        body,
    }
}

/// One request on a fresh connection.
pub fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> Raw {
    let mut s = connect(addr);
    let mut h: Vec<(&str, String)> = headers.to_vec();
    h.push(("Content-Length", body.len().to_string()));
    h.push(("Connection", "close".into()));
    send_head(&mut s, method, path, &h);
    s.write_all(body).expect("write body");
    read_response_to(&mut s, method == "HEAD")
}
