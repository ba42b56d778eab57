// Generated from the desktop's command answers (ts-rs) by the `typescript` test in
// src-tauri: FERRY_WRITE_TYPES=1 cargo test -p ferry-desktop typescript. Do not edit.

import type { ErrorInfo, FileState } from "./events";

export type Role = "user" | "admin";

export type User = { 
/**
 * Stable numeric id; part of the user's storage prefix.
 */
id: number, 
/**
 * Account name.
 */
name: string, 
/**
 * What the account may do.
 */
role: Role, };

export type SessionStatus = { user: User | null, server: string, sessionExpiresAt: string | null, online: boolean, };

export type OnConflict = "ask" | "skip" | "overwrite" | "rename" | "newer";

export type QueueItem = { id: number, name: string, path: string, size: number, sent: number, rate: number, etaSecs: number | null, state: FileState, 
/**
 * Why it failed or was skipped; the last attempt's error while a retry is scheduled.
 */
error: ErrorInfo | null, 
/**
 * When a failed file (or an uploaded file's confirmation) is tried again by itself; none
 * when it is not (a file failed for good waits for the user).
 */
retryAt: string | null, 
/**
 * Failed attempts so far.
 */
attempts: number, 
/**
 * Failed attempts after which the file waits for the user.
 */
maxAttempts: number, 
/**
 * Whose file it is, for people ("alice", or "alice at https://…" on another server; see
 * [`owner_label`]); none for files added before files had owners.
 */
owner: string | null, 
/**
 * Whether it belongs to the signed-in account. Other accounts' files are never uploaded by
 * this session: they wait for their owner to sign in, and cannot be paused, resumed or
 * cancelled.
 */
mine: boolean, };

export type UploadingFile = { id: number, sent: number, };

export type QueueTotals = { 
/**
 * Files not skipped or cancelled.
 */
files: number, 
/**
 * Confirmed.
 */
done: number, 
/**
 * On their way: queued, uploading, or uploaded and being confirmed.
 */
active: number, 
/**
 * Waiting for their next attempt (of the upload or of its confirmation).
 */
retrying: number, 
/**
 * Failed for good: they wait for the user.
 */
failed: number, 
/**
 * Waiting for a decision about an object at their key (the conflict prompt asks).
 */
asking: number, 
/**
 * Paused by the user.
 */
paused: number, 
/**
 * Confirmed, skipped or cancelled: what "Clear finished" takes out of view.
 */
finished: number, 
/**
 * Bytes stored of those files (files uploading now have sent more: see `uploading`).
 */
sent: number, 
/**
 * Bytes of those files.
 */
size: number, 
/**
 * Files uploading now, with the bytes the journal holds as stored.
 */
uploading: Array<UploadingFile>, };

export type Waiting = { account: string, files: number, };

export type Conflict = { id: number, name: string, path: string, 
/**
 * Its key below the account's upload prefix.
 */
key: string, };

export type Conflicts = { count: number, first: Conflict | null, };

export type QueuePage = { items: Array<QueueItem>, 
/**
 * Rows matching the filter, on all pages.
 */
matching: number, 
/**
 * Where this page starts (the last page's start when the rows asked for are gone).
 */
offset: number, totals: QueueTotals, 
/**
 * Unfinished files of other accounts on this computer, per account.
 */
waitingForOthers: Array<Waiting>, 
/**
 * The account's files waiting for a decision about an object at their key.
 */
conflicts: Conflicts, };

export type CredentialStatus = { expiresAt: string | null, refreshing: boolean, refreshedAt: string | null, 
/**
 * Why the last refresh failed; cleared by the next good one.
 */
lastError: ErrorInfo | null, 
/**
 * After a failed refresh: the next try is not before this.
 */
retryAt: string | null, 
/**
 * The current grant could not be saved in the keychain (it works from memory).
 */
keychainError: ErrorInfo | null, };

