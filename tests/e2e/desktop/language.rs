//! The app in the OS's language and in the one chosen in Settings: started in a session whose
//! locale is Chinese (`LANG=zh_CN.UTF-8`), the window, the file dialog and the tray's menu and
//! title are in Simplified Chinese — a failed file explained in it too, and a file already at
//! the store asked about — and switching to English in Settings turns the window and the tray
//! to English at once, without a restart.

use std::time::{Duration, Instant};

use ferry_protocol::Role;
use ferry_tests::proxy::{Action, Rule};
use serde_json::{Value, json};

use super::driver::Driver;
use super::queue::wait_row;
use super::server_behind_store_proxy;
use super::tray::{menu, title, until};

/// Waits until the tray (as the session's StatusNotifier host sees it) passes `check` on its
/// title and its menu's labels.
async fn tray_until(driver: &Driver, what: &str, check: impl Fn(&str, &[String]) -> bool) -> Value {
    let read = async || driver.tray().await;
    until(driver, what, read, |t| check(&title(t), &menu(t))).await
}

/// Clicks the header's button for screen number `n` (0: uploads … 3: settings), whatever its
/// words.
async fn open_screen(driver: &Driver, n: usize) {
    driver
        .script(
            "document.querySelectorAll('header nav button')[arguments[0]].click()",
            json!([n]),
        )
        .await;
}

/// The names of the header's screens, one space apart.
async fn screens(driver: &Driver) -> String {
    let names = driver
        .script(
            "return document.querySelector('header nav').innerText",
            json!([]),
        )
        .await;
    let names = names.as_str().unwrap_or_default();
    names.split_whitespace().collect::<Vec<_>>().join(" ")
}

