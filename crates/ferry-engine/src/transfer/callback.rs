//! The store's native callback as the uploader sees it: which headers ask for it (the grant's
//! spec, in the grant's dialect, with this file's upload id, name and device as custom
//! variables), and what its outcome means — the app server recorded the upload (no client
//! confirmation needed), or the callback failed and the client confirms as usual.

use ferry_protocol::{CallbackSpec, ConfirmedBy, Grant, UploadRecord};
use md5::Digest as _;

use super::Shared;
use crate::dialect::Dialect;
use crate::events::Event;
use crate::journal::FileRow;
use crate::storage::CallbackOutcome;

/// Most of a callback's answer an event carries.
const MAX_SHOWN: usize = 1024;

/// The id the app server knows an upload of file `file_id` by (client confirmation and callback
/// alike): this device's, the file's, and the bytes' — `checksum`, what the journal records the
/// upload was checked against. The app server takes an id again only for the same object, so
/// the same bytes sent again (an answer lost) are the same upload, and the file's new bytes
/// after its earlier ones were stored (it changed under its upload) are another.
pub(super) fn upload_id(shared: &Shared, file_id: i64, checksum: &str) -> String {
    let bytes = hex::encode(md5::Md5::digest(checksum.as_bytes()));
    format!("{}-{}-{}", shared.device_id, file_id, &bytes[..12])
}

/// The headers asking the store to call back for `row`'s upload of the bytes `checksum` names,
/// if the grant has a callback.
pub(super) fn headers(
    shared: &Shared,
    grant: &Grant,
    row: &FileRow,
    checksum: &str,
) -> Vec<(String, String)> {
    let Some(spec) = CallbackSpec::of(grant) else {
        return Vec::new();
    };
    let vars = [
        ("x:upload_id", upload_id(shared, row.id, checksum)),
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

/// Tells the front ends how the callback for file `file_id`'s upload of the bytes `checksum`
/// names went, and remembers the upload when the app server recorded it.
pub(super) fn report(
    shared: &Shared,
    file_id: i64,
    checksum: &str,
    outcome: Option<&CallbackOutcome>,
) {
    let expected = upload_id(shared, file_id, checksum);
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
    let mut kept = shared
        .recorded_by_callback
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if recorded {
        kept.insert(file_id, expected);
    } else {
        // (An earlier upload of the file the app server recorded does not vouch for this one.)
        kept.remove(&file_id);
        drop(kept);
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
