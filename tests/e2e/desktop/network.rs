//! The network settings in the real window: a manual HTTP proxy that asks for a password, the
//! password kept in the OS keychain (gnome-keyring) and never in `settings.json`; saved while
//! signed in, the requests from then on go through the proxy (no new sign-in), and "Test
//! connection" says both the app server and the storage answer.

use std::time::{Duration, Instant};

use ferry_protocol::Role;
use ferry_tests::TestServer;
use ferry_tests::network::{Login, LoopbackProxy};
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
    let file = dir.path().join("proxied.txt");
    std::fs::write(&file, b"through the company's proxy").unwrap();
    add_file(&driver, &file).await;
    wait_confirmed(&driver, "proxied.txt").await;
    let (api, store) = (port_of(&server.api), port_of(&server.server.store_url()));
    assert!(proxy.seen.to_port(api) > 0, "{:?}", proxy.seen.all());
    assert!(proxy.seen.to_port(store) > 0, "{:?}", proxy.seen.all());
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
}
