//! The window's TypeScript types of the engine's events are generated from the engine's own
//! (`ts-rs`, the engine's `ts` feature) and kept in `ui/src/generated/events.ts`: this test
//! fails when the committed file is not what the engine's types give now, and writes it with
//! `FERRY_WRITE_TYPES=1`. Every event variant is also serialised here and must carry the
//! `type` tag the declarations say, with no field the declarations leave out.

use std::path::PathBuf;

use ferry_engine::events::{ErrorInfo, Event};
use ferry_engine::journal::FileState;
use ts_rs::TS;

fn declarations() -> String {
    let mut out = String::from(
        "// Generated from ferry_engine's events (ts-rs) by the `event_types` test in tests/e2e:\n\
         // FERRY_WRITE_TYPES=1 cargo test -p ferry-tests --test e2e event_types. Do not edit.\n\n",
    );
    for decl in [ErrorInfo::decl(), FileState::decl(), Event::decl()] {
        out.push_str("export ");
        out.push_str(&decl);
        out.push('\n');
    }
    out
}

#[test]
fn the_windows_event_types_are_generated_from_the_engines() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../ui/src/generated/events.ts");
    let now = declarations();
    if std::env::var_os("FERRY_WRITE_TYPES").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &now).unwrap();
    }
    let kept = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(
        kept, now,
        "ui/src/generated/events.ts is not what the engine's events give: write it again with \
         FERRY_WRITE_TYPES=1 cargo test -p ferry-tests --test e2e event_types"
    );
}

#[test]
fn every_event_is_serialised_with_the_fields_its_declaration_names() {
    let error = ErrorInfo {
        code: "network".into(),
        message: "cannot reach".into(),
    };
    let events = [
        Event::Progress {
            file_id: 1,
            bytes: 2,
            total: 3,
            rate: 4,
            eta_secs: Some(5),
        },
        Event::Retrying {
            file_id: None,
            operation: "PutObject".into(),
            attempt: 1,
            max_attempts: 5,
            error: error.clone(),
            retry_in_ms: 100,
        },
        Event::State {
            file_id: 1,
            state: FileState::Failed,
            error: Some(error.clone()),
        },
        Event::Callback {
            file_id: 1,
            recorded: true,
            answer: "{}".into(),
        },
        Event::CredentialsRefreshing,
        Event::CredentialsRefreshed {
            expires_at: time::OffsetDateTime::UNIX_EPOCH,
        },
        Event::CredentialsRefreshFailed {
            error: error.clone(),
        },
        Event::CredentialsNotSaved {
            error: error.clone(),
        },
        Event::SessionExpired,
        Event::Connection { online: false },
        Event::Trouble {
            operation: "reading".into(),
            error: error.clone(),
        },
        Event::FolderError {
            path: "/tmp/x".into(),
            error,
        },
    ];
    let declared = Event::decl();
    for event in events {
        let json = serde_json::to_value(&event).unwrap();
        let fields = json.as_object().unwrap();
        let tag = fields["type"].as_str().unwrap();
        // The declaration's member for this tag, and each field named in it.
        let member = declared
            .split("} | {")
            .find(|m| m.contains(&format!("\"type\": \"{tag}\"")))
            .unwrap_or_else(|| panic!("no member for {tag} in {declared}"));
        for name in fields.keys().filter(|k| *k != "type") {
            assert!(
                member.contains(&format!("{name}:")),
                "{tag}.{name} not declared: {member}"
            );
        }
    }
}
