//! What the end-to-end tests share: the real test provider, an isolated environment per
//! test (config, data dir, browser log), and a runner for the real `lanyard` binary.
//!
//! The tests need a private Secret Service and must never touch a developer's own
//! keychain, so they refuse to run outside `cargo xtask test`, which provides one.

pub mod fake_idp;
pub mod tray;
pub mod webdriver;
pub mod xvfb;

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Panics unless running inside `cargo xtask test`'s private keychain session.
pub fn require_session() {
    assert!(
        std::env::var_os("LANYARD_TEST_SESSION").is_some(),
        "the end-to-end tests need a private Secret Service: run them with `cargo xtask test`"
    );
}

/// node-oidc-provider (tests/idp/server.mjs), stopped on drop.
pub struct Idp {
    child: Child,
    pub issuer: String,
    /// The private CA's certificate when serving https.
    pub ca: Option<PathBuf>,
    _dir: tempfile::TempDir,
}

impl Idp {
    pub fn start(tls: bool) -> Idp {
        Idp::start_with(tls, &[])
    }

    /// One of the seed providers' profiles (tests/idp/server.mjs `--profile`).
    pub fn profile(name: &str, extra: &[&str]) -> Idp {
        Idp::start_with(false, &[&["--profile", name], extra].concat())
    }

    pub fn start_with(tls: bool, args: &[&str]) -> Idp {
        require_session();
        let dir = tempfile::tempdir().unwrap();
        let mut script_args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        if tls {
            script_args.extend(["--tls".to_owned(), dir.path().display().to_string()]);
        }
        let (child, ready) = spawn_node("server.mjs", &script_args);
        Idp {
            child,
            issuer: ready["issuer"].as_str().unwrap().to_owned(),
            ca: tls.then(|| dir.path().join("ca.pem")),
            _dir: dir,
        }
    }

    /// The provider events seen so far (grant.revoked, end_session.success …).
    pub async fn events(&self) -> Vec<String> {
        let body = self
            .client()
            .get(format!("{}/_test/events", self.issuer))
            .send()
            .await
            .unwrap();
        body.json().await.unwrap()
    }

