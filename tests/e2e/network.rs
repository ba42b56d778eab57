//! Ferry behind the networks companies have, on loopback: an HTTP proxy with a password, a
//! SOCKS5 proxy with a user name and password, the environment's proxy and `NO_PROXY` (the
//! `ferry` command, a process of its own), and TLS inspection — the app server and the store
//! behind a TLS front whose certificate a private CA signed. Each test signs in, uploads a
//! small file and one in parts, and checks what the proxy saw.

use std::time::Duration;

use ferry_engine::journal::FileState;
use ferry_engine::network::{ManualProxy, Network, ProxyChoice};
use ferry_engine::secret::Secret;
use ferry_protocol::Role;
use ferry_tests::network::{Login, LoopbackProxy, TlsFront, private_ca};
use ferry_tests::proxy::{Action, Proxy, Rule};
use ferry_tests::{Alice, TestServer, bytes, engine, ferry_as, within};

const MIB: usize = 1024 * 1024;

fn port_of(url: &str) -> u16 {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.port())
        .unwrap_or_else(|| panic!("a port in {url}"))
}

fn through(url: String, login: Option<&Login>) -> Network {
    Network {
        proxy: ProxyChoice::Manual(ManualProxy {
            url,
            user: login.map(|l| l.user.clone()),
            password: login.map(|l| Secret::new(l.password.clone())),
        }),
        extra_ca: None,
    }
}

fn login(password: &str) -> Login {
    Login {
        user: "corp\\alice".into(),
        password: password.into(),
    }
}

/// An engine on `network` for the app server at `server`, not signed in (secrets in memory).
fn unsigned(server: &str, data_dir: std::path::PathBuf, network: Network) -> ferry_engine::Engine {
    ferry_engine::Engine::open(ferry_engine::EngineConfig {
        data_dir,
        server: server.to_owned(),
        keychain: std::sync::Arc::new(ferry_engine::keychain::MemoryKeychain::default()),
        events: std::sync::Arc::new(|_| {}),
        transfer: Default::default(),
        grant: Default::default(),
        device: "test-device".into(),
        token_server: None,
        network,
    })
    .expect("the engine opens")
}

/// The app server and its store behind TLS fronts whose certificate a private CA signed (as a
/// company's TLS inspection would): the CA file, the fronts (API, store), the server.
async fn behind_tls(dir: &std::path::Path) -> (std::path::PathBuf, TlsFront, TlsFront, TestServer) {
    let (ca, cert, key) = private_ca(dir);
    let api_front = TlsFront::start(&cert, &key).await;
    let store_front = TlsFront::start(&cert, &key).await;
    let store_url = store_front.url();
    let server = TestServer::start_with(|o| o.store_public_url = Some(store_url)).await;
    let socket = |url: &str| url.trim_start_matches("http://").parse().unwrap();
    api_front.set_upstream(socket(&server.api));
    store_front.set_upstream(socket(&server.server.store_url()));
    (ca, api_front, store_front, server)
}

