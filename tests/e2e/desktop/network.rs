//! The network settings in the real window: a manual HTTP proxy that asks for a password, the
//! password kept in the OS keychain (gnome-keyring) and never in `settings.json`; saved while
//! signed in, the requests from then on go through the proxy (no new sign-in), and "Test
//! connection" says both the app server and the storage answer.

use std::time::{Duration, Instant};

use ferry_protocol::Role;
use ferry_tests::TestServer;
use ferry_tests::network::{Login, LoopbackProxy, private_ca};
use ferry_tests::proxy::{Action, Proxy, Rule, RuleHandle};
use serde_json::{Value, json};

use super::driver::Driver;
use super::queue::{add_file, text_of};
use super::wait_confirmed;

fn port_of(url: &str) -> u16 {
    reqwest::Url::parse(url).unwrap().port().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_set_in_the_window_carries_the_session_at_once_and_its_password_stays_in_the_keychain()
 {
    let server = TestServer::start().await;
    let password = server.add_user("alice", Role::User);
    let door = Login {
        user: "corp".into(),
        password: "proxy-secret-7731".into(),
    };
    let proxy = LoopbackProxy::http(Some(door.clone())).await;
    let dir = tempfile::tempdir().unwrap();
    let (home, data) = (dir.path().join("home"), dir.path().join("data"));
    std::fs::create_dir_all(&home).unwrap();
    let driver = Driver::start(&home, &data).await;
    driver.wait_for("input[name=server]", 60).await;
    driver.sign_in_as(&server.api, "alice", &password).await;
    assert!(
        proxy.seen.all().is_empty(),
        "signed in directly: {:?}",
        proxy.seen.all()
    );

    let mut wanted = driver.invoke("settings", json!({})).await.unwrap();
    wanted["proxyMode"] = json!("manual");
    wanted["proxyUrl"] = json!(proxy.url("http"));
    wanted["proxyUser"] = json!(door.user);
    wanted["proxyPassword"] = json!(door.password);
    // A CA to trust too (a company's TLS inspection): the app server and store are plain
    // http here, so it changes nothing but what is checked.
    let (ca, _, _) = private_ca(dir.path());
    wanted["caFile"] = json!(ca);
    let saved = driver
        .invoke("save_settings", json!({"settings": wanted}))
        .await;
    assert_eq!(saved, Ok(Value::Null));
    let kept = std::fs::read_to_string(data.join("settings.json")).unwrap();
    assert!(kept.contains(&proxy.url("http")), "{kept}");
    assert!(
        !kept.contains(&door.password),
        "the password is not in settings.json: {kept}"
    );
    let shown = driver.invoke("settings", json!({})).await.unwrap();
    assert_eq!(shown["proxyPasswordSaved"], json!(true), "{shown}");
    assert!(!shown.to_string().contains(&door.password), "{shown}");

    // The session goes through the proxy from now, with the password from the keychain.
    send(&driver, dir.path(), "proxied.txt").await;
    let (api, store) = (port_of(&server.api), port_of(&server.server.store_url()));
    assert!(proxy.seen.to_port(api) > 0, "{:?}", proxy.seen.all());
    assert!(proxy.seen.to_port(store) > 0, "{:?}", proxy.seen.all());
    assert!(proxy.refused.all().is_empty(), "{:?}", proxy.refused.all());

    // A save that cannot be written, of a new password for the same proxy account, leaves
    // the kept one in the keychain: the engine of a new sign-in still gets through.
    let mut wrong = driver.invoke("settings", json!({})).await.unwrap();
    wrong["proxyPassword"] = json!("a-wrong-password");
    save_unwritten(&driver, &data, &wrong).await;
    driver.click_text("Sign out").await;
    driver.wait_for("input[name=server]", 30).await;
    driver.sign_in_as(&server.api, "alice", &password).await;
    send(&driver, dir.path(), "proxied-again.txt").await;
    assert!(proxy.refused.all().is_empty(), "{:?}", proxy.refused.all());

    driver.click_text("Settings").await;
    // The network panel shows once it has read the settings.
    driver.wait_for("[data-testid=connection-report]", 30).await;
    driver.click_text("Test connection").await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let report = text_of(&driver, "connection-report").await;
        let text = report.as_str().unwrap_or_default();
        if text.contains("App server: answers") && text.contains("Storage: answers") {
            break;
        }
        if Instant::now() > deadline {
            driver.screenshot("failure").await;
            panic!("the connection report: {report}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    driver.screenshot("settings-network").await;

    // The CA file saved with the proxy is gone; another proxy with a new password is then
    // refused (its network cannot be made), and nothing changes — the kept proxy keeps its
    // password in the keychain.
    std::fs::remove_file(&ca).unwrap();
    let mut unusable = driver.invoke("settings", json!({})).await.unwrap();
    unusable["proxyUrl"] = json!("http://127.0.0.1:9");
    unusable["proxyPassword"] = json!("another-password");
    let refused = driver
        .invoke("save_settings", json!({"settings": unusable}))
        .await
        .unwrap_err();
    assert_eq!(refused["code"], json!("invalid_network"), "{refused}");
    let shown = driver.invoke("settings", json!({})).await.unwrap();
    assert_eq!(shown["proxyUrl"], json!(proxy.url("http")), "{shown}");
    assert_eq!(
        shown["proxyPasswordSaved"],
        json!(true),
        "the kept proxy's password is still in the keychain: {shown}"
    );
    // Nor was the refused network's password kept: that proxy, saved without a CA file and
    // without a password, has none.
    let mut other = shown.clone();
    other["proxyUrl"] = json!("http://127.0.0.1:9");
    other["caFile"] = Value::Null;
    let saved = driver
        .invoke("save_settings", json!({"settings": other}))
        .await;
    assert_eq!(saved, Ok(Value::Null));
    let shown = driver.invoke("settings", json!({})).await.unwrap();
    assert_eq!(shown["proxyUrl"], json!("http://127.0.0.1:9"), "{shown}");
    assert_eq!(
        shown["proxyPasswordSaved"],
        json!(false),
        "the refused network's password was not kept: {shown}"
    );

    // A save that cannot be written keeps nothing: neither the settings nor the password it
    // brought for another proxy account.
    let mut unwritten = shown.clone();
    unwritten["proxyUser"] = json!("someone-else");
    unwritten["proxyPassword"] = json!("never-kept-4417");
    save_unwritten(&driver, &data, &unwritten).await;
    let shown = driver.invoke("settings", json!({})).await.unwrap();
    assert_eq!(shown["proxyUser"], json!(door.user), "{shown}");
    unwritten.as_object_mut().unwrap().remove("proxyPassword");
    let saved = driver
        .invoke("save_settings", json!({"settings": unwritten}))
        .await;
    assert_eq!(saved, Ok(Value::Null));
    let shown = driver.invoke("settings", json!({})).await.unwrap();
    assert_eq!(shown["proxyUser"], json!("someone-else"), "{shown}");
    assert_eq!(
        shown["proxyPasswordSaved"],
        json!(false),
        "the password of the save that failed was not kept: {shown}"
    );
}

/// Saves `settings` while `settings.json` cannot be written (a directory where its next copy
/// goes): the save fails `io`.
async fn save_unwritten(driver: &Driver, data: &std::path::Path, settings: &Value) {
    let in_the_way = data.join("settings.json.next");
    std::fs::create_dir_all(in_the_way.join("a directory")).unwrap();
    let failed = driver
        .invoke("save_settings", json!({"settings": settings}))
        .await
        .unwrap_err();
    assert_eq!(failed["code"], json!("io"), "{failed}");
    std::fs::remove_dir_all(&in_the_way).unwrap();
}

/// Writes `name` into `dir`, adds it in the window and waits until it is confirmed.
async fn send(driver: &Driver, dir: &std::path::Path, name: &str) {
    let file = dir.join(name);
    std::fs::write(&file, format!("{name}, sent from the window")).unwrap();
    add_file(driver, &file).await;
    wait_confirmed(driver, name).await;
}

/// Holds the next sign-in 4 s at the app server's front: an engine it opens has read the
/// settings long before it starts.
fn hold_next_sign_in(front: &Proxy) -> RuleHandle {
    front.add(
        Rule::new(Action::Latency(Duration::from_secs(4)))
            .method("POST")
            .target("/sessions")
            .times(1),
    )
}

/// The app server's address behind a fault proxy, and the proxy.
async fn api_behind_proxy(server: &TestServer) -> (String, Proxy) {
    let at: std::net::SocketAddr = server.api.trim_start_matches("http://").parse().unwrap();
    let proxy = Proxy::start(at).await;
    (proxy.url(), proxy)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_or_its_password_saved_while_signing_in_carries_the_session_that_sign_in_opens() {
    let server = TestServer::start().await;
    let password = server.add_user("alice", Role::User);
    let (api, front) = api_behind_proxy(&server).await;
    // The sign-in takes a while: the engine it opens has read the settings before the save.
    let slow = hold_next_sign_in(&front);
    let door = |password: &str| Login {
        user: "corp".into(),
        password: password.into(),
    };
    let proxy = LoopbackProxy::http(Some(door("first"))).await;
    let dir = tempfile::tempdir().unwrap();
    let (home, data) = (dir.path().join("home"), dir.path().join("data"));
    std::fs::create_dir_all(&home).unwrap();
    let driver = Driver::start(&home, &data).await;
    let sign_in = async || {
        driver.type_into("input[name=server]", &api).await;
        driver.type_into("input[name=username]", "alice").await;
        driver.type_into("input[name=password]", &password).await;
    };
    let save = async |wanted: Value| {
        let saved = driver
            .invoke("save_settings", json!({"settings": wanted}))
            .await;
        assert_eq!(saved, Ok(Value::Null));
    };
    driver.wait_for("input[name=server]", 60).await;
    sign_in().await;
    let save_meanwhile = async {
        slow.wait_matched("sign-in at the server").await;
        let mut wanted = driver.invoke("settings", json!({})).await.unwrap();
        wanted["proxyMode"] = json!("manual");
        wanted["proxyUrl"] = json!(proxy.url("http"));
        wanted["proxyUser"] = json!("corp");
        wanted["proxyPassword"] = json!("first");
        save(wanted).await;
    };
    tokio::join!(driver.submit_sign_in(), save_meanwhile);

    send(&driver, dir.path(), "after-the-save.txt").await;
    let store = port_of(&server.server.store_url());
    assert!(
        proxy.seen.to_port(store) > 0,
        "the upload went around the proxy saved during the sign-in: {:?}",
        proxy.seen.all()
    );

    // Signed in again, and while that sign-in is on its way IT changes the proxy's password
    // and the user saves the new one alone: the engine that sign-in opened read the old one.
    driver.click_text("Sign out").await;
    driver.wait_for("input[name=password]", 30).await;
    let slow = hold_next_sign_in(&front);
    sign_in().await;
    let change_meanwhile = async {
        slow.wait_matched("second sign-in at the server").await;
        proxy.set_login(Some(door("second")));
        let mut wanted = driver.invoke("settings", json!({})).await.unwrap();
        wanted["proxyPassword"] = json!("second");
        save(wanted).await;
    };
    tokio::join!(driver.submit_sign_in(), change_meanwhile);
    send(&driver, dir.path(), "after-the-new-password.txt").await;
    assert!(
        proxy.refused.all().is_empty(),
        "refused: {:?}",
        proxy.refused.all()
    );
}
