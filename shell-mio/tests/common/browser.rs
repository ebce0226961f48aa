//! A real headless browser for page tests: Debian's `chromium` driven through its
//! `chromedriver` with the W3C WebDriver protocol (JSON over HTTP on loopback), so the
//! tests need nothing beyond the two Debian packages.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{Proc, free_port};

/// A WebDriver session in a headless Chromium.
pub(crate) struct Browser {
    _driver: Proc,
    port: u16,
    session: String,
    /// Where screenshots go.
    pub(crate) shots: PathBuf,
}

/// `None` (and a line saying so) when Chromium or its driver is not installed, unless
/// `CI` is set: there `.ci/run` installs both, so their absence is a failure.
pub(crate) fn browser(profile: &Path) -> Option<Browser> {
    let have =
        Path::new("/usr/bin/chromium").exists() && Path::new("/usr/bin/chromedriver").exists();
    if !have {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium and chromium-driver (Debian) are missing: .ci/run installs them"
        );
        eprintln!(
            "skipped: /usr/bin/chromium or /usr/bin/chromedriver missing (Debian packages chromium, chromium-driver)"
        );
        return None;
    }
    let port = free_port();
    let driver = Proc(
        Command::new("/usr/bin/chromedriver")
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver"),
    );
    let end = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < end, "chromedriver did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    let caps = json!({"capabilities": {"alwaysMatch": {
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            // The machine's network is closed: no background connections.
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                     "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                     "--window-size=1400,1000",
                     format!("--user-data-dir={}", profile.display())],
        }
    }}});
    let v = call(port, "POST", "/session", Some(&caps));
    let session = v["value"]["sessionId"]
        .as_str()
        .unwrap_or_else(|| panic!("no WebDriver session: {v}"))
        .to_owned();
    let shots = std::env::var_os("TRAWL_SCREENSHOTS").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots"),
        PathBuf::from,
    );
    std::fs::create_dir_all(&shots).expect("screenshot dir");
    Some(Browser {
        _driver: driver,
        port,
        session,
        shots,
    })
}

/// One WebDriver command: the decoded answer.
fn call(port: u16, method: &str, path: &str, body: Option<&Value>) -> Value {
    use std::io::{Read, Write};
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("chromedriver");
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("send");
    // chromedriver may keep the connection open: read the head, then its length.
    let mut raw = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    let rest = loop {
        let n = s.read(&mut buf).expect("read");
        assert!(n > 0, "{method} {path}: connection closed early");
        raw.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&raw).into_owned();
        let Some((head, body)) = text.split_once("\r\n\r\n") else {
            continue;
        };
        let lower = head.to_ascii_lowercase();
        if lower.contains("transfer-encoding: chunked") {
            if let Some(b) = super::unchunk(body) {
                break b;
            }
            continue;
        }
        let len = lower
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        if body.len() >= len {
            break body[..len].to_owned();
        }
    };
    serde_json::from_str(&rest).unwrap_or_else(|e| panic!("{method} {path}: {e}: {rest}"))
}

impl Browser {
    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let v = call(
            self.port,
            method,
            &format!("/session/{}{path}", self.session),
            body.as_ref(),
        );
        assert!(
            v["value"].get("error").is_none(),
            "WebDriver {method} {path}: {v}"
        );
        v["value"].clone()
    }

    /// Loads `url` and waits for the page.
    pub(crate) fn go(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url })));
    }

    /// The current URL.
    pub(crate) fn url(&self) -> String {
        self.cmd("GET", "/url", None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Runs `script` (a function body; `arguments` available) and returns its value.
    pub(crate) fn js(&self, script: &str) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
    }

    /// The element ids matching a CSS selector.
    pub(crate) fn find_all(&self, css: &str) -> Vec<String> {
        let v = self.cmd(
            "POST",
            "/elements",
            Some(json!({"using": "css selector", "value": css})),
        );
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| {
                e.as_object()
                    .and_then(|o| o.values().next())
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .collect()
    }

    /// The first element matching `css` (panics if none).
    pub(crate) fn find(&self, css: &str) -> String {
        self.find_all(css)
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no element {css} on {}", self.url()))
    }

    /// The visible text of element `id`.
    pub(crate) fn text(&self, id: &str) -> String {
        self.cmd("GET", &format!("/element/{id}/text"), None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Clicks element `id`.
    pub(crate) fn click(&self, id: &str) {
        self.cmd("POST", &format!("/element/{id}/click"), Some(json!({})));
    }

    /// Types `text` into element `id`.
    pub(crate) fn type_into(&self, id: &str, text: &str) {
        self.cmd(
            "POST",
            &format!("/element/{id}/value"),
            Some(json!({ "text": text })),
        );
    }

    /// Saves a screenshot of the page as `<shots>/<name>.png`.
    pub(crate) fn screenshot(&self, name: &str) -> PathBuf {
        let b64 = self.cmd("GET", "/screenshot", None);
        let png = base64(b64.as_str().unwrap_or_default());
        assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
        let p = self.shots.join(format!("{name}.png"));
        std::fs::write(&p, png).expect("screenshot");
        p
    }

    /// Waits until `f` holds (at most `max`).
    pub(crate) fn until(&self, max: Duration, what: &str, mut f: impl FnMut(&Browser) -> bool) {
        let end = Instant::now() + max;
        while !f(self) {
            assert!(
                Instant::now() < end,
                "timed out waiting for {what} on {}",
                self.url()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = call(
            self.port,
            "DELETE",
            &format!("/session/{}", self.session),
            None,
        );
    }
}

/// Standard base64 (as WebDriver sends screenshots).
fn base64(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for v in s.bytes().filter_map(val) {
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}
