//! A real browser for the console's tests: Debian's chromium, headless, driven
//! through chromedriver's WebDriver protocol (plain HTTP and JSON).

use crate::common::Running;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Browser {
    _driver: Running,
    session: String,
    base: String,
    _profile: tempfile::TempDir,
    /// Where screenshots go (target/tmp/console-screenshots).
    pub shots: PathBuf,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn call(method: &str, url: &str, body: Option<Value>) -> Value {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut resp = match (method, body) {
        ("GET", _) => agent.get(url).call(),
        ("DELETE", _) => agent.delete(url).call(),
        (_, body) => agent
            .post(url)
            .header("Content-Type", "application/json")
            .send(body.unwrap_or(json!({})).to_string()),
    }
    .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let text = resp.body_mut().read_to_string().unwrap();
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    assert!(v["value"].get("error").is_none(), "{method} {url}: {text}");
    v["value"].clone()
}

impl Browser {
    pub fn start() -> Browser {
        let port = free_port();
        let driver = Running(
            Command::new("chromedriver")
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("chromedriver (scripts/deps.sh installs chromium-driver)"),
        );
        let base = format!("http://127.0.0.1:{port}");
        assert!(
            crate::common::wait_for(|| std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()),
            "chromedriver did not start"
        );
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--lang=zh-CN",
                    "--window-size=1366,768",
                    format!("--user-data-dir={}", profile.path().display()),
                ]
            }
        }}});
        let v = call("POST", &format!("{base}/session"), Some(caps));
        let session = v["sessionId"].as_str().unwrap().to_string();
        let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
        std::fs::create_dir_all(&shots).unwrap();
        Browser {
            _driver: driver,
            session,
            base,
            _profile: profile,
            shots,
        }
    }

    fn url(&self, tail: &str) -> String {
        format!("{}/session/{}{tail}", self.base, self.session)
    }

    pub fn goto(&self, url: &str) {
        call("POST", &self.url("/url"), Some(json!({ "url": url })));
    }

    pub fn current_url(&self) -> String {
        call("GET", &self.url("/url"), None)
            .as_str()
            .unwrap()
            .to_string()
    }

    fn find(&self, css: &str) -> String {
        let v = call(
            "POST",
            &self.url("/element"),
            Some(json!({"using": "css selector", "value": css})),
        );
        v[ELEMENT].as_str().unwrap().to_string()
    }

    /// The visible text of the first element matching `css`.
    pub fn text(&self, css: &str) -> String {
        let id = self.find(css);
        call("GET", &self.url(&format!("/element/{id}/text")), None)
            .as_str()
            .unwrap()
            .to_string()
    }

    pub fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css);
        call("POST", &self.url(&format!("/element/{id}/clear")), None);
        call(
            "POST",
            &self.url(&format!("/element/{id}/value")),
            Some(json!({ "text": text })),
        );
    }

    /// Click a link or a form's button and wait for the next page to load
    /// (the clicked element goes stale when the page is replaced).
    pub fn click(&self, css: &str) {
        let id = self.find(css);
        call("POST", &self.url(&format!("/element/{id}/click")), None);
        let gone = crate::common::wait_for(|| {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build()
                .into();
            let text = agent
                .get(&self.url(&format!("/element/{id}/name")))
                .call()
                .ok()
                .and_then(|mut r| r.body_mut().read_to_string().ok())
                .unwrap_or_default();
            text.contains("stale element reference")
        });
        assert!(gone, "clicking {css} did not lead to another page");
        let loaded = crate::common::wait_for(|| {
            call(
                "POST",
                &self.url("/execute/sync"),
                Some(json!({"script": "return document.readyState", "args": []})),
            ) == "complete"
        });
        assert!(loaded, "the page after {css} did not load");
    }

    /// The page's whole text (what a person reads).
    pub fn page_text(&self) -> String {
        self.text("body")
    }

    /// Save a PNG of the window as NAME.png; returns its path.
    pub fn screenshot(&self, name: &str) -> PathBuf {
        use base64::Engine;
        let b64 = call("GET", &self.url("/screenshot"), None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        let path = self.shots.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    /// Copy a screenshot where the README shows it, when asked to
    /// (SEDX_SCREENSHOTS=1; the images in docs/img are refreshed by hand).
    pub fn keep_for_docs(&self, shot: &Path) {
        if std::env::var_os("SEDX_SCREENSHOTS").is_some() {
            let docs = crate::common::repo().join("docs/img");
            std::fs::create_dir_all(&docs).unwrap();
            std::fs::copy(shot, docs.join(shot.file_name().unwrap())).unwrap();
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = ureq::delete(&self.url("")).call();
    }
}
