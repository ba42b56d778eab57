//! The real desktop app under Xvfb, driven through WebKitWebDriver, against a real server (its
//! store behind the fault-injecting proxy): the backend contract scenario (the one MemoryBackend
//! passes in the UI tests, with a file that is retried and a second account), sign in, add a file
//! through the system's file dialog, see it confirmed and in history, the page refused when it
//! names paths or calls plugins, real credential refresh events, sign out and in, and a watched
//! folder (chosen in the folder dialog) picking up a new file. Screens are saved to
//! `docs/screenshots/desktop-*.png`. The capability and CSP check needs no window.

mod adopted;
mod big_queue;
mod capabilities;
mod closing;
mod conflicts;
mod driver;
mod installed;
mod language;
mod network;
mod queue;
mod rest;
mod settings;
mod tray;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ferry_protocol::Role;
use ferry_server::ServeOptions;
use ferry_tests::TestServer;
use ferry_tests::proxy::{Action, Proxy, Rule};
use serde_json::{Value, json};

use self::driver::Driver;

const FILES_DIALOG: &str = "Add files to Ferry";
const FOLDER_DIALOG: &str = "Choose a folder for Ferry";

/// A server whose grants point at a fault-injecting proxy in front of its store (no faults until
/// a test adds them), options adjusted by `adjust`.
async fn server_behind_store_proxy(adjust: impl FnOnce(&mut ServeOptions)) -> (TestServer, Proxy) {
    let store = Proxy::unconnected().await;
    let url = store.url();
    let server = TestServer::start_with(|o| {
        o.store_public_url = Some(url);
        adjust(o);
    })
    .await;
    let upstream = server.server.store_url();
    store.set_upstream(
        upstream
            .trim_start_matches("http://")
            .parse()
            .unwrap_or_else(|e| panic!("{upstream}: {e}")),
    );
    (server, store)
}

/// Compares the scenario's steps with `ui/contract/expected.json`, one step at a time.
fn assert_contract(steps: &Value) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../ui/contract/expected.json");
    let expected: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let (got, want) = (steps.as_array().unwrap(), expected.as_array().unwrap());
    for (got, want) in got.iter().zip(want) {
        assert_eq!(
            got, want,
            "the desktop differs from the contract at this step"
        );
    }
    assert_eq!(got.len(), want.len(), "steps: {steps:#}");
}