    /// Turns the provider's fault switch for `path` (under the issuer, such as `/token`):
    /// `hang`, `hold`, `500`, `reset`, `garbage`, or `off` (which also releases the
    /// requests held).
    pub async fn fault(&self, path: &str, mode: &str) {
        let response = self
            .client()
            .get(format!("{}/_test/fault", self.issuer))
            .query(&[("path", path), ("mode", mode)])
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{}",
            response.text().await.unwrap()
        );
    }

    /// How many requests reached `path` so far, faulty or not.
    pub async fn hits(&self, path: &str) -> u64 {
        let body: Value = self
            .client()
            .get(format!("{}/_test/hits", self.issuer))
            .query(&[("path", path)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["hits"].as_u64().unwrap()
    }

    /// A raw refresh at the token endpoint, as an attacker holding an old token would try.
    pub async fn try_refresh(&self, client_id: &str, refresh_token: &str) -> Value {
        let response = self
            .client()
            .post(format!("{}/token", self.issuer))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
                ("client_id", client_id),
            ])
            .send()
            .await
            .unwrap();
        response.json().await.unwrap()
    }

    /// The same, for a confidential client: `authorization` is its Basic header.
    pub async fn try_refresh_with(&self, authorization: &str, refresh_token: &str) -> Value {
        let response = self
            .client()
            .post(self.url_of("token_endpoint").await)
            .header("authorization", authorization)
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ])
            .send()
            .await
            .unwrap();
        response.json().await.unwrap()
    }

    /// What the provider's introspection endpoint (RFC 7662) says of a token.
    pub async fn introspect(&self, authorization: &str, token: &str) -> Value {
        let response = self
            .client()
            .post(self.url_of("introspection_endpoint").await)
            .header("authorization", authorization)
            .form(&[("token", token)])
            .send()
            .await
            .unwrap();
        response.json().await.unwrap()
    }

    /// What the provider's userinfo endpoint answers to a bearer token.
    pub async fn userinfo(&self, token: &str) -> Value {
        let response = self
            .client()
            .get(self.url_of("userinfo_endpoint").await)
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        response.json().await.unwrap()
    }

    /// A GET of `url` with these headers (a resource request, say): the status and the
    /// body as JSON (`null` when it is not).
    pub async fn get_with(&self, url: &str, headers: &[(String, String)]) -> (u16, Value) {
        let mut request = self.client().get(url);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn url_of(&self, endpoint: &str) -> String {
        let discovery: Value = self
            .client()
            .get(format!("{}/.well-known/openid-configuration", self.issuer))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        discovery[endpoint].as_str().unwrap().to_owned()
    }

    fn client(&self) -> reqwest::Client {
        let mut builder = reqwest::Client::builder();
        if let Some(ca) = &self.ca {
            let pem = std::fs::read(ca).unwrap();
            builder = builder.add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap());
        }
        builder.build().unwrap()
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One test's world: its accounts file, data directory and browser settings.
pub struct Env {
    dir: tempfile::TempDir,
    pub config: PathBuf,
    vars: Vec<(String, String)>,
}

/// What a `lanyard` run did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }

    #[track_caller]
    pub fn assert_ok(&self) -> &Run {
        assert_eq!(self.code, 0, "lanyard failed: {self:#?}");
        self
    }

    #[track_caller]
    pub fn assert_fails(&self, code: i32, message: &str) -> &Run {
        assert_eq!(self.code, code, "wrong exit code: {self:#?}");
        assert!(
            self.stderr.contains(message),
            "stderr lacks {message:?}: {self:#?}"
        );
        self
    }
}

