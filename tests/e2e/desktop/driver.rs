//! The real desktop app under Xvfb and D-Bus (with an unlocked gnome-keyring), driven through
//! WebKitWebDriver; the system's file dialogs are driven with xdotool on the same display, as a
//! person would use them.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub(super) struct Driver {
    child: Child,
    http: reqwest::Client,
    base: String,
    session: String,
    /// `DISPLAY` and `XAUTHORITY` of the app's X server.
    display: (String, String),
    /// When the app was asked to start (the WebDriver session's request).
    pub(super) launched: Instant,
    /// The app's home (its desktop session's shell writes under `shell/`).
    home: PathBuf,
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Ends WebKitWebDriver, the app it started, and the Xvfb and D-Bus around them.
        let _ = Command::new("kill")
            .arg("--")
            .arg(format!("-{}", self.child.id()))
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn desktop_bin() -> PathBuf {
    // The installed package's (`cargo xtask test` installs the .deb for `desktop::installed`).
    if let Some(installed) = std::env::var_os("FERRY_DESKTOP_BIN") {
        return PathBuf::from(installed);
    }
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("ferry-desktop");
    assert!(
        bin.exists(),
        "{} is missing: build the workspace first",
        bin.display()
    );
    bin
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits for the file `xvfb-run` wrote its display to.
async fn read_display(file: &Path) -> (String, String) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(text) = std::fs::read_to_string(file)
            && let Some((display, auth)) = text.trim().split_once(' ')
        {
            return (display.to_owned(), auth.to_owned());
        }
        assert!(Instant::now() < deadline, "xvfb-run gave no display");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The locale the tests' sessions have unless one asks for another.
const ENGLISH: &str = "C.UTF-8";

impl Driver {
    pub(super) async fn start(home: &Path, data: &Path) -> Self {
        Self::start_with(home, data, false, ENGLISH).await
    }

    /// A window whose home and data dir are in `dir` — with `desktop`, in a desktop session
    /// with a tray host and a notification daemon (`tests/tools/desktop_shell.py`, up before
    /// the app: a tray icon registers with the host it finds then) —
    /// signed in as `user` to `server` and on its uploads.
    pub(super) async fn signed_in(
        dir: &Path,
        desktop: bool,
        server: &str,
        user: &str,
        password: &str,
    ) -> Self {
        let home = dir.join("home");
        std::fs::create_dir_all(&home).unwrap();
        let driver = Self::start_with(&home, &dir.join("data"), desktop, ENGLISH).await;
        driver.wait_for("input[name=server]", 60).await;
        driver.sign_in_as(server, user, password).await;
        driver
    }

    /// Started in a desktop session (see [`Driver::signed_in`]) whose locale is `lang` (`LANG`, as a
    /// desktop session sets it; the other tests run in `C.UTF-8`, whatever this machine's is).
    pub(super) async fn start_in_desktop_speaking(home: &Path, data: &Path, lang: &str) -> Self {
        Self::start_with(home, data, true, lang).await
    }

    async fn start_with(home: &Path, data: &Path, desktop: bool, lang: &str) -> Self {
        let port = free_port();
        let display_file = home.join("display");
        let shell = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tools/desktop_shell.py");
        let shell_dir = home.join("shell");
        let session = match desktop {
            true => format!(
                "python3 '{}' '{}' 2> '{}' & \
                 for i in $(seq 200); do [ -e '{}' ] && break; sleep 0.05; done; ",
                shell.display(),
                shell_dir.display(),
                home.join("shell.log").display(),
                shell_dir.join("ready").display(),
            ),
            false => String::new(),
        };
        let script = format!(
            "echo \"$DISPLAY $XAUTHORITY\" > '{}'; \
             eval \"$(printf pw | gnome-keyring-daemon --unlock --components=secrets)\"; \
             {session}exec WebKitWebDriver --port={port}",
            display_file.display(),
        );
        let mut command = Command::new("setsid");
        command
            .args([
                "xvfb-run",
                "-a",
                "-s",
                "-screen 0 1280x800x24",
                "dbus-run-session",
                "--",
                "bash",
                "-c",
                &script,
            ])
            .env("HOME", home)
            .env("FERRY_DATA_DIR", data)
            .env("TAURI_WEBVIEW_AUTOMATION", "true")
            .env("LANG", lang)
            .env_remove("LC_ALL")
            .env_remove("LC_MESSAGES")
            .env_remove("LANGUAGE")
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = command
            .spawn()
            .expect("xvfb-run, dbus-run-session and WebKitWebDriver (xtask installs them)");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(150))
            .no_proxy()
            .build()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while http.get(format!("{base}/status")).send().await.is_err() {
            assert!(Instant::now() < deadline, "WebKitWebDriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let display = read_display(&display_file).await;
        if desktop {
            let log = std::fs::read_to_string(home.join("shell.log")).unwrap_or_default();
            assert!(
                shell_dir.join("ready").exists(),
                "the desktop shell did not start: {log}"
            );
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "webkitgtk:browserOptions": {"binary": desktop_bin(), "args": []}
        }}});
        // Session creation hangs when the app cannot start: bound it.
        let launched = Instant::now();
        let created = tokio::time::timeout(
            Duration::from_secs(90),
            http.post(format!("{base}/session")).json(&caps).send(),
        )
        .await
        .expect("the app window did not come up within 90 s")
        .expect("session request");
        let body: Value = created.json().await.unwrap();
        let session = body["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("{body}"))
            .to_owned();
        let driver = Self {
            child,
            http,
            base,
            session,
            display,
            launched,
            home: home.to_owned(),
        };
        // The contract scenario waits for an upload inside one script call.
        driver
            .call(
                reqwest::Method::POST,
                "/timeouts",
                Some(json!({"script": 120_000})),
            )
            .await;
        driver
    }

    /// The process session everything runs in (Xvfb, D-Bus, the driver, the app).
    pub(super) fn leader(&self) -> u32 {
        self.child.id()
    }

    pub(super) async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut request = self.http.request(method, url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let reply: Value = request
            .send()
            .await
            .expect("driver answers")
            .json()
            .await
            .unwrap();
        reply["value"].clone()
    }

    pub(super) async fn find(&self, css: &str) -> Option<String> {
        let v = self
            .call(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        v[ELEMENT].as_str().map(str::to_owned)
    }

    pub(super) async fn wait_for(&self, css: &str, secs: u64) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(id) = self.find(css).await {
                return id;
            }
            if Instant::now() > deadline {
                self.screenshot("failure").await;
                panic!("{css} did not appear within {secs} s");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Runs `script` in the page; its return value. A JavaScript error fails the test.
    pub(super) async fn script(&self, script: &str, args: Value) -> Value {
        let wrapped = format!(
            "try {{ return {{ok: (function() {{ {script} }}).apply(null, arguments) ?? null}}; }} \
             catch (e) {{ return {{thrown: String(e)}}; }}"
        );
        let reply = self
            .call(
                reqwest::Method::POST,
                "/execute/sync",
                Some(json!({"script": wrapped, "args": args})),
            )
            .await;
        match reply.get("ok") {
            Some(value) => value.clone(),
            None => panic!("the script failed: {reply}"),
        }
    }

    /// Clears the field and types `text` into it; a line break is typed as the Enter key.
    pub(super) async fn type_into(&self, css: &str, text: &str) {
        let id = self.wait_for(css, 30).await;
        let text = text.replace('\n', "\u{E007}");
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/clear"),
            Some(json!({})),
        )
        .await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/value"),
            Some(json!({"text": text})),
        )
        .await;
    }

    pub(super) async fn click_text(&self, text: &str) {
        let clicked = self
            .script(
                "const b = [...document.querySelectorAll('button')].find(b => b.textContent.trim() === arguments[0]); if (b) b.click(); return !!b;",
                json!([text]),
            )
            .await;
        assert_eq!(clicked, json!(true), "no button {text:?}");
    }

    /// Clicks the button whose accessible label is `label` (the queue's per-row buttons).
    pub(super) async fn click_label(&self, label: &str) {
        let clicked = self
            .script(
                "const b = [...document.querySelectorAll('button')].find(b => b.getAttribute('aria-label') === arguments[0]); if (b) b.click(); return !!b;",
                json!([label]),
            )
            .await;
        assert_eq!(clicked, json!(true), "no button labelled {label:?}");
    }

    /// Calls a command the way the page can: `Ok` with its value or `Err` with its error. A
    /// reply that is neither (a JavaScript or driver error) fails the test.
    pub(super) async fn invoke(&self, command: &str, args: Value) -> Result<Value, Value> {
        let reply = self
            .call(
                reqwest::Method::POST,
                "/execute/async",
                Some(json!({
                    "script": "const done = arguments[arguments.length - 1]; window.__TAURI_INTERNALS__.invoke(arguments[0], arguments[1]).then(v => done({ok: v ?? null}), e => done({err: e ?? null}));",
                    "args": [command, args]
                })),
            )
            .await;
        if let Some(ok) = reply.get("ok") {
            Ok(ok.clone())
        } else if let Some(err) = reply.get("err") {
            Err(err.clone())
        } else {
            panic!("{command}: neither a result nor a command error: {reply}")
        }
    }

    /// Calls several commands at once, as a page that does not wait for one before the next
    /// can (a double click, a reload): each one's `Ok` value or `Err` command error, in order.
    pub(super) async fn invoke_together(
        &self,
        calls: &[(&str, Value)],
    ) -> Vec<Result<Value, Value>> {
        let calls: Vec<Value> = calls.iter().map(|(c, a)| json!([c, a])).collect();
        let reply = self
            .call(
                reqwest::Method::POST,
                "/execute/async",
                Some(json!({
                    "script": "const done = arguments[arguments.length - 1]; Promise.all(arguments[0].map(([c, a]) => window.__TAURI_INTERNALS__.invoke(c, a).then(v => ({ok: v ?? null}), e => ({err: e ?? null})))).then(done);",
                    "args": [calls]
                })),
            )
            .await;
        let replies = reply
            .as_array()
            .unwrap_or_else(|| panic!("not a list of replies: {reply}"));
        replies
            .iter()
            .map(|r| match (r.get("ok"), r.get("err")) {
                (Some(ok), _) => Ok(ok.clone()),
                (_, Some(err)) => Err(err.clone()),
                _ => panic!("neither a result nor a command error: {r}"),
            })
            .collect()
    }

    /// Runs `ui/contract/scenario.js` against the app's own backend object; its steps.
    pub(super) async fn contract_scenario(&self, env: Value) -> Value {
        let source = std::fs::read_to_string(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../ui/contract/scenario.js"),
        )
        .unwrap();
        let source = source.replace("\nexport ", "\n");
        let script = format!(
            "const done = arguments[arguments.length - 1];\n{source}\n\
             scenario(window.__ferry.backend, arguments[0]).then(\
               steps => done({{steps}}), e => done({{thrown: String(e)}}));"
        );
        let reply = self
            .call(
                reqwest::Method::POST,
                "/execute/async",
                Some(json!({"script": script, "args": [env]})),
            )
            .await;
        match reply.get("steps") {
            Some(steps) => steps.clone(),
            None => panic!("the scenario did not finish: {reply}"),
        }
    }

    pub(super) async fn screenshot(&self, name: &str) {
        let png = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let Ok(bytes) =
            base64::engine::general_purpose::STANDARD.decode(png.as_str().unwrap_or_default())
        else {
            return;
        };
        // Screens for the docs go to docs/screenshots; a failure's only to the temp dir.
        let dir = if name == "failure" {
            std::env::temp_dir()
        } else {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots")
        };
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("desktop-{name}.png"));
        std::fs::write(&path, bytes).unwrap();
        if name == "failure" {
            eprintln!("the window at the failure: {}", path.display());
        }
    }

    /// Signs in as `alice`.
    pub(super) async fn sign_in(&self, server: &str, password: &str) {
        self.sign_in_as(server, "alice", password).await;
    }

    /// Fills in the sign-in form, signs in, and opens the uploads.
    pub(super) async fn sign_in_as(&self, server: &str, username: &str, password: &str) {
        self.type_into("input[name=server]", server).await;
        self.type_into("input[name=username]", username).await;
        self.type_into("input[name=password]", password).await;
        self.submit_sign_in().await;
    }

    /// Presses "Sign in" on a filled-in form and waits for the uploads to open (in any
    /// language: the form's submit button, the header's screens).
    pub(super) async fn submit_sign_in(&self) {
        self.script(
            "document.querySelector('form button[type=submit]').click()",
            json!([]),
        )
        .await;
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.find("header nav").await.is_none() {
            if Instant::now() > deadline {
                let alert = self.script("return document.querySelector('[role=alert]')?.textContent ?? document.body.innerText", json!([])).await;
                self.screenshot("failure").await;
                panic!("signing in did not open the uploads: {alert}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // The app reopens on the screen it was on; uploads (the first) is where the next steps
        // start.
        self.script(
            "document.querySelector('header nav button').click()",
            json!([]),
        )
        .await;
        self.wait_for("[data-testid=drop]", 10).await;
    }

    /// Where the desktop session's shell (`tests/tools/desktop_shell.py`) writes what it sees.
    fn shell_dir(&self) -> PathBuf {
        self.home.join("shell")
    }

    /// The tray icons as the StatusNotifier host sees them (title, status, menu labels).
    pub(super) async fn tray(&self) -> Value {
        let path = self.shell_dir().join("tray.json");
        tokio::fs::read_to_string(path)
            .await
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or(Value::Null)
    }

    /// The notifications the session's daemon got, in order (app, summary, body).
    pub(super) async fn notifications(&self) -> Vec<Value> {
        let path = self.shell_dir().join("notifications.jsonl");
        tokio::fs::read_to_string(path)
            .await
            .unwrap_or_default()
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }

    /// Clicks the tray menu's item `label` (through the host, as a person would).
    pub(super) async fn tray_click(&self, label: &str) {
        use tokio::io::AsyncWriteExt;
        let mut commands = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.shell_dir().join("commands"))
            .await
            .expect("the shell's command file");
        commands
            .write_all(format!("click {label}\n").as_bytes())
            .await
            .expect("write the command");
    }

    /// Whether a window titled `title` shows within 30 s.
    pub(super) async fn dialog_shown(&self, title: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.dialog_open(title).await {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        false
    }

    /// Presses `key` in the window titled `title`, and waits until it is gone.
    pub(super) async fn answer_dialog(&self, title: &str, key: &str) {
        self.focus_dialog(title).await;
        self.xdotool(&["key", "--clearmodifiers", key]).await;
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.dialog_open(title).await {
            assert!(
                Instant::now() < deadline,
                "the {title:?} dialog stayed open"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Asks the window to close as a window manager's close button does; how many windows
    /// were asked.
    pub(super) async fn close_window(&self) -> u32 {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tools/close_window.py");
        let mut command = tokio::process::Command::new("python3");
        command
            .arg(script)
            .arg("Ferry")
            .env("DISPLAY", &self.display.0)
            .env("XAUTHORITY", &self.display.1)
            .kill_on_drop(true);
        let output = tokio::time::timeout(Duration::from_secs(30), command.output())
            .await
            .expect("close_window.py finishes")
            .expect("python3 with python-xlib (xtask installs it)");
        String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .unwrap_or(0)
    }

    /// Whether the app's window is shown.
    pub(super) async fn window_shown(&self) -> bool {
        let found = self
            .xdotool(&["search", "--onlyvisible", "--name", "^Ferry$"])
            .await;
        !String::from_utf8_lossy(&found.stdout).trim().is_empty()
    }

    async fn xdotool(&self, args: &[&str]) -> std::process::Output {
        let mut command = tokio::process::Command::new("xdotool");
        // (A UTF-8 locale: titles that are not ASCII are converted through it.)
        command
            .args(args)
            .env("DISPLAY", &self.display.0)
            .env("XAUTHORITY", &self.display.1)
            .env("LC_ALL", "C.UTF-8")
            .kill_on_drop(true);
        tokio::time::timeout(Duration::from_secs(60), command.output())
            .await
            .unwrap_or_else(|_| panic!("xdotool {args:?} did not finish within 60 s"))
            .expect("xdotool (xtask installs it)")
    }

    /// The titles of the shown windows whose title matches `pattern`.
    pub(super) async fn window_titles(&self, pattern: &str) -> Vec<String> {
        let found = self
            .xdotool(&[
                "search",
                "--onlyvisible",
                "--name",
                pattern,
                "getwindowname",
                "%@",
            ])
            .await;
        String::from_utf8_lossy(&found.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    }

    async fn dialog_open(&self, title: &str) -> bool {
        self.xdotool(&["search", "--onlyvisible", "--name", title])
            .await
            .status
            .success()
    }

    /// In the system's file dialog titled `title` (once it opens), chooses `path` as a person
    /// would: Ctrl+L for the location, the path, Enter; then waits for the dialog to close.
    /// Waits for the window titled `title` to show and gives it the keyboard.
    async fn focus_dialog(&self, title: &str) {
        let found = self
            .xdotool(&["search", "--sync", "--onlyvisible", "--name", title])
            .await;
        let window = String::from_utf8_lossy(&found.stdout)
            .lines()
            .next()
            .unwrap_or_else(|| panic!("no {title:?} dialog"))
            .to_owned();
        // GTK needs a moment after mapping before it takes keys.
        tokio::time::sleep(Duration::from_millis(500)).await;
        self.xdotool(&["windowfocus", "--sync", &window]).await;
    }

    pub(super) async fn choose_in_dialog(&self, title: &str, path: &Path) {
        self.focus_dialog(title).await;
        // Out of "Recent" (where a typed folder cannot be chosen) into the home folder.
        self.xdotool(&["key", "--clearmodifiers", "alt+Home"]).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.xdotool(&["key", "--clearmodifiers", "ctrl+l"]).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        // A save dialog proposes a name (its stem selected): the typed path replaces all of it.
        self.xdotool(&["key", "--clearmodifiers", "ctrl+a"]).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let text = path.to_str().expect("a UTF-8 path");
        self.xdotool(&["type", "--delay", "20", text]).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.xdotool(&["key", "Return"]).await;
        // A file is chosen by Enter; for a folder, Enter opens it and "Open" (Alt+O) chooses it.
        let mut tries = 0;
        while self.dialog_open(title).await {
            tries += 1;
            if tries == 10 {
                self.xdotool(&["key", "--clearmodifiers", "alt+o"]).await;
            }
            if tries > 100 {
                panic!("the {title:?} dialog did not close");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
