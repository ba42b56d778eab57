//! The store's native callback as the uploader sees it: which headers ask for it (the grant's
//! spec, in the grant's dialect, with this file's upload id, name and device as custom
//! variables), and what its outcome means — the app server recorded the upload (no client
//! confirmation needed), or the callback failed and the client confirms as usual.

use ferry_protocol::{CallbackSpec, ConfirmedBy, Grant, UploadRecord};

use super::Shared;
use crate::dialect::Dialect;
use crate::events::Event;
use crate::journal::FileRow;
use crate::storage::CallbackOutcome;

/// Most of a callback's answer an event carries.
const MAX_SHOWN: usize = 1024;

/// The id the app server knows this file's upload by (client confirmation and callback alike).
pub(super) fn upload_id(shared: &Shared, file_id: i64) -> String {
    format!("{}-{}", shared.device_id, file_id)
}

/// The headers asking the store to call back for `row`, if the grant has a callback.
pub(super) fn headers(shared: &Shared, grant: &Grant, row: &FileRow) -> Vec<(String, String)> {
    let Some(spec) = CallbackSpec::of(grant) else {
        return Vec::new();
    };
    let vars = [
        ("x:upload_id", upload_id(shared, row.id)),
        ("x:name", row.name.clone()),
        ("x:device", shared.device.clone()),
    ];
    Dialect::of(grant).callback_headers(&spec, &vars)
}

fn shown(text: &str) -> String {
    let mut end = text.len().min(MAX_SHOWN);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// Tells the front ends how the callback went and remembers a file the app server recorded.
pub(super) fn report(shared: &Shared, file_id: i64, outcome: Option<&CallbackOutcome>) {
    let (recorded, answer) = match outcome {
        None => return,
        Some(CallbackOutcome::Answered(answer)) => {
            let record = serde_json::from_str::<UploadRecord>(answer).ok();
            let expected = upload_id(shared, file_id);
            let recorded = record.is_some_and(|r| {
                r.confirmed_by == ConfirmedBy::Provider && r.upload_id.as_deref() == Some(&expected)
            });
            (recorded, answer.as_str())
        }
        Some(CallbackOutcome::Failed(reason)) => (false, reason.as_str()),
    };
    if recorded {
        shared
            .recorded_by_callback
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(file_id);
    } else {
        tracing::info!(
            file_id,
            answer,
            "the callback did not record the upload; confirming"
        );
    }
    (shared.events)(Event::Callback {
        file_id,
        recorded,
        answer: shown(answer),
    });
}

/// Whether the app server already recorded `file_id` from its callback (and forgets it).
pub(super) fn take_recorded(shared: &Shared, file_id: i64) -> bool {
    shared
        .recorded_by_callback
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&file_id)
}