impl Env {
    pub fn new() -> Env {
        require_session();
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.toml");
        std::fs::write(&config, "").unwrap();
        let mut env = Env {
            vars: vec![],
            config,
            dir,
        };
        env.set("XDG_DATA_HOME", &env.path("data"));
        env.set("XDG_CONFIG_HOME", &env.path("config-home"));
        env.set(
            "BROWSER",
            &root().join("tests/idp/browser.mjs").display().to_string(),
        );
        env.set("LANYARD_TEST_BROWSER_LOG", &env.path("browser.log"));
        env.set(
            "LANYARD_TEST_BROWSER_PROFILE",
            &env.path("chromium-profile"),
        );
        // Each test has its own runtime directory, so its own default agent socket
        // (`$XDG_RUNTIME_DIR/lanyard/agent.sock`): none runs there unless the test starts
        // one, and then every command asks it, as on a desktop.
        let run = env.path("run");
        std::fs::create_dir(&run).unwrap();
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o700)).unwrap();
        }
        env.set("XDG_RUNTIME_DIR", &run);
        env
    }

    /// The agent's default socket in this test's world.
    pub fn socket(&self) -> String {
        self.path("run/lanyard/agent.sock")
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    pub fn set(&mut self, key: &str, value: &str) {
        self.vars.retain(|(k, _)| k != key);
        self.vars.push((key.to_owned(), value.to_owned()));
    }

    /// The environment a tool run by the test needs to reach this test's Lanyard.
    pub fn vars(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn unset(&mut self, key: &str) {
        self.vars.retain(|(k, _)| k != key);
    }

    /// Trusts the provider's private CA, the way a user would with SSL_CERT_FILE.
    pub fn trust(&mut self, idp: &Idp) {
        if let Some(ca) = &idp.ca {
            self.set("SSL_CERT_FILE", &ca.display().to_string());
        }
    }

    /// Appends `[accounts.NAME]` with `body` to the accounts file.
    pub fn account(&self, name: &str, body: &str) {
        let mut text = std::fs::read_to_string(&self.config).unwrap();
        text.push_str(&format!("\n[accounts.{name}]\n{body}\n"));
        std::fs::write(&self.config, text).unwrap();
    }

    /// Appends `[accounts.NAME]` for the test provider's public client, `lanyard-public`.
    pub fn public_account(&self, name: &str, idp: &Idp) {
        self.account(
            name,
            &format!(
                "issuer = \"{}\"\nclient_id = \"lanyard-public\"",
                idp.issuer
            ),
        );
    }

    /// The access token `lanyard token ACCOUNT --json ARGS` prints (it must succeed).
    pub async fn access_token(&self, account: &str, args: &[&str]) -> String {
        let mut all = vec!["token", account, "--json"];
        all.extend_from_slice(args);
        let run = self.lanyard(&all).await;
        run.assert_ok().json()["access_token"]
            .as_str()
            .expect("a token")
            .to_owned()
    }

    pub async fn lanyard(&self, args: &[&str]) -> Run {
        self.lanyard_with_stdin(args, "").await
    }

    /// `lanyard ARGS` in this environment, all of its standard streams piped.
    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_lanyard"));
        cmd.args(args)
            .env("LANYARD_CONFIG", &self.config)
            .env_remove("RUST_LOG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in &self.vars {
            cmd.env(k, v);
        }
        cmd
    }

    pub async fn lanyard_with_stdin(&self, args: &[&str], stdin: &str) -> Run {
        run_with_stdin(self.command(args), stdin).await
    }

    /// The person's own phone in a device flow: the test's browser opens `url` (the
    /// verification URL with the code) and signs in there.
    pub async fn phone(&self, url: &str) {
        let mut cmd = tokio::process::Command::new(root().join("tests/idp/browser.mjs"));
        cmd.arg(url);
        for (k, v) in &self.vars {
            cmd.env(k, v);
        }
        let status = cmd.status().await.unwrap();
        assert!(
            status.success(),
            "the phone's browser failed: {:?}",
            self.browser_runs().last()
        );
    }

    /// Starts `lanyard login NAME --device` and returns it with the verification URL it
    /// printed (the one with the code in it).
    pub async fn login_device(&self, name: &str) -> (tokio::process::Child, String) {
        use tokio::io::AsyncBufReadExt as _;
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_lanyard"));
        cmd.args(["login", name, "--device"])
            .env("LANYARD_CONFIG", &self.config)
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in &self.vars {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let mut seen = String::new();
        while let Some(line) = lines.next_line().await.unwrap() {
            seen.push_str(&line);
            seen.push('\n');
            if let Some(rest) = line.strip_prefix("(or open ") {
                let url = rest
                    .split_whitespace()
                    .next()
                    .unwrap()
                    .trim_end_matches(',');
                // Keep draining stderr, so the CLI never blocks on a full pipe.
                tokio::spawn(async move {
                    while let Ok(Some(line)) = lines.next_line().await {
                        eprintln!("lanyard login --device: {line}");
                    }
                });
                return (child, url.to_owned());
            }
        }
        panic!("lanyard login --device printed no verification URL:\n{seen}");
    }

    /// The browser's log entries, one per run, oldest first.
    pub fn browser_runs(&self) -> Vec<Value> {
        std::fs::read_to_string(self.path("browser.log"))
            .unwrap_or_default()
            .lines()
            // A line being written is read once it is whole.
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// A person at a browser on another machine opens `link` (with
    /// `LANYARD_TEST_BROWSER_ACTION=elsewhere`, the redirect to this machine's 127.0.0.1
    /// fails there) and signs in: the address the browser ended on, to paste back.
    pub async fn sign_in_elsewhere(&self, link: &str) -> String {
        let browser = tokio::process::Command::new(root().join("tests/idp/browser.mjs"))
            .arg(link)
            .envs(self.vars())
            .status()
            .await
            .unwrap();
        assert!(browser.success());
        let run = self.browser_run(0).await;
        let ended_on = run["ended_on"].as_str().unwrap_or_else(|| panic!("{run}"));
        assert!(ended_on.contains("code="), "{run}");
        ended_on.to_owned()
    }

    /// The browser's `n`th run (from 0). The browser writes its entry after Lanyard has
    /// answered the tab, so Lanyard may exit first: wait for the entry to appear (woken
    /// by inotify on each write to the test's directory).
    pub async fn browser_run(&self, n: usize) -> Value {
        let env_dir = self.dir.path().to_owned();
        let log = PathBuf::from(self.path("browser.log"));
        tokio::task::spawn_blocking(move || {
            let runs = || -> Vec<Value> {
                std::fs::read_to_string(&log)
                    .unwrap_or_default()
                    .lines()
                    .filter_map(|l| serde_json::from_str(l).ok())
                    .collect()
            };
            // Watching before the first look: no write is missed in between.
            let writes = Writes::watch(&env_dir);
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            loop {
                if let Some(run) = runs().into_iter().nth(n) {
                    return run;
                }
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                assert!(!left.is_zero(), "the browser logged no run {n}");
                writes.next(left);
            }
        })
        .await
        .unwrap()
    }

    /// Every file under Lanyard's data directory (`$XDG_DATA_HOME/lanyard`), with its contents.
    /// The paths alone, for assertion messages.
    pub fn data_paths(&self) -> Vec<PathBuf> {
        self.data_files().into_iter().map(|(p, _)| p).collect()
    }

    pub fn data_files(&self) -> Vec<(PathBuf, String)> {
        fn walk(dir: &Path, out: &mut Vec<(PathBuf, String)>) {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, out);
                } else {
                    let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
                    out.push((path, text));
                }
            }
        }
        let mut out = vec![];
        walk(&Path::new(&self.path("data")).join("lanyard"), &mut out);
        out
    }
}

