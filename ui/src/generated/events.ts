// Generated from ferry_engine's events (ts-rs) by the `event_types` test in tests/e2e:
// FERRY_WRITE_TYPES=1 cargo test -p ferry-tests --test e2e event_types. Do not edit.

export type ErrorInfo = { 
/**
 * Stable code (`file_missing`, `network`, `storage`, …).
 */
code: string, 
/**
 * Words for people.
 */
message: string, };
export type FileState = "queued" | "uploading" | "uploaded" | "confirmed" | "paused" | "failed" | "skipped" | "cancelled";
export type Event = { "type": "progress", 
/**
 * Journal id of the file.
 */
file_id: number, 
/**
 * Bytes sent and acknowledged.
 */
bytes: number, 
/**
 * File size.
 */
total: number, 
/**
 * Recent rate, bytes per second.
 */
rate: number, 
/**
 * Seconds left at that rate.
 */
eta_secs: number | null, } | { "type": "retrying", 
/**
 * Journal id of the file the request was for, if any.
 */
file_id: number | null, 
/**
 * The store operation (`UploadPart`, `CompleteMultipartUpload`, …).
 */
operation: string, 
/**
 * Attempts made so far.
 */
attempt: number, 
/**
 * Attempts there will be at most.
 */
max_attempts: number, 
/**
 * Why the last attempt failed.
 */
error: ErrorInfo, 
/**
 * How long until the next attempt, in milliseconds.
 */
retry_in_ms: number, } | { "type": "state", 
/**
 * Journal id of the file.
 */
file_id: number, 
/**
 * The new state.
 */
state: FileState, 
/**
 * Why, for failed and skipped files.
 */
error: ErrorInfo | null, } | { "type": "callback", 
/**
 * Journal id of the file.
 */
file_id: number, 
/**
 * Whether the app server recorded the upload from the callback.
 */
recorded: boolean, 
/**
 * The callback's answer as the store relayed it, or why it failed (at most 1 KiB).
 */
answer: string, } | { "type": "credentials_refreshing" } | { "type": "credentials_refreshed", 
/**
 * When they expire.
 */
expires_at: string, } | { "type": "credentials_refresh_failed", 
/**
 * Why.
 */
error: ErrorInfo, } | { "type": "credentials_not_saved", 
/**
 * Why.
 */
error: ErrorInfo, } | { "type": "session_expired" } | { "type": "connection", 
/**
 * Whether it answers.
 */
online: boolean, } | { "type": "trouble", 
/**
 * What the engine was doing.
 */
operation: string, 
/**
 * Why it failed.
 */
error: ErrorInfo, } | { "type": "folder_error", 
/**
 * The folder.
 */
path: string, 
/**
 * Why.
 */
error: ErrorInfo, };