/// Uploads a small file and a 20 MiB one (in parts) with `engine`; both must be confirmed.
async fn upload_two(engine: &ferry_engine::Engine, dir: &std::path::Path) {
    let small = dir.join("small.txt");
    let big = dir.join("big.bin");
    std::fs::write(&small, b"through the proxy").unwrap();
    std::fs::write(&big, bytes(20 * MIB, 900)).unwrap();
    engine.enqueue(&[small, big]).await.unwrap();
    let summary = within(120, "the upload", engine.run_until_idle())
        .await
        .unwrap();
    assert_eq!(summary.confirmed, 2, "{summary:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_an_http_proxy_with_a_password_and_not_without_it() {
    let door = login("pr0xy pass:word");
    let proxy = LoopbackProxy::http(Some(door.clone())).await;
    let Alice {
        server,
        password,
        dir,
        engine,
        ..
    } = Alice::start(|c| c.network = through(proxy.url("http"), Some(&door))).await;
    upload_two(&engine, dir.path()).await;
    let (api, store) = (port_of(&server.api), port_of(&server.server.store_url()));
    assert!(proxy.seen.to_port(api) > 0, "{:?}", proxy.seen.all());
    assert!(
        proxy.seen.to_port(store) >= 4,
        "PUT, then the parts: {:?}",
        proxy.seen.all()
    );
    assert!(proxy.refused.all().is_empty(), "{:?}", proxy.refused.all());
    // A wrong password: the proxy says no, and so does the sign-in, naming the proxy.
    let wrong = unsigned(
        &server.api,
        dir.path().join("data-wrong"),
        through(proxy.url("http"), Some(&login("wrong"))),
    );
    let secret = Secret::new(password.clone());
    let signing_in = wrong.sign_in("alice", &secret, "test-device");
    let err = within(60, "the sign-in", signing_in).await.unwrap_err();
    assert_eq!(err.code(), "proxy_refused", "{err}");
    assert!(err.to_string().contains("user name and password"), "{err}");
    assert!(!proxy.refused.all().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_set_while_signed_in_carries_the_next_requests_without_signing_in_again() {
    let door = login("live pass");
    let proxy = LoopbackProxy::http(Some(door.clone())).await;
    let Alice {
        server,
        dir,
        engine,
        ..
    } = Alice::start(|_| {}).await;
    // A small file and one in parts per round, named for the round; all confirmed.
    let round = async |name: &str| {
        let small = dir.path().join(format!("{name}.txt"));
        let big = dir.path().join(format!("{name}.bin"));
        std::fs::write(&small, name).unwrap();
        std::fs::write(&big, bytes(20 * MIB, 901)).unwrap();
        let ids = engine.enqueue(&[small, big]).await.unwrap();
        within(120, name, engine.run_until_idle()).await.unwrap();
        for id in ids {
            let row = engine.journal().file(id).unwrap().unwrap();
            assert_eq!(row.state, FileState::Confirmed, "{name}: {row:?}");
        }
    };
    round("direct").await;
    assert!(
        proxy.seen.all().is_empty(),
        "direct so far: {:?}",
        proxy.seen.all()
    );

    engine
        .set_network(&through(proxy.url("http"), Some(&door)))
        .unwrap();
    round("proxied").await;
    let (api, store) = (port_of(&server.api), port_of(&server.server.store_url()));
    assert!(proxy.seen.to_port(api) > 0, "{:?}", proxy.seen.all());
    assert!(proxy.seen.to_port(store) > 0, "{:?}", proxy.seen.all());
    assert!(proxy.refused.all().is_empty(), "{:?}", proxy.refused.all());

    // A network that cannot be used is refused, and the one in use goes on working.
    let bad = through("ftp://proxy:21".into(), None);
    assert_eq!(
        engine.set_network(&bad).unwrap_err().code(),
        "invalid_network"
    );
    let before = (proxy.seen.to_port(api), proxy.seen.to_port(store));
    round("after").await;
    let after = (proxy.seen.to_port(api), proxy.seen.to_port(store));
    assert!(
        after.0 + after.1 > before.0 + before.1,
        "still through the proxy: {before:?} → {after:?}"
    );
}

/// A queue the proxy stopped: an engine signed in through a proxy with a password (its grant
/// in hand, `files_at_once` files at once), the proxy's password then changed (to "changed by
/// IT", as an IT department would), `count` small files queued, and the run that ends with the
/// proxy's refusal. The engine, its events, the files, the proxy and its new login.
async fn stopped_by_the_proxy(
    server: &TestServer,
    password: &str,
    dir: &std::path::Path,
    files_at_once: usize,
    count: usize,
) -> (
    ferry_engine::Engine,
    ferry_tests::Recorder,
    Vec<std::path::PathBuf>,
    LoopbackProxy,
    Login,
) {
    let door = login("before");
    let proxy = LoopbackProxy::http(Some(door.clone())).await;
    let (engine, events) = engine(server, &dir.join("data"), "alice", password, |c| {
        c.network = through(proxy.url("http"), Some(&door));
        c.transfer.files = files_at_once;
    })
    .await;
    // The grant is in hand: what follows goes to the store.
    engine.credentials().current().await.unwrap();
    let changed = login("changed by IT");
    proxy.set_login(Some(changed.clone()));
    let files: Vec<_> = (0..count)
        .map(|i| {
            let path = dir.join(format!("f{i}.txt"));
            std::fs::write(&path, format!("file {i}")).unwrap();
            path
        })
        .collect();
    engine.enqueue(&files).await.unwrap();
    let err = within(60, "the refusal", engine.run_until_idle())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "proxy_refused", "{err}");
    (engine, events, files, proxy, changed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_a_proxy_stopped_goes_on_once_its_new_password_is_set() {
    let server = TestServer::start().await;
    let password = server.add_user("alice", Role::User);
    let dir = tempfile::tempdir().unwrap();
    // One file at a time: the one in flight when the proxy says no fails (as in the test
    // below), the rest wait in the queue.
    let (engine, _, _, proxy, changed) =
        stopped_by_the_proxy(&server, &password, dir.path(), 1, 4).await;
    // The new password given (as Settings would): the queue goes on, no retry asked.
    engine
        .set_network(&through(proxy.url("http"), Some(&changed)))
        .unwrap();
    let summary = within(120, "the upload", engine.run_until_idle())
        .await
        .unwrap();
    assert_eq!((summary.confirmed, summary.failed), (3, 1), "{summary:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_a_socks5_proxy_with_a_user_name_and_password() {
    let door = login("s0cks");
    let proxy = LoopbackProxy::socks5(Some(door.clone())).await;
    let Alice {
        server,
        dir,
        engine,
        ..
    } = Alice::start(|c| c.network = through(proxy.url("socks5h"), Some(&door))).await;
    upload_two(&engine, dir.path()).await;
    let (api, store) = (port_of(&server.api), port_of(&server.server.store_url()));
    assert!(proxy.seen.to_port(api) > 0, "{:?}", proxy.seen.all());
    assert!(proxy.seen.to_port(store) > 0, "{:?}", proxy.seen.all());
    assert!(proxy.refused.all().is_empty(), "{:?}", proxy.refused.all());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_inspection_is_trusted_with_the_companys_ca_file_and_refused_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, api_front, store_front, server) = behind_tls(dir.path()).await;
    let password = server.add_user("alice", Role::User);
    // Through a proxy too: https:// goes as CONNECT tunnels.
    let proxy = LoopbackProxy::http(None).await;
    let https = |data: &str, extra_ca: Option<std::path::PathBuf>| {
        let network = Network {
            extra_ca,
            ..through(proxy.url("http"), None)
        };
        unsigned(&api_front.url(), dir.path().join(data), network)
    };
    let untrusting = https("data-1", None);
    let secret = Secret::new(password.clone());
    let signing_in = untrusting.sign_in("alice", &secret, "test-device");
    let err = within(60, "the sign-in", signing_in).await.unwrap_err();
    assert_eq!(err.code(), "network", "{err}");
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );
    let engine = https("data-2", Some(ca));
    within(
        30,
        "the sign-in",
        engine.sign_in("alice", &Secret::new(password.clone()), "test-device"),
    )
    .await
    .unwrap();
    upload_two(&engine, dir.path()).await;
    let connects = proxy.seen.all();
    assert!(
        connects.iter().all(|c| c.starts_with("CONNECT ")),
        "{connects:?}"
    );
    assert!(
        proxy.seen.to_port(store_front.addr.port()) > 0,
        "{connects:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ferry_command_takes_the_environments_proxy_and_its_no_proxy() {
    let server = TestServer::start().await;
    let password = server.add_user("alice", Role::User);
    let dir = tempfile::tempdir().unwrap();
    let proxy = LoopbackProxy::http(None).await;
    let file = dir.path().join("env.txt");
    std::fs::write(&file, b"by the environment's proxy").unwrap();
    let run = |data: &str, no_proxy: &str| {
        let mut command = ferry_as(&server, &dir.path().join(data), "alice", &password);
        command
            .env("HTTP_PROXY", proxy.url("http"))
            .env("HTTPS_PROXY", proxy.url("http"))
            .env("NO_PROXY", no_proxy)
            .env_remove("ALL_PROXY")
            .args(["upload", "--force"])
            .arg(&file);
        command
    };
    let running = tokio::task::spawn_blocking({
        let mut command = run("data-1", "");
        move || command.output().unwrap()
    });
    let output = within(120, "ferry upload", running).await.unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let via = proxy.seen.all().len();
    assert!(
        via >= 2,
        "sign-in, grant, PUT, confirmation: {:?}",
        proxy.seen.all()
    );
    let running = tokio::task::spawn_blocking({
        let mut command = run("data-2", "127.0.0.1");
        move || command.output().unwrap()
    });
    let output = within(120, "ferry upload", running).await.unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        proxy.seen.all().len(),
        via,
        "NO_PROXY: nothing went through the proxy"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_connection_says_which_step_fails() {
    // A store nobody answers for (its address is a port just let go of).
    let gone = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", gone.local_addr().unwrap());
    drop(gone);
    let server = TestServer::start_with(|o| o.store_public_url = Some(dead.clone())).await;
    let password = server.add_user("alice", Role::User);
    let dir = tempfile::tempdir().unwrap();
    let door = login("right");
    let proxy = LoopbackProxy::http(Some(door.clone())).await;
    let (engine, _) = engine(&server, &dir.path().join("data"), "alice", &password, |c| {
        c.network = through(proxy.url("http"), Some(&door));
    })
    .await;
    let network = through(proxy.url("http"), Some(&door));
    let check = within(60, "the check", engine.check_connection(&network)).await;
    assert!(check.server.is_ok(), "{check:?}");
    let store = check.store.expect("signed in: the store is checked");
    let err = store.unwrap_err();
    assert_eq!(err.code(), "network", "{err}");
    assert!(err.to_string().contains(&dead), "names the store: {err}");
    // The settings being tried, not the session's: a password the proxy no longer takes.
    let stale = through(proxy.url("http"), Some(&login("old")));
    let check = within(60, "the check", engine.check_connection(&stale)).await;
    assert_eq!(check.server.unwrap_err().code(), "proxy_refused");
    assert_eq!(check.store.unwrap().unwrap_err().code(), "proxy_refused");
    // Signed out: the app server only, on the settings given.
    let server2 = TestServer::start().await;
    let alone = within(
        60,
        "the check",
        ferry_engine::check_server(&network, &server2.api),
    )
    .await;
    assert!(alone.is_ok(), "{alone:?}");
    let refused = ferry_engine::check_server(&stale, &server2.api).await;
    assert_eq!(refused.unwrap_err().code(), "proxy_refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_proxy_password_is_named_as_such_for_tunnels_and_socks_and_never_shown() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = private_ca(dir.path());
    let front = TlsFront::start(&cert, &key).await;
    let server = TestServer::start().await;
    front.set_upstream(server.api.trim_start_matches("http://").parse().unwrap());
    let secret = "wr0ng-but-secret";
    let tunnel = LoopbackProxy::http(Some(login("right"))).await;
    let socks = LoopbackProxy::socks5(Some(login("right"))).await;
    // An https:// server: through the HTTP proxy, a CONNECT tunnel.
    for (proxy, url) in [
        (&tunnel, tunnel.url("http")),
        (&socks, socks.url("socks5h")),
    ] {
        let network = Network {
            extra_ca: Some(ca.clone()),
            ..through(url.clone(), Some(&login(secret)))
        };
        let err = within(
            60,
            "the check",
            ferry_engine::check_server(&network, &front.url()),
        )
        .await
        .unwrap_err();
        assert_eq!(err.code(), "proxy_refused", "{url}: {err}");
        assert!(!err.to_string().contains(secret), "{url}: {err}");
        assert!(
            !proxy.refused.all().is_empty(),
            "{url}: the proxy turned it away"
        );
    }
    assert!(
        tunnel.refused.all()[0].starts_with("CONNECT "),
        "{:?}",
        tunnel.refused.all()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ferry_command_takes_a_proxy_its_login_and_a_ca_file_from_its_flags() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, api_front, store_front, server) = behind_tls(dir.path()).await;
    let password = server.add_user("alice", Role::User);
    let door = login("flag-pass");
    let proxy = LoopbackProxy::http(Some(door.clone())).await;
    let file = dir.path().join("flags.txt");
    std::fs::write(&file, b"by the flags").unwrap();
    let mut command = ferry_as(&server, &dir.path().join("data"), "alice", &password);
    command
        .env("FERRY_SERVER", api_front.url())
        .env("FERRY_PROXY_PASSWORD", &door.password)
        .arg("--proxy")
        .arg(proxy.url("http"))
        .args(["--proxy-user", &door.user, "--ca-file"])
        .arg(&ca)
        .arg("upload")
        .arg(&file);
    let running = tokio::task::spawn_blocking(move || command.output().unwrap());
    let output = within(120, "ferry upload", running).await.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(!stderr.contains(&door.password), "{stderr}");
    assert!(
        proxy.seen.to_port(api_front.addr.port()) > 0,
        "{:?}",
        proxy.seen.all()
    );
    assert!(
        proxy.seen.to_port(store_front.addr.port()) > 0,
        "{:?}",
        proxy.seen.all()
    );
    assert!(proxy.refused.all().is_empty(), "{:?}", proxy.refused.all());
}

/// `ferry upload FILE` in a desktop session of its own (a session bus, dconf under `home`)
/// whose GNOME proxy setting is manual, through `proxy`, bypassed for `ignore_hosts`.
fn in_a_gnome_session(
    server: &TestServer,
    password: &str,
    home: &std::path::Path,
    proxy: &LoopbackProxy,
    ignore_hosts: &str,
    file: &std::path::Path,
) -> std::process::Command {
    let set = |key: &str, value: &str| format!("gsettings set {key} {value} && ");
    let script = [
        set("org.gnome.system.proxy", "mode manual"),
        set("org.gnome.system.proxy.http", "host 127.0.0.1"),
        set(
            "org.gnome.system.proxy.http",
            &format!("port {}", proxy.addr.port()),
        ),
        set(
            "org.gnome.system.proxy",
            &format!("ignore-hosts \"{ignore_hosts}\""),
        ),
        "exec \"$@\"".to_owned(),
    ]
    .concat();
    let mut command = std::process::Command::new("dbus-run-session");
    command
        .args(["--", "sh", "-c", &script, "sh"])
        .arg(ferry_tests::ferry_bin())
        .args(["upload", "--force"])
        .arg(file)
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("FERRY_DATA_DIR", home.join("data"))
        .env("FERRY_SERVER", &server.api)
        .env("FERRY_MEMORY_KEYCHAIN", "true")
        .env("FERRY_USER", "alice")
        .env("FERRY_PASSWORD", password)
        .stdin(std::process::Stdio::null());
    for name in [
        "HTTPS_PROXY",
        "HTTP_PROXY",
        "ALL_PROXY",
        "https_proxy",
        "http_proxy",
        "all_proxy",
    ] {
        command.env_remove(name);
    }
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_desktops_proxy_setting_is_followed_when_the_environment_names_none() {
    let server = TestServer::start().await;
    let password = server.add_user("alice", Role::User);
    let dir = tempfile::tempdir().unwrap();
    let proxy = LoopbackProxy::http(None).await;
    let file = dir.path().join("gnome.txt");
    std::fs::write(&file, b"by the desktop's proxy").unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let command = in_a_gnome_session(&server, &password, &home, &proxy, "[]", &file);
    let run = |mut command: std::process::Command| {
        tokio::task::spawn_blocking(move || command.output().unwrap())
    };
    let output = within(120, "ferry upload", run(command)).await.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let via = proxy.seen.to_port(port_of(&server.api));
    assert!(via > 0, "through GNOME's proxy: {:?}", proxy.seen.all());
    assert!(proxy.seen.to_port(port_of(&server.server.store_url())) > 0);
    // Loopback among the hosts GNOME's setting leaves out: straight there.
    let before = proxy.seen.all().len();
    let other = dir.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    let command = in_a_gnome_session(&server, &password, &other, &proxy, "['127.0.0.0/8']", &file);
    let output = within(120, "ferry upload", run(command)).await.unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(proxy.seen.all().len(), before, "{:?}", proxy.seen.all());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_that_starts_refusing_stops_the_queue_after_one_try_per_file_in_flight() {
    let server = TestServer::start().await;
    let password = server.add_user("alice", Role::User);
    let dir = tempfile::tempdir().unwrap();
    let (engine, events, files, proxy, _) =
        stopped_by_the_proxy(&server, &password, dir.path(), 2, 20).await;
    // No request retried, and no file tried after the first refusals: a lockout counter sees
    // a few failed logins, not 20 × 5 × 8.
    let refusals = proxy.refused.all().len();
    assert!(
        (1..=2).contains(&refusals),
        "{refusals} refused: {:?}",
        proxy.refused.all()
    );
    let retried = events.events().iter().any(|e| {
        matches!(e, ferry_engine::events::Event::Retrying { error, .. } if error.code == "proxy_refused")
    });
    assert!(!retried, "a proxy's refusal is not retried");
    let owner = engine.session().owner().unwrap();
    let queued = files
        .iter()
        .filter(|f| {
            engine
                .journal()
                .latest_for_path(&owner, f)
                .unwrap()
                .unwrap()
                .state
                == FileState::Queued
        })
        .count();
    assert!(queued >= 18, "{queued} still queued");
    // Fixed (the old password works again), the user retries: everything goes.
    proxy.set_login(Some(login("before")));
    engine.transfer().retry(None).await.unwrap();
    let summary = within(120, "the upload", engine.run_until_idle())
        .await
        .unwrap();
    assert_eq!(summary.confirmed, 20, "{summary:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_from_the_proxy_no_longer_in_use_does_not_stop_the_queue() {
    // (Bound whole: the server lives as long as the test.)
    let alice = Alice::start(|_| {}).await;
    let (engine, dir) = (&alice.engine, &alice.dir);
    engine.credentials().current().await.unwrap();
    // The network being left: a proxy that refuses this login, slowly (a fault proxy in front
    // of it holds each request a while).
    let proxy = LoopbackProxy::http(Some(login("right"))).await;
    let slow = Proxy::start(proxy.addr).await;
    let held = slow.add(Rule::new(Action::Latency(Duration::from_secs(2))));
    engine
        .set_network(&through(slow.url(), Some(&login("wrong"))))
        .unwrap();
    let file = dir.path().join("sent-after-the-change.txt");
    std::fs::write(&file, b"the refusal comes from the old network").unwrap();
    engine.enqueue(&[file]).await.unwrap();
    // A request is held on the old network when the user changes it; its refusal comes after.
    let change = async {
        held.wait_matched("request on the old proxy").await;
        let direct = Network {
            proxy: ProxyChoice::Direct,
            extra_ca: None,
        };
        engine.set_network(&direct).unwrap();
    };
    let (run, ()) = tokio::join!(within(120, "the upload", engine.run_until_idle()), change);
    let summary = run.expect("the old network's refusal stops nothing on the new one");
    assert_eq!(summary.confirmed, 1, "{summary:?}");
    assert_eq!(proxy.refused.all().len(), 1, "{:?}", proxy.refused.all());
}