/// Runs `cmd` (its standard streams piped) with `stdin` as its input, for at most two
/// minutes.
pub async fn run_with_stdin(mut cmd: tokio::process::Command, stdin: &str) -> Run {
    use tokio::io::AsyncWriteExt as _;
    let mut child = cmd.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).await.unwrap();
    drop(input);
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        child.wait_with_output(),
    )
    .await
    .unwrap_or_else(|_| panic!("{cmd:?} finished within 2 minutes"))
    .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Starts `tests/idp/SCRIPT` with node and returns it with the JSON line it prints when
/// it is ready. Its stdout keeps being drained: a node process whose stdout is closed
/// dies on its next write.
fn spawn_node(script: &str, args: &[String]) -> (Child, Value) {
    let mut child = Command::new("node")
        .arg(root().join("tests/idp").join(script))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("node runs (cargo xtask deps installs it)");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    let ready =
        serde_json::from_str(&line).unwrap_or_else(|_| panic!("{script} did not start: {line:?}"));
    (child, ready)
}

/// `Authorization: Basic` for a confidential client of the test provider (RFC 6749
/// section 2.3.1), to ask its introspection endpoint about any token.
pub fn basic(client_id: &str, secret: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{client_id}:{secret}"))
    )
}

/// A keychain item as another program sees it (`secret-tool lookup`).
pub fn keychain(service: &str, account: &str) -> Option<String> {
    let out = Command::new("secret-tool")
        .args(["lookup", "service", service, "username", account])
        .output()
        .expect("secret-tool runs (cargo xtask deps installs it)");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The token set Lanyard keeps for an account, as JSON.
pub fn stored_tokens(account: &str) -> Option<Value> {
    keychain("lanyard", account).map(|s| serde_json::from_str(&s).unwrap())
}

/// Writes to the files of one directory, as inotify reports them.
struct Writes(std::os::fd::OwnedFd);

impl Writes {
    fn watch(dir: &Path) -> Writes {
        use std::os::fd::FromRawFd as _;
        use std::os::unix::ffi::OsStrExt as _;
        // SAFETY: plain system calls; the descriptor is owned from here on.
        let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC) };
        assert!(fd >= 0, "inotify: {}", std::io::Error::last_os_error());
        let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
        let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).unwrap();
        let mask = libc::IN_MODIFY | libc::IN_CLOSE_WRITE | libc::IN_CREATE;
        // SAFETY: a valid descriptor and a NUL-terminated path.
        let watch = unsafe {
            libc::inotify_add_watch(std::os::fd::AsRawFd::as_raw_fd(&fd), path.as_ptr(), mask)
        };
        assert!(watch >= 0, "inotify: {}", std::io::Error::last_os_error());
        Writes(fd)
    }

    /// Waits until something is written (or `within` passes), and takes the events.
    fn next(&self, within: std::time::Duration) {
        let fd = std::os::fd::AsRawFd::as_raw_fd(&self.0);
        let mut poll = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = within.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd; then a read into a buffer of the size given.
        unsafe {
            if libc::poll(&mut poll, 1, ms) > 0 {
                let mut buf = [0u8; 4096];
                libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
            }
        }
    }
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `lanyard agent` on the test's socket, stopped with SIGTERM on drop.
pub struct AgentProc {
    child: Option<tokio::process::Child>,
    /// The lines it writes to stderr after "listening at".
    said: tokio::sync::mpsc::UnboundedReceiver<String>,
}