/// Waits until the queue shows `name` confirmed.
async fn wait_confirmed(driver: &Driver, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let check = "return [...document.querySelectorAll('[data-testid=item]')].some(r => r.textContent.includes(arguments[0]) && r.dataset.state === 'confirmed');";
    while driver.script(check, json!([name])).await != json!(true) {
        if Instant::now() > deadline {
            driver.screenshot("failure").await;
            panic!("{name} was not confirmed within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The page names paths and calls plugins: each is refused, and nothing is read or changed.
async fn the_page_is_not_trusted(driver: &Driver, dir: &Path, home: &Path) {
    let secret = dir.join("not-picked.txt");
    std::fs::write(&secret, b"the page never picked this").unwrap();
    let refused = [
        ("enqueue", json!({"paths": [secret]})),
        ("enqueue", json!({"ids": [secret]})),
        ("enqueue", json!({"ids": [987_654]})),
        (
            "add_folder",
            json!({"folder": {"path": dir, "prefix": "", "excludes": []}}),
        ),
        ("plugin:autostart|enable", json!({})),
        (
            "plugin:notification|notify",
            json!({"options": {"title": "x"}}),
        ),
        ("plugin:dialog|open", json!({"options": {}})),
        ("plugin:window-state|save_window_state", json!({"flags": 0})),
    ];
    for (command, args) in refused {
        let reply = driver.invoke(command, args.clone()).await;
        assert!(reply.is_err(), "{command} {args} was allowed: {reply:?}");
    }
    let unknown = driver.invoke("enqueue", json!({"ids": [987_654]})).await;
    assert_eq!(unknown.unwrap_err()["code"], json!("unknown_pick"));
    let plugin = driver.invoke("plugin:autostart|enable", json!({})).await;
    assert!(
        plugin.unwrap_err().to_string().contains("not allowed"),
        "refused by the capability"
    );
    assert!(
        !home.join(".config/autostart").exists(),
        "no autostart entry"
    );
    let queue = driver.invoke("queue", json!({})).await.unwrap();
    assert!(
        !queue.to_string().contains("not-picked.txt"),
        "the named file was not queued: {queue}"
    );
}

/// Engine events reach the page: a refresh is announced, then its result.
async fn credentials_refresh_for_real(driver: &Driver) {
    driver
        .script(
            "window.__seen = []; window.__ferry.backend.onEvent(e => window.__seen.push(e.type)); return true;",
            json!([]),
        )
        .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let seen = loop {
        let seen = driver.script("return window.__seen;", json!([])).await;
        let types: Vec<&str> = seen
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .filter(|t| t.starts_with("credentials_"))
            .collect();
        if let Some(at) = types.iter().position(|t| *t == "credentials_refreshing")
            && types[at..].contains(&"credentials_refreshed")
        {
            break seen;
        }
        assert!(
            Instant::now() < deadline,
            "no refresh announced in 20 s: {seen}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let status = driver.invoke("credentials", json!({})).await.unwrap();
    assert!(status["expiresAt"].is_string(), "{status}");
    assert!(status["refreshedAt"].is_string(), "{status}");
    assert_eq!(status["lastError"], Value::Null, "{status} after {seen}");
    let bar = driver
        .script(
            "return document.querySelector('[data-testid=refresh]').textContent;",
            json!([]),
        )
        .await;
    assert!(
        bar.to_string().contains("Refreshed at") || bar.to_string().contains("Refreshing"),
        "{bar}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_desktop_app_signs_in_uploads_and_watches_a_folder() {
    // Grants of 8 s: the app refreshes them every 4 s, which the page must be told about.
    let (server, store) = server_behind_store_proxy(|o| o.grant_ttl = Duration::from_secs(8)).await;
    let password = server.add_user("alice", Role::User);
    let other = server.add_user("bob", Role::User);
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let driver = Driver::start(&home, &dir.path().join("data")).await;
    driver.wait_for("input[name=server]", 60).await;
    driver.screenshot("sign-in").await;

    // The contract: the app's own backend object, the real server, the real file dialog.
    let contract_file = dir.path().join("contract.txt");
    std::fs::write(&contract_file, b"the contract scenario").unwrap();
    // The scenario's file fails its first attempt: five PUTs answered 503.
    let busy = store.add(
        Rule::new(Action::s3_error(
            503,
            "SlowDown",
            "Please reduce your request rate.",
        ))
        .method("PUT")
        .target("contract.txt")
        .times(5),
    );
    let env = json!({
        "server": server.api, "username": "alice", "password": password,
        "other": {"username": "bob", "password": other},
    });
    let (steps, ()) = tokio::join!(
        driver.contract_scenario(env),
        driver.choose_in_dialog(FILES_DIALOG, &contract_file)
    );
    assert_contract(&steps);
    assert_eq!(busy.applied(), 5, "the scenario's file met the fault");
    // Signed out (the scenario ends so): diagnostics are refused before any dialog opens.
    let refused = driver.invoke("save_diagnostics", json!({})).await;
    assert_eq!(refused.unwrap_err()["code"], json!("signed_out"));

    driver.sign_in(&server.api, &password).await;
    let file = dir.path().join("from-the-desktop.txt");
    std::fs::write(&file, b"picked in the dialog").unwrap();
    driver.click_text("Add files…").await;
    driver.choose_in_dialog(FILES_DIALOG, &file).await;
    wait_confirmed(&driver, "from-the-desktop.txt").await;
    the_page_is_not_trusted(&driver, dir.path(), &home).await;
    credentials_refresh_for_real(&driver).await;
    driver.screenshot("uploads").await;

    driver.click_text("History").await;
    driver.wait_for("[data-testid=history-row]", 30).await;
    let names = driver.script("return [...document.querySelectorAll('[data-testid=history-row]')].map(r => r.textContent)", json!([])).await;
    assert!(
        names.to_string().contains("from-the-desktop.txt"),
        "{names}"
    );
    assert!(!names.to_string().contains("not-picked.txt"), "{names}");
    driver.screenshot("history").await;

    driver.click_text("Sign out").await;
    driver.wait_for("input[name=server]", 30).await;
    sign_ins_at_once_end_in_one_session(&driver, &server, &password).await;
    driver.sign_in(&server.api, &password).await;
    watch_a_folder(&driver, &server, &password, dir.path()).await;
    settings_start_at_login(&driver, &home).await;
    admin_history(&driver, &server).await;
    other_server(&driver, &server, dir.path()).await;
    drop(driver);
}

/// Two sign-ins sent at once (a double click) and a session check among them (the page
/// reloaded meanwhile) each succeed, one after the other: none finds the data dir still held
/// by another's engine, and alice is signed in. Then a sign-out signs out.
async fn sign_ins_at_once_end_in_one_session(driver: &Driver, server: &TestServer, password: &str) {
    let request = json!({"request": {
        "server": server.api, "username": "alice", "password": password,
        "remember": false, "memoryOnly": true,
    }});
    let replies = driver
        .invoke_together(&[
            ("sign_in", request.clone()),
            ("restore", json!({})),
            ("sign_in", request),
        ])
        .await;
    for reply in &replies {
        assert!(reply.is_ok(), "{replies:?}");
    }
    let status = driver.invoke("restore", json!({})).await.unwrap();
    assert_eq!(status["user"]["name"], json!("alice"), "{status}");
    driver.invoke("sign_out", json!({})).await.unwrap();
    let status = driver.invoke("restore", json!({})).await.unwrap();
    assert_eq!(status["user"], Value::Null, "{status}");
}

/// An admin's history in the real window: everyone's uploads and the chart per day (its
/// bars' heights are checked in the UI tests, over several days of history).
async fn admin_history(driver: &Driver, server: &TestServer) {
    let password = server.add_user("carol", Role::Admin);
    driver.click_text("Sign out").await;
    driver.wait_for("input[name=server]", 30).await;
    driver.sign_in_as(&server.api, "carol", &password).await;
    driver.click_text("History").await;
    driver.wait_for("svg.chart rect", 30).await;
    driver.screenshot("history-admin").await;
}

/// "Other server": a connection profile typed into the sign-in form for an app server built
/// from Alibaba's tutorial; the file goes up with its credentials, and History says it stays on
/// this computer.
async fn other_server(driver: &Driver, server: &TestServer, dir: &Path) {
    let config = json!({"shape": "aliyun_sts", "provider": "oss", "users": {"erin": "pw-erin"}});
    let (tutorial, own) = crate::token_servers::tutorial(server, config).await;
    let profile = format!(
        "token_url = \"{}/sts\"\nshape = \"aliyun_sts\"\n\n[storage]\nprovider = \"oss\"\n\
         endpoint = \"{}\"\naddressing = \"domain\"\nregion = \"{}\"\nbucket = \"{}\"\n\
         prefix = \"{}{{user}}/\"\n",
        tutorial.url, own.endpoint, own.region, own.bucket, own.prefix
    );
    driver.click_text("Sign out").await;
    driver.wait_for("input[name=server]", 30).await;
    driver
        .click_text("Other server (connection profile)…")
        .await;
    driver
        .type_into("textarea[name=connection]", &profile)
        .await;
    driver.type_into("input[name=username]", "erin").await;
    driver.type_into("input[name=password]", "pw-erin").await;
    // Typed keys may still be on their way to the page; the picture shows the filled-in form.
    let deadline = Instant::now() + Duration::from_secs(10);
    let filled = "const p = document.querySelector('input[name=password]'); \
                  document.querySelector('textarea[name=connection]').scrollTop = 0; \
                  return p.value;";
    while driver.script(filled, json!([])).await != json!("pw-erin") && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // WebKit under Xvfb paints a burst of keystrokes some time after the DOM has them.
    tokio::time::sleep(Duration::from_secs(2)).await;
    driver.screenshot("other-server").await;
    driver.submit_sign_in().await;

    let file = dir.join("for-the-tutorial-server.txt");
    std::fs::write(&file, b"via a connection profile").unwrap();
    driver.click_text("Add files…").await;
    driver.choose_in_dialog(FILES_DIALOG, &file).await;
    wait_confirmed(driver, "for-the-tutorial-server.txt").await;
    let key = format!("{}erin/for-the-tutorial-server.txt", own.prefix);
    let stored = server.server.object_bytes(&own.bucket, &key).await.unwrap();
    assert_eq!(stored.as_deref(), Some(&b"via a connection profile"[..]));

    driver.click_text("History").await;
    driver.wait_for("[data-testid=local-history]", 30).await;
    driver.screenshot("history-local").await;
    drop(tutorial);
}

/// Folders → Choose… (the folder dialog) → Watch folder; a new file there is uploaded.
async fn watch_a_folder(driver: &Driver, server: &TestServer, password: &str, dir: &Path) {
    let folder = dir.join("watched");
    std::fs::create_dir(&folder).unwrap();
    driver.click_text("Folders").await;
    driver.click_text("Choose…").await;
    driver.choose_in_dialog(FOLDER_DIALOG, &folder).await;
    // (The dialog's answer reaches the page a moment after the dialog closes.)
    let chosen = queue::wait_text(driver, "chosen-folder", "the chosen folder", |t| {
        t.starts_with('/')
    })
    .await;
    assert_eq!(chosen, folder.display().to_string());
    driver.type_into("input[name=prefix]", "inbox").await;
    driver.click_text("Watch folder").await;
    let folders = loop {
        let folders = driver.invoke("folders", json!({})).await.unwrap();
        if folders.as_array().is_some_and(|f| !f.is_empty()) {
            break folders;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(folders[0]["path"], json!(folder), "{folders}");
    std::fs::write(folder.join("appeared.txt"), b"picked up by the watcher").unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let page = server.history("alice", password).await;
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
    tokio::time::sleep(Duration::from_millis(500)).await;
    driver.screenshot("folders").await;
}

/// "Start Ferry when I log in" writes the desktop's autostart entry; unticking removes it.
async fn settings_start_at_login(driver: &Driver, home: &Path) {
    driver.click_text("Settings").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    driver.screenshot("settings").await;
    let mut wanted = driver.invoke("settings", json!({})).await.unwrap();
    wanted["startAtLogin"] = json!(true);
    let saved = driver
        .invoke("save_settings", json!({"settings": wanted}))
        .await;
    assert_eq!(saved, Ok(Value::Null));
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
    // Started at login, Ferry goes to the tray rather than opening its window.
    let entry = std::fs::read_dir(&autostart)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let text = std::fs::read_to_string(&entry).unwrap();
    assert!(
        text.lines()
            .any(|l| l.starts_with("Exec=") && l.contains("--hidden")),
        "{text}"
    );
    wanted["startAtLogin"] = json!(false);
    let saved = driver
        .invoke("save_settings", json!({"settings": wanted}))
        .await;
    assert_eq!(saved, Ok(Value::Null));
    assert_eq!(entries(), 0);
}
