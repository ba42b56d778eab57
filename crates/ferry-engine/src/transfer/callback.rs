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

/// The id the app server knows `row`'s upload by (client confirmation and callback alike):
/// this device's and the file's, and, once the file changed under an upload that stored its
/// earlier bytes, which of its objects this is. The app server takes an id again only for the
/// same object: the same upload sent again (an answer lost, a restart) is the same, and the
/// file's new bytes after its earlier ones were stored — and recorded, perhaps, by a callback —
/// are another. (A row that never changed keeps the `<device>-<row>` of earlier versions.)
pub(super) fn upload_id(shared: &Shared, row: &FileRow) -> String {
    match row.rewrites {
        0 => format!("{}-{}", shared.device_id, row.id),
        n => format!("{}-{}-r{n}", shared.device_id, row.id),
    }
}

/// The headers asking the store to call back for `row`'s upload, if the grant has a callback.
pub(super) fn headers(shared: &Shared, grant: &Grant, row: &FileRow) -> Vec<(String, String)> {
    let Some(spec) = CallbackSpec::of(grant) else {
        return Vec::new();
    };
    let vars = [
        ("x:upload_id", upload_id(shared, row)),
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

/// Tells the front ends how the callback for `row`'s upload went, and remembers the upload when
/// the app server recorded it.
pub(super) fn report(shared: &Shared, row: &FileRow, outcome: Option<&CallbackOutcome>) {
    let (file_id, expected) = (row.id, upload_id(shared, row));
    let (recorded, answer) = match outcome {
        None => return,
        Some(CallbackOutcome::Answered(answer)) => {
            let record = serde_json::from_str::<UploadRecord>(answer).ok();
            let recorded = record.is_some_and(|r| {
                r.confirmed_by == ConfirmedBy::Provider && r.upload_id.as_deref() == Some(&expected)
            });
            (recorded, answer.as_str())
        }
        Some(CallbackOutcome::Failed(reason)) => (false, reason.as_str()),
    };
    {
        let mut kept = shared
            .recorded_by_callback
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match recorded {
            true => kept.insert(file_id, expected),
            // (An earlier upload of the file the app server recorded does not vouch for this.)
            false => kept.remove(&file_id),
        };
    }
    if !recorded {
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

/// Whether the app server already recorded upload `upload_id` of `file_id` from its callback
/// (and forgets the file's).
pub(super) fn take_recorded(shared: &Shared, file_id: i64, upload_id: &str) -> bool {
    shared
        .recorded_by_callback
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&file_id)
        .is_some_and(|recorded| recorded == upload_id)
}