impl Env {
    pub async fn start_agent(&self) -> AgentProc {
        self.start_agent_with(&[]).await
    }

    pub async fn start_agent_with(&self, args: &[&str]) -> AgentProc {
        use tokio::io::AsyncBufReadExt as _;
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_lanyard"));
        cmd.arg("agent")
            .args(args)
            .env("LANYARD_CONFIG", &self.config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in &self.vars {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        // Ready when it says so: the agent announces its socket once it listens.
        let mut stderr = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let mut said = Vec::new();
        let ready = tokio::time::timeout(std::time::Duration::from_secs(30), async {
            while let Ok(Some(line)) = stderr.next_line().await {
                let listening = line.contains("listening at");
                said.push(line);
                if listening {
                    return true;
                }
            }
            false
        })
        .await;
        assert!(
            matches!(ready, Ok(true)),
            "the agent did not start: {}",
            said.join("\n")
        );
        // Keep reading its stderr, so that it never blocks on a full pipe.
        let (tell, said) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok(Some(line)) = stderr.next_line().await {
                let _ = tell.send(line);
            }
        });
        AgentProc {
            child: Some(child),
            said,
        }
    }
}

impl AgentProc {
    pub fn pid(&self) -> u32 {
        self.child.as_ref().and_then(|c| c.id()).unwrap()
    }

    /// Waits (up to 30 s) until the agent writes a line to stderr that contains `needle`.
    pub async fn until_it_says(&mut self, needle: &str) {
        let wait = async {
            while let Some(line) = self.said.recv().await {
                if line.contains(needle) {
                    return true;
                }
            }
            false
        };
        let said = tokio::time::timeout(std::time::Duration::from_secs(30), wait).await;
        assert!(
            matches!(said, Ok(true)),
            "the agent did not say {needle:?} within 30 s"
        );
    }

    /// Waits for the agent to exit on its own (or by someone else's signal).
    pub async fn wait(mut self) -> std::process::ExitStatus {
        self.child.take().unwrap().wait().await.unwrap()
    }

    /// SIGTERM, and the exit status.
    pub async fn stop(mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        // SAFETY: kill with a pid of a child we own and a valid signal number.
        unsafe { libc::kill(child.id().unwrap() as i32, libc::SIGTERM) };
        child.wait().await.unwrap()
    }
}

impl Drop for AgentProc {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.start_kill();
        }
    }
}

