//! Just enough of the Chrome DevTools Protocol (over a minimal WebSocket client) to drive headless Chromium:
//! navigate, evaluate JavaScript, capture a screenshot.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Browser {
    child: Child,
    pub port: u16,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts headless Chromium with a DevTools port on loopback.
    pub fn start() -> Browser {
        let profile = tempfile::tempdir().expect("profile dir");
        let bin = ["chromium", "chromium-browser", "google-chrome"]
            .into_iter()
            .find(|b| Command::new("which").arg(b).output().map(|o| o.status.success()).unwrap_or(false))
            .expect("chromium is required for the directory test: apt-get install chromium (scripts/test.sh does)");
        let mut child = Command::new(bin)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                "--window-size=1200,900",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chromium");
        let err = child.stderr.take().expect("stderr");
        let mut port = 0;
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("ws://127.0.0.1:").nth(1) {
                port = rest
                    .split('/')
                    .next()
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(0);
                break;
            }
        }
        assert!(port > 0, "chromium did not report its DevTools port");
        Browser {
            child,
            port,
            _profile: profile,
        }
    }

    /// Opens the first page target.
    pub fn page(&self) -> Page {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("devtools http");
            s.set_read_timeout(Some(Duration::from_secs(5)))
                .expect("timeout");
            let req = format!(
                "GET /json/list HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
                self.port
            );
            s.write_all(req.as_bytes()).expect("write");
            // The DevTools server may keep the connection open: read by Content-Length.
            let mut r = BufReader::new(s);
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0u8; len];
            let _ = r.read_exact(&mut body);
            let targets: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let ws = targets
                .as_array()
                .and_then(|a| a.iter().find(|t| t["type"] == "page"))
                .and_then(|t| t["webSocketDebuggerUrl"].as_str())
                .map(str::to_string);
            if let Some(ws) = ws {
                return Page::connect(&ws);
            }
            assert!(Instant::now() < deadline, "no page target");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Page {
    s: TcpStream,
    next_id: u64,
}

impl Page {
    fn connect(url: &str) -> Page {
        let rest = url.strip_prefix("ws://").expect("ws url");
        let (hostport, path) = rest.split_once('/').expect("ws path");
        let mut s = TcpStream::connect(hostport).expect("connect devtools");
        s.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let req = format!(
            "GET /{path} HTTP/1.1\r\nHost: {hostport}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        s.write_all(req.as_bytes()).expect("handshake");
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            s.read_exact(&mut b).expect("handshake response");
            head.push(b[0]);
        }
        assert!(
            head.starts_with(b"HTTP/1.1 101"),
            "{}",
            String::from_utf8_lossy(&head)
        );
        Page { s, next_id: 1 }
    }

    fn send_frame(&mut self, payload: &[u8]) {
        let mask = [0x12u8, 0x34, 0x56, 0x78];
        let mut f = vec![0x81u8];
        let n = payload.len();
        if n < 126 {
            f.push(0x80 | n as u8);
        } else if n < 65536 {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        } else {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
        f.extend_from_slice(&mask);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.s.write_all(&f).expect("send frame");
    }

    fn read_message(&mut self) -> String {
        let mut msg = Vec::new();
        loop {
            let mut h = [0u8; 2];
            self.s.read_exact(&mut h).expect("frame header");
            let fin = h[0] & 0x80 != 0;
            let mut len = (h[1] & 0x7f) as u64;
            if len == 126 {
                let mut e = [0u8; 2];
                self.s.read_exact(&mut e).expect("len16");
                len = u16::from_be_bytes(e) as u64;
            } else if len == 127 {
                let mut e = [0u8; 8];
                self.s.read_exact(&mut e).expect("len64");
                len = u64::from_be_bytes(e);
            }
            let mut p = vec![0u8; len as usize];
            self.s.read_exact(&mut p).expect("payload");
            msg.extend_from_slice(&p);
            if fin {
                return String::from_utf8_lossy(&msg).into_owned();
            }
        }
    }

    /// Sends a command and returns its `result`.
    pub fn call(&mut self, method: &str, params: serde_json::Value) -> serde_json::Value {
        match self.try_call(method, params) {
            Ok(r) => r,
            Err(e) => panic!("{method}: {e}"),
        }
    }

    /// Sends a command and returns its `result`, or the `error` the browser answered with.
    fn try_call(
        &mut self,
        method: &str,
        params: serde_json::Value,
    ) -> Result<serde_json::Value, serde_json::Value> {
        let id = self.next_id;
        self.next_id += 1;
        let m = serde_json::json!({"id": id, "method": method, "params": params});
        self.send_frame(&serde_json::to_vec(&m).expect("json"));
        loop {
            let v: serde_json::Value =
                serde_json::from_str(&self.read_message()).unwrap_or_default();
            if v["id"] == id {
                return match v.get("error") {
                    Some(e) => Err(e.clone()),
                    None => Ok(v["result"].clone()),
                };
            }
        }
    }

    /// Evaluates an expression and returns its value.
    pub fn eval(&mut self, expr: &str) -> serde_json::Value {
        match self.try_eval(expr) {
            Ok(v) => v,
            Err(e) => panic!("Runtime.evaluate of {expr}: {e}"),
        }
    }

    /// Evaluates an expression: its value, or the error the browser answered with.
    fn try_eval(&mut self, expr: &str) -> Result<serde_json::Value, serde_json::Value> {
        let r = self.try_call(
            "Runtime.evaluate",
            serde_json::json!({"expression": expr, "returnByValue": true}),
        )?;
        Ok(r["result"]["value"].clone())
    }

    /// Waits until `expr` is truthy.
    pub fn wait_for(&mut self, expr: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            // An evaluation that meets a navigation (a click's) is answered "Inspected target navigated or
            // closed": not there yet, so ask again on the new page.
            match self.try_eval(expr) {
                Ok(serde_json::Value::Bool(true)) => return,
                Ok(_) => {}
                Err(e)
                    if e["message"]
                        .as_str()
                        .is_some_and(|m| m.contains("navigated")) => {}
                Err(e) => panic!("Runtime.evaluate of {expr}: {e}"),
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("timed out waiting for {expr}");
    }
}
