//! The real desktop app under Xvfb, driven through WebKitWebDriver, against a real server:
//! sign in, add a file through the `enqueue` command (the one a drop uses), see it confirmed and
//! in history, sign out and in, and a watched folder picking up a new file. Screens are saved to
//! `docs/screenshots/desktop-*.png`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use ferry_protocol::Role;
use ferry_tests::TestServer;
use serde_json::{Value, json};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

struct Driver {
    child: Child,
    http: reqwest::Client,
    base: String,
    session: String,
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

impl Driver {
    async fn start(home: &Path, data: &Path) -> Self {
        let port = free_port();
        let script = format!(
            "eval \"$(printf pw | gnome-keyring-daemon --unlock --components=secrets)\"; exec WebKitWebDriver --port={port}"
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
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = command
            .spawn()
            .expect("xvfb-run, dbus-run-session and WebKitWebDriver (xtask installs them)");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(90))
            .build()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while http.get(format!("{base}/status")).send().await.is_err() {
            assert!(Instant::now() < deadline, "WebKitWebDriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "webkitgtk:browserOptions": {"binary": desktop_bin(), "args": []}
        }}});
        // Session creation hangs when the app cannot start: bound it.
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
        Self {
            child,
            http,
            base,
            session,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
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

    async fn find(&self, css: &str) -> Option<String> {
        let v = self
            .call(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        v[ELEMENT].as_str().map(str::to_owned)
    }

    async fn wait_for(&self, css: &str, secs: u64) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(id) = self.find(css).await {
                return id;
            }
            assert!(
                Instant::now() < deadline,
                "{css} did not appear within {secs} s"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn script(&self, script: &str, args: Value) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
        .await
    }

    async fn type_into(&self, css: &str, text: &str) {
        let id = self.wait_for(css, 30).await;
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

    async fn click_text(&self, text: &str) {
        let clicked = self
            .script(
                "const b = [...document.querySelectorAll('button')].find(b => b.textContent.trim() === arguments[0]); if (b) b.click(); return !!b;",
                json!([text]),
            )
            .await;
        assert_eq!(clicked, json!(true), "no button {text:?}");
    }

    async fn invoke(&self, command: &str, args: Value) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/async",
            Some(json!({
                "script": "const done = arguments[arguments.length - 1]; window.__TAURI_INTERNALS__.invoke(arguments[0], arguments[1]).then(v => done({ok: v ?? null}), e => done({err: e}));",
                "args": [command, args]
            })),
        )
        .await
    }

    async fn screenshot(&self, name: &str) {
        let png = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap_or_default())
            .unwrap();
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("desktop-{name}.png")), bytes).unwrap();
    }

    async fn sign_in(&self, server: &str, password: &str) {
        self.type_into("input[name=server]", server).await;
        self.type_into("input[name=username]", "alice").await;
        self.type_into("input[name=password]", password).await;
        self.click_text("Sign in").await;
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.find("nav[aria-label=Screens]").await.is_none() {
            if Instant::now() > deadline {
                let alert = self.script("return document.querySelector('[role=alert]')?.textContent ?? document.body.innerText", json!([])).await;
                self.screenshot("failure").await;
                panic!("signing in did not open the uploads: {alert}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // The app reopens on the screen it was on; uploads is where the next steps start.
        self.click_text("Uploads").await;
        self.wait_for("[data-testid=drop]", 10).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_desktop_app_signs_in_uploads_and_watches_a_folder() {
    let server = TestServer::start().await;
    let password = server.add_user("alice", Role::User);
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let started = Instant::now();
    let driver = Driver::start(&home, &dir.path().join("data")).await;
    driver.wait_for("input[name=server]", 60).await;
    eprintln!(
        "desktop: first paint of the sign-in form {} ms after launch",
        started.elapsed().as_millis()
    );
    driver.screenshot("sign-in").await;

    driver.sign_in(&server.api, &password).await;
    let file = dir.path().join("from-the-desktop.txt");
    std::fs::write(&file, b"dropped on the window").unwrap();
    let reply = driver.invoke("enqueue", json!({"paths": [file]})).await;
    assert!(reply.get("err").is_none(), "{reply}");
    driver
        .wait_for("[data-testid=item][data-state=confirmed]", 60)
        .await;
    driver.screenshot("uploads").await;

    driver.click_text("History").await;
    driver.wait_for("[data-testid=history-row]", 30).await;
    let names = driver.script("return [...document.querySelectorAll('[data-testid=history-row]')].map(r => r.textContent)", json!([])).await;
    assert!(
        names.to_string().contains("from-the-desktop.txt"),
        "{names}"
    );
    driver.screenshot("history").await;

    driver.click_text("Sign out").await;
    driver.wait_for("input[name=server]", 30).await;
    driver.sign_in(&server.api, &password).await;

    let folder = dir.path().join("watched");
    std::fs::create_dir(&folder).unwrap();
    let reply = driver
        .invoke(
            "add_folder",
            json!({"folder": {"path": folder, "prefix": "inbox", "excludes": []}}),
        )
        .await;
    assert!(reply.get("err").is_none(), "{reply}");
    std::fs::write(folder.join("appeared.txt"), b"picked up by the watcher").unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let page = server.history("alice", &password).await;
        if page.items.iter().any(|r| {
            r.key.ends_with("inbox/appeared.txt")
                && r.status == ferry_protocol::UploadStatus::Confirmed
        }) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the watched folder's file was not uploaded"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    driver.click_text("Folders").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    driver.screenshot("folders").await;
    driver.click_text("Settings").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    driver.screenshot("settings").await;

    // "Start Ferry when I log in" writes the desktop's autostart entry, and unticking removes it.
    let settings = driver.invoke("settings", json!({})).await;
    let mut wanted = settings["ok"].clone();
    wanted["startAtLogin"] = json!(true);
    let reply = driver
        .invoke("save_settings", json!({"settings": wanted}))
        .await;
    assert!(reply.get("err").is_none(), "{reply}");
    let autostart = home.join(".config/autostart");
    let entries = || {
        std::fs::read_dir(&autostart)
            .map(|d| d.count())
            .unwrap_or(0)
    };
    assert_eq!(
        entries(),
        1,
        "an autostart entry in {}",
        autostart.display()
    );
    wanted["startAtLogin"] = json!(false);
    let reply = driver
        .invoke("save_settings", json!({"settings": wanted}))
        .await;
    assert!(reply.get("err").is_none(), "{reply}");
    assert_eq!(entries(), 0);

    if let Ok(out) = Command::new("pgrep")
        .args(["-f", desktop_bin().to_str().unwrap()])
        .output()
    {
        for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
                let rss = status
                    .lines()
                    .find(|l| l.starts_with("VmRSS"))
                    .unwrap_or_default()
                    .to_owned();
                eprintln!("desktop: pid {pid} {rss}");
            }
        }
    }
    drop(driver);
}
