//! The window's TypeScript types of what the desktop's commands answer are generated from the
//! Rust types they serialise (`ts-rs`) and kept in `ui/src/generated/desktop.ts`: this test
//! fails when the committed file is not what the types give now, and writes it with
//! `FERRY_WRITE_TYPES=1`. (The engine's events are in `generated/events.ts`, written by the
//! `event_types` test of `tests/e2e`.) What the page sends — a sign-in, a queue query, a folder
//! — stays declared by hand in `ui/src/backend.ts` and is checked by the contract scenario.

use std::path::PathBuf;

use ts_rs::TS;

use crate::commands::{
    ConnectionReport, CredentialView, FolderItem, SessionStatus, SettingsView, Step,
};
use crate::error::CommandError;
use crate::picks::Picked;
use crate::queue::{
    Conflict, Conflicts, QueueItem, QueuePage, QueueTotals, UploadingFile, Waiting,
};
use crate::settings::{ProxyMode, Settings};
use crate::words::Language;

/// Every declaration, in order: each type after those it names (but the events' own).
fn declarations() -> String {
    use ferry_engine::conflict::OnConflict;
    use ferry_protocol::{
        ConfirmedBy, DayStats, Role, UploadPage, UploadRecord, UploadStatus, User,
    };
    let mut out = String::from(
        "// Generated from the desktop's command answers (ts-rs) by the `typescript` test in\n\
         // src-tauri: FERRY_WRITE_TYPES=1 cargo test -p ferry-desktop typescript. Do not edit.\n\n\
         import type { ErrorInfo, FileState } from \"./events\";\n\n",
    );
    let decls = [
        Role::decl(),
        User::decl(),
        SessionStatus::decl(),
        OnConflict::decl(),
        QueueItem::decl(),
        UploadingFile::decl(),
        QueueTotals::decl(),
        Waiting::decl(),
        Conflict::decl(),
        Conflicts::decl(),
        QueuePage::decl(),
        CredentialView::decl(),
        Picked::decl(),
        FolderItem::decl(),
        UploadStatus::decl(),
        ConfirmedBy::decl(),
        UploadRecord::decl(),
        UploadPage::decl(),
        DayStats::decl(),
        ProxyMode::decl(),
        Language::decl(),
        Settings::decl(),
        SettingsView::decl(),
        Step::decl(),
        ConnectionReport::decl(),
        CommandError::decl(),
    ];
    for decl in decls {
        out.push_str("export ");
        // Sizes, counts and ids are JSON numbers to the page (all below 2^53), which ts-rs
        // would declare `bigint` for 64-bit integers.
        out.push_str(&decl.replace("bigint", "number"));
        out.push_str("\n\n");
    }
    out.truncate(out.trim_end().len());
    out.push('\n');
    out
}

#[test]
fn the_windows_types_are_generated_from_the_desktops() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../ui/src/generated/desktop.ts");
    let now = declarations();
    if std::env::var_os("FERRY_WRITE_TYPES").is_some() {
        std::fs::write(&path, &now).unwrap();
    }
    let kept = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(
        kept, now,
        "ui/src/generated/desktop.ts is not what the desktop's types give: write it again with \
         FERRY_WRITE_TYPES=1 cargo test -p ferry-desktop typescript"
    );
}
