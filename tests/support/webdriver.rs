//! The desktop app in its real webview: Xvfb for a display, `tauri-driver` (which runs
//! Debian's WebKitWebDriver) for WebDriver, and a small W3C WebDriver client.
//!
//! Waits are event-driven: [`Session::wait_for`] runs a script in the page that resolves
//! from a `MutationObserver` the moment the element (and text) appears.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

pub use super::xvfb::Display;

/// One app at a time: the app is single-instance on the session bus the tests share, so
/// a second one would hand its arguments to the first and exit.
pub static ONE_APP: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The W3C key under which an element reference travels.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// `tauri-driver`, stopped on drop (with the app it started).
pub struct Driver {
    child: Child,
    url: String,
    http: reqwest::Client,
}

/// Where `cargo xtask deps` installs tauri-driver.
pub fn tauri_driver() -> PathBuf {
    std::env::var_os("LANYARD_TAURI_DRIVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| super::root().join("target/tools/bin/tauri-driver"))
}

/// The desktop app's binary, beside the `lanyard` binary the tests run.
pub fn desktop_app() -> PathBuf {
    let app = PathBuf::from(env!("CARGO_BIN_EXE_lanyard")).with_file_name("lanyard-desktop");
    assert!(
        app.exists(),
        "{} is missing: build it with `cargo build -p lanyard-desktop` (cargo xtask test does)",
        app.display()
    );
    app
}

impl Driver {
    /// Starts tauri-driver with `vars` (the test's environment) on `display`.
    async fn start(display: &Display, vars: &[(String, String)]) -> Driver {
        let driver = tauri_driver();
        assert!(
            driver.exists(),
            "{} is missing: install it with `cargo xtask deps`",
            driver.display()
        );
        let port = super::free_port();
        let native = super::free_port();
        let mut cmd = Command::new(driver);
        // Its own process group: on drop the driver, WebKitWebDriver and the app all go,
        // even when a failed test never closed its session.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        cmd.args(["--port", &port.to_string()])
            .args(["--native-port", &native.to_string()])
            .env("DISPLAY", &display.name)
            .env_remove("WAYLAND_DISPLAY")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (k, v) in vars {
            cmd.env(k, v);
        }
        Driver {
            child: cmd.spawn().unwrap(),
            url: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        }
    }

    /// Whether the driver answers WebDriver's `/status`. tauri-driver listens at once and
    /// forwards to WebKitWebDriver, which it starts at the same time: a session asked for
    /// before WebKitWebDriver listens is dropped unanswered (under load that took longer
    /// than three fresh drivers). `/status` answers only once the whole chain is up.
    /// A driver that exits (it could not bind its port) is not ready.
    async fn ready(&mut self) -> bool {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while tokio::time::Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return false;
            }
            let status = self
                .http
                .get(format!("{}/status", self.url))
                .timeout(Duration::from_secs(5))
                .send()
                .await;
            if status.is_ok_and(|r| r.status().is_success()) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    /// tauri-driver with a session of the app, which it starts. The driver's two ports
    /// are picked free just before it binds them, and a parallel test can take one in
    /// between: then the driver never gets ready, and a fresh one is started on new ports.
    pub async fn launch(display: &Display, vars: &[(String, String)]) -> (Driver, Session) {
        Driver::launch_app(display, vars, &desktop_app()).await
    }

    /// [`Driver::launch`] for another Tauri app of the workspace (`app`, its binary).
    pub async fn launch_app(
        display: &Display,
        vars: &[(String, String)],
        app: &std::path::Path,
    ) -> (Driver, Session) {
        let app = app.to_owned();
        for _ in 0..3 {
            let mut driver = Driver::start(display, vars).await;
            if !driver.ready().await {
                continue;
            }
            if let Some(session) = driver.session(&app).await {
                return (driver, session);
            }
        }
        panic!("tauri-driver never answered");
    }

    /// A session with the app, or `None` when the driver cannot be reached.
    async fn session(&self, app: &std::path::Path) -> Option<Session> {
        let caps = json!({"capabilities": {"alwaysMatch": {
            "tauri:options": {"application": app},
        }}});
        let response = self
            .http
            .post(format!("{}/session", self.url))
            .json(&caps)
            .timeout(Duration::from_secs(120))
            .send()
            .await
            .ok()?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "no session ({status}): {body}");
        let value = body["value"].clone();
        let id = value["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {value}"))
            .to_owned();
        let session = Session {
            base: format!("{}/session/{id}", self.url),
            http: self.http.clone(),
        };
        session
            .post("timeouts", &json!({"script": 60_000, "implicit": 0}))
            .await;
        Some(session)
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // SAFETY: kill with the negated pid of a process group we created, and a valid signal.
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

async fn call(http: &reqwest::Client, method: &str, url: &str, body: &Value) -> Value {
    let request = match method {
        "GET" => http.get(url),
        "DELETE" => http.delete(url),
        _ => http.post(url).json(body),
    };
    let response = request
        .timeout(Duration::from_secs(120))
        .send()
        .await
        .unwrap_or_else(|e| panic!("WebDriver {method} {url}: {e}"));
    let status = response.status();
    let value: Value = response.json().await.unwrap_or(Value::Null);
    assert!(
        status.is_success(),
        "WebDriver {method} {url} failed ({status}): {value}"
    );
    value["value"].clone()
}

pub struct Session {
    base: String,
    http: reqwest::Client,
}

impl Session {
    async fn post(&self, path: &str, body: &Value) -> Value {
        call(&self.http, "POST", &format!("{}/{path}", self.base), body).await
    }

    async fn get(&self, path: &str) -> Value {
        call(
            &self.http,
            "GET",
            &format!("{}/{path}", self.base),
            &Value::Null,
        )
        .await
    }

    /// Runs `script` in the page without waiting for an answer, which may never come:
    /// for a script that ends the app (the caller waits on the app's exit instead).
    pub async fn run_last(&self, script: &str) {
        let url = format!("{}/execute/sync", self.base);
        let send = self
            .http
            .post(&url)
            .json(&json!({"script": script, "args": []}))
            .send();
        // Bounded: a driver left without its app may never answer.
        let _ = tokio::time::timeout(Duration::from_secs(10), send).await;
    }

    /// Runs `script`, a function body whose last argument is the callback it must call
    /// with its result, and returns that result.
    pub async fn run_async(&self, script: &str, args: Value) -> Value {
        self.post("execute/async", &json!({"script": script, "args": args}))
            .await
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and returns its value.
    pub async fn run(&self, script: &str, args: Value) -> Value {
        self.post("execute/sync", &json!({"script": script, "args": args}))
            .await
    }

    /// Waits until an element matching `selector` (and containing `text`) is in the page.
    pub async fn wait_for(&self, selector: &str, text: &str) {
        let script = r#"
            const [selector, text, done] = arguments;
            const found = () => [...document.querySelectorAll(selector)]
                .some((el) => !text || el.textContent.includes(text));
            if (found()) return done(true);
            const observer = new MutationObserver(() => {
                if (found()) { observer.disconnect(); done(true); }
            });
            observer.observe(document, { subtree: true, childList: true, characterData: true, attributes: true });
        "#;
        let url = format!("{}/execute/async", self.base);
        let response = self
            .http
            .post(&url)
            .json(&json!({"script": script, "args": [selector, text]}))
            .send()
            .await
            .unwrap();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if body["value"] != json!(true) {
            let page = self
                .run(
                    "return document.querySelector('main')?.innerText",
                    json!([]),
                )
                .await;
            panic!("never appeared: {selector} {text:?} ({body})\nthe window shows: {page}");
        }
    }

    /// The text of the first element matching `selector`.
    pub async fn text(&self, selector: &str) -> String {
        self.on_element(selector, "GET", "text", &Value::Null)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub async fn click(&self, selector: &str) {
        self.on_element(selector, "POST", "click", &json!({})).await;
    }

    /// Presses the mouse button on `selector`'s element and holds it: [`Session::release`]
    /// lets go. Whatever happens in between (the window redrawing) is what a person's
    /// press meets.
    pub async fn press(&self, selector: &str) {
        self.wait_for(selector, "").await;
        let found = self
            .post(
                "element",
                &json!({"using": "css selector", "value": selector}),
            )
            .await;
        let id = found[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {selector}"));
        let actions = json!({"actions": [{
            "type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"},
            "actions": [
                {"type": "pointerMove", "duration": 0, "origin": {ELEMENT: id}, "x": 0, "y": 0},
                {"type": "pointerDown", "button": 0},
            ],
        }]});
        self.post("actions", &actions).await;
    }

    /// Lets go of the button [`Session::press`] holds.
    pub async fn release(&self) {
        let actions = json!({"actions": [{
            "type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"},
            "actions": [{"type": "pointerUp", "button": 0}],
        }]});
        self.post("actions", &actions).await;
    }

    /// Counts the model's events of `kind` the window receives from now on:
    /// [`Session::events_seen`] waits on the count.
    pub async fn count_events(&self, kind: &str) {
        // Counted once the page's own listeners have run (the next task): by then the
        // window has redrawn for the event.
        let script = "const [kind, done] = arguments; window.__seen = window.__seen ?? {}; \
            const seen = window.__seen[kind] = { n: 0, waiters: [] }; \
            window.__TAURI__.event.listen('lanyard://event', (e) => { \
              if (e.payload.type !== kind) return; \
              setTimeout(() => { seen.n += 1; seen.waiters = seen.waiters.filter((w) => !w()); }); \
            }).then(() => done(true));";
        self.post("execute/async", &json!({"script": script, "args": [kind]}))
            .await;
    }

    /// Waits until the window has received (and handled) at least `n` events of `kind`
    /// since [`Session::count_events`].
    pub async fn events_seen(&self, kind: &str, n: u64) {
        let script = "const [kind, n, done] = arguments; const seen = window.__seen[kind]; \
            const enough = () => seen.n >= n && (done(true), true); \
            if (!enough()) seen.waiters.push(enough);";
        let seen = self
            .post(
                "execute/async",
                &json!({"script": script, "args": [kind, n]}),
            )
            .await;
        assert_eq!(seen, json!(true), "the window never got {n} {kind} events");
    }

    /// Types into an input (after clearing it).
    pub async fn fill(&self, selector: &str, text: &str) {
        self.on_element(selector, "POST", "clear", &json!({})).await;
        self.on_element(selector, "POST", "value", &json!({"text": text}))
            .await;
    }

    /// Finds the element and acts on it. The window redraws when the model's events
    /// arrive, so the element found may be replaced before (or while) it is used: then it
    /// is found again.
    async fn on_element(&self, selector: &str, method: &str, action: &str, body: &Value) -> Value {
        for _ in 0..5 {
            self.wait_for(selector, "").await;
            let found = self
                .try_call(
                    "POST",
                    &format!("{}/element", self.base),
                    &json!({"using": "css selector", "value": selector}),
                )
                .await;
            let Some(value) = found else { continue };
            let id = value[ELEMENT]
                .as_str()
                .unwrap_or_else(|| panic!("no element {selector}: {value}"));
            let url = format!("{}/element/{id}/{action}", self.base);
            if let Some(value) = self.try_call(method, &url, body).await {
                return value;
            }
        }
        panic!("{selector} kept being replaced");
    }

    /// A call that may meet a stale element: `None` then; any other failure panics.
    async fn try_call(&self, method: &str, url: &str, body: &Value) -> Option<Value> {
        let request = match method {
            "GET" => self.http.get(url),
            _ => self.http.post(url).json(body),
        };
        let response = request.send().await.unwrap();
        let status = response.status();
        let value: Value = response.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            return Some(value["value"].clone());
        }
        assert_eq!(
            value["value"]["error"], "stale element reference",
            "WebDriver {method} {url} failed ({status}): {value}"
        );
        None
    }

    /// A PNG of the window, once the page has painted its latest change.
    pub async fn screenshot(&self) -> Vec<u8> {
        use base64::Engine as _;
        // Two animation frames: the DOM change is on screen before the capture.
        self.post(
            "execute/async",
            &json!({"script": "const done = arguments[0]; requestAnimationFrame(() => requestAnimationFrame(() => done(true)));", "args": []}),
        )
        .await;
        let data = self.get("screenshot").await;
        base64::engine::general_purpose::STANDARD
            .decode(data.as_str().unwrap_or_default())
            .unwrap()
    }

    /// The window's handles: none once the window is closed (closing destroys it).
    async fn handles(&self) -> Vec<String> {
        let handles = self.get("window/handles").await;
        handles
            .as_array()
            .map(|h| {
                h.iter()
                    .filter_map(|h| h.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Waits until the app has no window left: closing it destroyed it (webview and web
    /// process with it) and left the app in the tray.
    pub async fn wait_until_closed(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while !self.handles().await.is_empty() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the window is still there 30 s after it was closed"
            );
            // The driver is polled a tenth of a second apart, up to the deadline.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits for the app to open its window anew, moves the session to it and waits for
    /// its page to be ready.
    pub async fn wait_for_window(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let handle = loop {
            if let Some(handle) = self.handles().await.into_iter().next() {
                break handle;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no window 30 s after it was asked for"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        self.post("window", &json!({"handle": handle})).await;
        self.wait_for("body[data-ready='true']", "").await;
    }

    pub async fn close(self) {
        call(&self.http, "DELETE", &self.base, &Value::Null).await;
    }
}