/// A stand-in API server (tests/idp/api.mjs) for the tools that use Lanyard's tokens:
/// https with a private CA; 200 when the Authorization header is `expect`, else 401.
pub struct Api {
    child: Child,
    pub url: String,
    pub ca: PathBuf,
    _dir: tempfile::TempDir,
}

impl Api {
    /// `tls`: https with a private CA (`ca`), else plain http.
    pub fn start(tls: bool, expect: &str, content_type: &str, body: &str, challenge: &str) -> Api {
        let dir = tempfile::tempdir().unwrap();
        let tls_args = if tls {
            vec!["--tls".to_owned(), dir.path().display().to_string()]
        } else {
            vec![]
        };
        let mut args = tls_args;
        for (flag, value) in [
            ("--expect", expect),
            ("--type", content_type),
            ("--body", body),
            ("--challenge", challenge),
        ] {
            args.extend([flag.to_owned(), value.to_owned()]);
        }
        let (child, ready) = spawn_node("api.mjs", &args);
        Api {
            child,
            url: ready["url"].as_str().unwrap().to_owned(),
            ca: dir.path().join("ca.pem"),
            _dir: dir,
        }
    }

    /// Every Authorization header the API received.
    pub async fn seen(&self) -> Vec<String> {
        trusting(&self.ca)
            .get(format!("{}/_seen", self.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

impl Drop for Api {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Cargo registry (`tests/idp/registry.mjs`): a sparse index over https that requires
/// a token the provider's userinfo accepts, holding one crate.
pub struct Registry {
    child: Child,
    pub url: String,
    pub ca: PathBuf,
    _dir: tempfile::TempDir,
}

impl Registry {
    /// Serves `krate` (a `.crate` file) as `name` `vers`, checking tokens at `userinfo`.
    pub fn start(userinfo: &str, krate: &Path, name: &str, vers: &str) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let args: Vec<String> = [
            ("--tls", dir.path().display().to_string()),
            ("--userinfo", userinfo.to_owned()),
            ("--crate", krate.display().to_string()),
            ("--name", name.to_owned()),
            ("--vers", vers.to_owned()),
        ]
        .into_iter()
        .flat_map(|(flag, value)| [flag.to_owned(), value])
        .collect();
        let (child, ready) = spawn_node("registry.mjs", &args);
        Registry {
            child,
            url: ready["url"].as_str().unwrap().to_owned(),
            ca: dir.path().join("ca.pem"),
            _dir: dir,
        }
    }

    /// How many requests it served, and how many it refused.
    pub async fn seen(&self) -> (u64, u64) {
        let seen: Value = trusting(&self.ca)
            .get(format!("{}/_seen", self.url))
            .header("authorization", "none")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (
            seen["served"].as_u64().unwrap(),
            seen["refused"].as_u64().unwrap(),
        )
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP client that trusts the test server's private CA at `ca`, if it made one.
fn trusting(ca: &Path) -> reqwest::Client {
    let mut client = reqwest::Client::builder();
    if let Ok(pem) = std::fs::read(ca) {
        client = client.add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap());
    }
    client.build().unwrap()
}

/// A kubeconfig whose cluster is `api` and whose user is `lanyard ARGS` as kubectl's exec
/// plugin (`args`: the YAML list's items), in exec API version `version` and kubectl's
/// interactive mode `mode`, written to `name` in `env`'s directory; its path.
pub fn kubeconfig(
    env: &Env,
    api: &Api,
    version: &str,
    args: &str,
    mode: &str,
    name: &str,
) -> String {
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {}\n    certificate-authority: {}\n\
         users:\n- name: lanyard\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/{version}\n\
         \x20     command: {}\n      args: [{args}]\n      interactiveMode: {mode}\n\
         contexts:\n- name: test\n  context: {{cluster: test, user: lanyard}}\ncurrent-context: test\n",
        api.url,
        api.ca.display(),
        env!("CARGO_BIN_EXE_lanyard")
    );
    let path = env.path(name);
    std::fs::write(&path, kubeconfig).unwrap();
    path
}