export type Picked = { 
/**
 * Hand this back to use the pick.
 */
id: number, 
/**
 * The file or folder name.
 */
name: string, 
/**
 * Bytes, for files.
 */
size: number | null, 
/**
 * The full path, to show.
 */
path: string, };

export type FolderItem = { path: string, prefix: string, excludes: Array<string>, enabled: boolean, lastScan: string | null, queued: number, skipped: number, 
/**
 * Why it cannot be watched now: the engine's code (the page words it) and sentence.
 */
error: ErrorInfo | null, onConflict: OnConflict, };

export type UploadStatus = "stored" | "confirmed";

export type ConfirmedBy = "client" | "store" | "provider";

export type UploadRecord = { 
/**
 * Row id; also the pagination cursor.
 */
id: number, 
/**
 * Account that uploaded.
 */
user: string, 
/**
 * Bucket of the object.
 */
bucket: string, 
/**
 * Full object key.
 */
key: string, 
/**
 * File name on the client (the key's last segment until confirmed).
 */
name: string, 
/**
 * Size in bytes.
 */
size: number, 
/**
 * ETag, without quotes.
 */
etag: string, 
/**
 * Client checksum, when confirmed.
 */
checksum: string | null, 
/**
 * Device, when confirmed.
 */
device: string | null, 
/**
 * The client's upload id, when confirmed.
 */
upload_id: string | null, 
/**
 * When the upload began (multipart initiation or the single PUT).
 */
started_at: string, 
/**
 * When the store committed the object.
 */
completed_at: string, 
/**
 * Stored or confirmed.
 */
status: UploadStatus, 
/**
 * Who vouched for this row last.
 */
confirmed_by: ConfirmedBy, };

export type UploadPage = { 
/**
 * Rows of this page.
 */
items: Array<UploadRecord>, 
/**
 * Pass as `cursor` to get the next page; absent on the last page.
 */
next_cursor: string | null, };

export type DayStats = { 
/**
 * UTC day, `YYYY-MM-DD`.
 */
day: string, 
/**
 * Account name.
 */
user: string, 
/**
 * Uploads completed that day.
 */
count: number, 
/**
 * Bytes of those uploads.
 */
bytes: number, };

export type ProxyMode = "system" | "direct" | "manual";

export type Language = "system" | "en" | "zh-CN";

export type Settings = { files: number, partsInFlight: number, partSizeMiB: number, bandwidthMiBs: number | null, startAtLogin: boolean, notifications: boolean, 
/**
 * What files added by hand do when their key already holds an object at the store
 * (applied at once, also to the running engine).
 */
onConflict: OnConflict, 
/**
 * `system` (the environment's proxy), `direct` or `manual` (`proxy_url`).
 */
proxyMode: ProxyMode, proxyUrl: string, 
/**
 * The manual proxy's user name; its password is in the keychain, never here.
 */
proxyUser: string, 
/**
 * A PEM file of CA certificates to trust too.
 */
caFile: string | null, 
/**
 * The language of the window, the tray and notifications: `system`, `en` or `zh-CN`.
 */
language: Language, };

export type SettingsView = { proxyPasswordSaved: boolean, files: number, partsInFlight: number, partSizeMiB: number, bandwidthMiBs: number | null, startAtLogin: boolean, notifications: boolean, 
/**
 * What files added by hand do when their key already holds an object at the store
 * (applied at once, also to the running engine).
 */
onConflict: OnConflict, 
/**
 * `system` (the environment's proxy), `direct` or `manual` (`proxy_url`).
 */
proxyMode: ProxyMode, proxyUrl: string, 
/**
 * The manual proxy's user name; its password is in the keychain, never here.
 */
proxyUser: string, 
/**
 * A PEM file of CA certificates to trust too.
 */
caFile: string | null, 
/**
 * The language of the window, the tray and notifications: `system`, `en` or `zh-CN`.
 */
language: Language, };

export type ConnectionStep = { ok: boolean, error: ErrorInfo | null, };

export type ConnectionReport = { server: ConnectionStep, store: ConnectionStep | null, };

export type CommandError = { code: string, message: string, lang: string, };