async fn page_text(driver: &Driver) -> String {
    let text = driver
        .script("return document.body.innerText", json!([]))
        .await;
    text.as_str().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_speaks_the_systems_chinese_and_switches_to_english_from_settings() {
    let (server, store) = server_behind_store_proxy(|_| {}).await;
    let password = server.add_user("alice", Role::User);
    let _refused = store.add(
        Rule::new(Action::s3_error(400, "InvalidRequest", "Not here."))
            .method("PUT")
            .target("refused.txt"),
    );
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let data = dir.path().join("data");
    let driver = Driver::start_in_desktop_speaking(&home, &data, "zh_CN.UTF-8").await;
    driver.wait_for("input[name=server]", 60).await;

    // Signed out: the form and the tray in Chinese, from the OS's locale alone.
    let lang = driver
        .script("return document.documentElement.lang", json!([]))
        .await;
    assert_eq!(lang, json!("zh-CN"));
    assert_eq!(
        driver
            .script("return document.querySelector('h1').textContent", json!([]))
            .await,
        json!("登录 Ferry")
    );
    tray_until(&driver, "the Chinese menu, signed out", |title, menu| {
        title == "未登录" && menu == ["未登录", "打开 Ferry", "全部暂停", "全部继续", "退出"]
    })
    .await;

    // Filled in by script: WebKitWebDriver's typing under this locale drops Shift (":" comes
    // out as ";").
    driver
        .script(
            "for (const [name, value] of Object.entries(arguments[0])) { \
               const input = document.querySelector(`input[name=${name}]`); \
               input.value = value; input.dispatchEvent(new Event('input', {bubbles: true})); }",
            json!([{"server": server.api, "username": "alice", "password": password}]),
        )
        .await;
    driver.submit_sign_in().await;
    // A file the store refuses, added through the system's dialog (its title in Chinese too).
    let refused = dir.path().join("refused.txt");
    std::fs::write(&refused, "refused").unwrap();
    driver.click_text("添加文件…").await;
    // (xdotool matches titles byte by byte: the dialog is found by its ASCII end, then its
    // whole title read.)
    let dialog = ". Ferry$";
    if !driver.dialog_shown(dialog).await {
        driver.screenshot("failure").await;
        panic!("no file dialog: {:?}", driver.window_titles(".").await);
    }
    assert_eq!(driver.window_titles(dialog).await, ["添加文件到 Ferry"]);
    driver.choose_in_dialog(dialog, &refused).await;
    let row = wait_row(
        &driver,
        "refused.txt",
        "failed, in Chinese",
        60,
        |text, row| {
            row["state"] == "failed" && text.contains("失败") && text.contains("InvalidRequest")
        },
    )
    .await;
    // The window's own sentence for the code, then the store's words as it said them.
    assert!(
        row["text"].as_str().unwrap().contains("存储服务拒绝了请求"),
        "{row}"
    );
    assert_eq!(row["buttons"], json!(["重试", "取消"]), "{row}");
    tray_until(&driver, "the failure, in Chinese", |title, _| {
        title == "1 个失败"
    })
    .await;
    driver.screenshot("zh-failed").await;

    // A file whose key holds another already: asked about, in Chinese.
    for copy in ["first", "second"] {
        let folder = dir.path().join(copy);
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join("notes.txt"), copy).unwrap();
        driver.click_text("添加文件…").await;
        assert!(driver.dialog_shown(dialog).await, "no file dialog");
        driver
            .choose_in_dialog(dialog, &folder.join("notes.txt"))
            .await;
        if copy == "first" {
            wait_row(&driver, "notes.txt", "confirmed", 60, |_, row| {
                row["state"] == "confirmed"
            })
            .await;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let prompt = driver
            .script(
                "return document.querySelector('[data-testid=conflict]')?.innerText ?? ''",
                json!([]),
            )
            .await;
        if prompt
            .as_str()
            .is_some_and(|p| p.contains("一个文件在存储中已存在") && p.contains("保留两者"))
        {
            break;
        }
        assert!(Instant::now() < deadline, "no prompt in Chinese: {prompt}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The tray and a notification tell the file asked about from the one failed.
    tray_until(
        &driver,
        "the file asked about, in Chinese",
        |title, menu| title == "1 个失败 · 1 个待决定" && menu.first().is_some_and(|m| m == title),
    )
    .await;
    super::tray::until(
        &driver,
        "the decision asked for, in Chinese",
        async || driver.notifications().await,
        |n| n.iter().any(|n| n["summary"] == "有文件在存储中已存在"),
    )
    .await;
    driver.screenshot("zh-conflict").await;

    // English chosen in Settings: the window and the tray change at once.
    open_screen(&driver, 3).await;
    driver.wait_for("[data-testid=language]", 10).await;
    driver
        .script(
            "const s = document.querySelector('[data-testid=language]'); s.value = 'en'; \
             s.dispatchEvent(new Event('change', {bubbles: true}));",
            json!([]),
        )
        .await;
    driver.click_text("保存").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while screens(&driver).await != "Uploads Folders History Settings" {
        assert!(
            Instant::now() < deadline,
            "the window still in Chinese: {}",
            page_text(&driver).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Nothing Chinese left but the language menu's own name for it.
    let left = page_text(&driver).await.replace("简体中文", "");
    let chinese = |c: &char| ('\u{3400}'..='\u{9fff}').contains(c);
    assert!(!left.chars().any(|c| chinese(&c)), "{left}");
    assert_eq!(
        driver
            .script("return document.documentElement.lang", json!([]))
            .await,
        json!("en")
    );
    tray_until(&driver, "the English menu", |title, menu| {
        title == "1 failed · 1 waiting for your decision"
            && menu == [title, "Open Ferry", "Pause all", "Resume all", "Quit"]
    })
    .await;
    open_screen(&driver, 0).await;
    wait_row(
        &driver,
        "refused.txt",
        "failed, in English",
        10,
        |text, row| row["state"] == "failed" && text.contains("failed") && !text.contains("失败"),
    )
    .await;
    // Saved for the next start, which then speaks English although the OS speaks Chinese.
    let saved = std::fs::read_to_string(data.join("settings.json")).unwrap();
    assert!(saved.contains("\"language\": \"en\""), "{saved}");
}
