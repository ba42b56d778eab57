//! What the webview may do, read from the files Tauri builds it from: one capability, for the
//! main window, allowing Ferry's own commands and event listening and no plugin (dialogs,
//! notifications, autostart and the window state are driven from Rust); every command the app
//! registers has its permission and no other; and a strict CSP. The WebDriver test checks the
//! same at run time (`the_page_is_not_trusted`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn strings(value: &Value) -> BTreeSet<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("a list: {value}"))
        .iter()
        .map(|v| v.as_str().expect("a string").to_owned())
        .collect()
}

/// The command names in `commands::name` order of `generate_handler!` in main.rs.
fn registered_commands() -> BTreeSet<String> {
    let main = std::fs::read_to_string(root().join("src-tauri/src/main.rs")).unwrap();
    let handler = main
        .split("generate_handler![")
        .nth(1)
        .and_then(|rest| rest.split(']').next())
        .expect("generate_handler! in main.rs");
    handler
        .split(',')
        .map(str::trim)
        .filter_map(|c| c.strip_prefix("commands::"))
        .map(str::to_owned)
        .collect()
}

/// The names in build.rs's `COMMANDS`, which become the `allow-*` permissions.
fn declared_commands() -> BTreeSet<String> {
    let build = std::fs::read_to_string(root().join("src-tauri/build.rs")).unwrap();
    let list = build
        .split("COMMANDS: &[&str] = &[")
        .nth(1)
        .and_then(|rest| rest.split("];").next())
        .expect("COMMANDS in build.rs");
    list.split(',')
        .map(|c| c.trim().trim_matches('"'))
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_webview_may_call_only_ferrys_commands_under_a_strict_csp() {
    let dir = root().join("src-tauri/capabilities");
    let files: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files, BTreeSet::from(["default.json".to_owned()]));
    let capability = json(&dir.join("default.json"));
    assert_eq!(
        strings(&capability["windows"]),
        BTreeSet::from(["main".into()])
    );
    assert!(
        capability.get("remote").is_none(),
        "no remote URL may call commands"
    );
    assert!(capability.get("webviews").is_none());
    let wanted: BTreeSet<String> = [
        "core:event:allow-listen",
        "core:event:allow-unlisten",
        "allow-ferry-commands",
    ]
    .map(str::to_owned)
    .into();
    assert_eq!(strings(&capability["permissions"]), wanted);

    // The set allows each registered command, and every registered command is declared.
    let registered = registered_commands();
    assert!(registered.len() >= 18, "{registered:?}");
    assert_eq!(
        declared_commands(),
        registered,
        "build.rs COMMANDS vs main.rs"
    );
    let set = json(&root().join("src-tauri/permissions/ferry.json"));
    let sets = set["set"].as_array().expect("permission sets");
    assert_eq!(sets.len(), 1);
    assert_eq!(sets[0]["identifier"], "allow-ferry-commands");
    let allowed: BTreeSet<String> = registered
        .iter()
        .map(|c| format!("allow-{}", c.replace('_', "-")))
        .collect();
    assert_eq!(strings(&sets[0]["permissions"]), allowed);
    let permission_files: Vec<_> = std::fs::read_dir(root().join("src-tauri/permissions"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    assert_eq!(permission_files.len(), 1, "{permission_files:?}");

    let config = json(&root().join("tauri.conf.json"));
    assert_eq!(
        config["build"]["frontendDist"], "ui/dist",
        "the page is the app's own"
    );
    assert!(config["build"].get("devUrl").is_none());
    assert_ne!(config["app"]["withGlobalTauri"], true);
    let security = &config["app"]["security"];
    for risky in [
        "dangerousDisableAssetCspModification",
        "assetProtocol",
        "devCsp",
    ] {
        assert!(security.get(risky).is_none(), "{risky} is set");
    }
    let csp = security["csp"].as_str().expect("a CSP");
    let directives: Vec<Vec<&str>> = csp
        .split(';')
        .map(|d| d.split_whitespace().collect())
        .filter(|d: &Vec<&str>| !d.is_empty())
        .collect();
    let sources = |name: &str| -> Vec<&str> {
        directives
            .iter()
            .find(|d| d[0] == name)
            .unwrap_or_else(|| panic!("{name} in {csp}"))[1..]
            .to_vec()
    };
    assert_eq!(sources("default-src"), ["'self'"]);
    assert_eq!(
        sources("script-src"),
        ["'self'"],
        "no inline or eval'd script"
    );
    assert_eq!(sources("object-src"), ["'none'"]);
    assert_eq!(sources("base-uri"), ["'none'"]);
    assert_eq!(sources("frame-ancestors"), ["'none'"]);
    assert_eq!(
        sources("connect-src"),
        ["ipc:", "http://ipc.localhost"],
        "the page talks to Ferry's core only"
    );
    for directive in &directives {
        for source in &directive[1..] {
            assert!(
                !source.contains('*') && !source.starts_with("https:") && *source != "http:",
                "{source} in {}",
                directive[0]
            );
        }
    }
    // The config next to the crate (where the Tauri CLI looks) is the one in use, not a copy
    // that could drift from it: a link to it, or nothing.
    let beside = root().join("src-tauri/tauri.conf.json");
    if let Ok(meta) = std::fs::symlink_metadata(&beside) {
        assert!(
            meta.file_type().is_symlink(),
            "src-tauri/tauri.conf.json is a copy: link it to ../tauri.conf.json"
        );
        assert_eq!(
            std::fs::canonicalize(&beside).unwrap(),
            std::fs::canonicalize(root().join("tauri.conf.json")).unwrap(),
            "src-tauri/tauri.conf.json links elsewhere"
        );
    }
}
