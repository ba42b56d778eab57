//! The tray icon: its menu (the status line, open, pause all, resume all, quit) and its status
//! line, which says what the queue does — files uploading, files being retried, files failed
//! for good, files waiting for a decision about an object at their key, and files waiting for
//! another account to sign in. The line is the menu's first item (Linux trays show no
//! tooltip), the icon's label and its tooltip. It is recomputed from the engine's status a
//! moment after events arrive (events in a burst share one recount), and the notifications for
//! a failed file, a file asked about and a finished queue go out from the same recount. Menu and
//! line speak the language the settings choose, and are worded again when it changes.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferry_engine::events::Event;
use ferry_engine::journal::{FileState, Totals, Waiting};
use tauri::menu::{Menu, MenuItem};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Manager, Wry};

use crate::desktop::Desktop;
use crate::queue::QueueTotals;
use crate::shell::{notify, show};
use crate::words::{self, Lang, Words};

/// How long events gather before the status is counted again.
const SETTLE: Duration = Duration::from_millis(300);

/// How long bytes moving wait to be counted (the percentage moves about once a second).
const PROGRESS_SETTLE: Duration = Duration::from_secs(1);

/// What the status line counts, for the signed-in account.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Summary {
    /// Queued, uploading, or uploaded and being confirmed.
    pub(crate) active: u64,
    /// Of the bytes of the account's files in view, the percentage stored (0–100).
    pub(crate) percent: u64,
    /// Waiting for their next attempt, or with a request being retried right now.
    pub(crate) retrying: u64,
    /// Failed for good: they wait for the user.
    pub(crate) failed: u64,
    /// Waiting for a decision about an object at their key.
    pub(crate) asking: u64,
    /// Unfinished files of other accounts: (account, files).
    pub(crate) waiting: Vec<(String, u64)>,
}

impl Summary {
    /// The status line in `words`' language: "uploading 3 files, 42% · 1 retrying · 2 failed ·
    /// 4 waiting for alice", or "正在上传 3 个文件（42%） · 1 个重试中 · 2 个失败 · 4 个等待 alice 登录".
    pub(crate) fn text(&self, words: &Words) -> String {
        let mut parts = Vec::new();
        if self.active > 0 {
            parts.push((words.uploading)(self.active, self.percent));
        }
        if self.retrying > 0 {
            parts.push((words.retrying)(self.retrying));
        }
        if self.failed > 0 {
            parts.push((words.failed)(self.failed));
        }
        if self.asking > 0 {
            parts.push((words.asking)(self.asking));
        }
        if parts.is_empty() {
            parts.push(words.idle.to_owned());
        }
        for (account, files) in &self.waiting {
            parts.push((words.waiting_for)(*files, account));
        }
        parts.join(" · ")
    }
}

/// The notification for a queue that just ran empty (`totals`: the account's files in the
/// journal), or `None` while files are still on their way (or wait for their next attempt).
/// Worded in `words`' language: files failed for good and files waiting for a decision are
/// told apart.
pub(crate) fn batch_notice(totals: &Totals, words: &Words) -> Option<(String, String)> {
    let counted = QueueTotals::from(totals);
    if counted.active > 0 || counted.retrying > 0 {
        return None;
    }
    let (confirmed, failed, asking) = (counted.done, counted.failed, counted.asking);
    let title = match (failed, asking) {
        (0, 0) => return Some((words.uploads_finished.into(), words.all_confirmed.into())),
        (0, asking) => (words.finished_asking)(asking),
        (failed, _) => (words.finished_failed)(failed),
    };
    Some((title, (words.finished_body)(confirmed, failed, asking)))
}

/// The tray's status, kept up to date from engine events.
pub(crate) struct TrayStatus {
    app: AppHandle,
    /// Files with a request retry announced since their bytes last moved or their state
    /// changed.
    announced: Mutex<HashSet<i64>>,
    /// A recount is on its way.
    scheduled: AtomicBool,
    /// A file failed for good since the last recount.
    failed: AtomicBool,
    /// A file came to wait for a decision about an object at its key since the last recount.
    asked: AtomicBool,
    /// A file was confirmed since the last recount.
    confirmed: AtomicBool,
    /// The language the menu was built in.
    lang: Mutex<Lang>,
    /// Bytes of each file on its way as its progress events tell them (sent, for a file in
    /// one PUT; stored, for a file in parts), counted beside what the journal holds.
    sent: Mutex<HashMap<i64, u64>>,
    /// The menu's first item, which shows the status line.
    line: Mutex<Option<MenuItem<Wry>>>,
}

impl TrayStatus {
    pub(crate) fn new(app: AppHandle) -> Arc<Self> {
        Arc::new(Self {
            app,
            announced: Mutex::default(),
            scheduled: AtomicBool::new(false),
            failed: AtomicBool::new(false),
            asked: AtomicBool::new(false),
            confirmed: AtomicBool::new(false),
            lang: Mutex::new(Lang::En),
            sent: Mutex::default(),
            line: Mutex::default(),
        })
    }

    fn announced(&self) -> std::sync::MutexGuard<'_, HashSet<i64>> {
        self.announced.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn sent(&self) -> std::sync::MutexGuard<'_, HashMap<i64, u64>> {
        self.sent.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lang(&self) -> std::sync::MutexGuard<'_, Lang> {
        self.lang.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes note of an engine event; recounts soon when it may change the status.
    pub(crate) fn observe(self: &Arc<Self>, event: &Event) {
        match event {
            Event::Retrying {
                file_id: Some(id), ..
            } => {
                self.announced().insert(*id);
                self.recount_soon();
            }
            // Bytes move: the percentage follows, and a request being retried went through.
            Event::Progress { file_id, bytes, .. } => {
                self.sent().insert(*file_id, *bytes);
                if self.announced().remove(file_id) {
                    self.recount_soon();
                } else {
                    self.recount_after(PROGRESS_SETTLE);
                }
            }
            Event::State {
                file_id,
                state,
                error,
            } => {
                self.announced().remove(file_id);
                self.sent().remove(file_id);
                let asked = error.as_ref().is_some_and(|e| e.code == "exists");
                match state {
                    FileState::Failed if asked => self.asked.store(true, Ordering::Relaxed),
                    FileState::Failed => self.failed.store(true, Ordering::Relaxed),
                    FileState::Confirmed => self.confirmed.store(true, Ordering::Relaxed),
                    _ => {}
                }
                self.recount_soon();
            }
            Event::CredentialsRefreshed { .. } => self.recount_soon(),
            Event::SessionExpired => {
                self.announced().clear();
                self.sent().clear();
                self.set_signed_out();
            }
            _ => {}
        }
    }

    /// Counts the status again in a moment (once for a burst of events).
    pub(crate) fn recount_soon(self: &Arc<Self>) {
        self.recount_after(SETTLE);
    }

    /// Counts the status again after `settle`, unless a recount is on its way already (the
    /// events until then share it).
    fn recount_after(self: &Arc<Self>, settle: Duration) {
        if self.scheduled.swap(true, Ordering::AcqRel) {
            return;
        }
        let this = self.clone();
        tauri::async_runtime::spawn(async move {
            tokio::time::sleep(settle).await;
            this.scheduled.store(false, Ordering::Release);
            this.recount().await;
        });
    }

    /// Words the menu and the status line again when the settings now choose another language
    /// than the one the menu was built in (the menu's ids stay the same).
    pub(crate) fn relabel(self: &Arc<Self>) {
        // Held while the menu is made and set: two saves in a row set their menus in order,
        // and the language is noted only once its menu is in place.
        let mut shown = self.lang();
        let lang = words::lang(&self.app);
        if *shown == lang {
            return;
        }
        let Some(tray) = self.app.tray_by_id("main") else {
            return;
        };
        match menu(&self.app, lang.words()).and_then(|(m, line)| {
            tray.set_menu(Some(m))?;
            *self.line.lock().unwrap_or_else(|p| p.into_inner()) = Some(line);
            Ok(())
        }) {
            Ok(()) => *shown = lang,
            Err(err) => tracing::warn!(error = %err, "could not word the tray's menu again"),
        }
        drop(shown);
        self.recount_soon();
    }

    fn set(&self, words: &Words, text: &str) {
        if let Some(tray) = self.app.tray_by_id("main") {
            let _ = tray.set_tooltip(Some((words.tooltip)(text)));
            let _ = tray.set_title(Some(text));
        }
        // (Taken out first: setting its text waits for the main thread.)
        let line = self.line.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(line) = line {
            let _ = line.set_text(text);
        }
    }

    fn set_signed_out(&self) {
        let words = words::current(&self.app);
        self.set(words, words.signed_out);
    }

    async fn recount(&self) {
        let Some(desktop) = self
            .app
            .try_state::<Arc<Desktop>>()
            .map(|d| d.inner().clone())
        else {
            return;
        };
        let Ok(engine) = desktop.engine().await else {
            self.announced().clear();
            self.sent().clear();
            self.set_signed_out();
            return;
        };
        let Some(me) = engine.session().owner() else {
            self.set_signed_out();
            return;
        };
        // Taken before the journal is read: a file failed or confirmed while it is read is
        // told by the next recount, never lost to this one.
        let failed = self.failed.swap(false, Ordering::AcqRel);
        let asked = self.asked.swap(false, Ordering::AcqRel);
        let confirmed = self.confirmed.swap(false, Ordering::AcqRel);
        let journal = engine.journal().clone();
        let counted = tokio::task::spawn_blocking(move || {
            Ok::<_, ferry_engine::Error>((
                journal.totals(&me)?,
                journal.waiting_for_others(Some(&me))?,
            ))
        });
        let Ok(Ok((totals, waiting))) = counted.await else {
            // Told by the next recount.
            self.failed.fetch_or(failed, Ordering::AcqRel);
            self.asked.fetch_or(asked, Ordering::AcqRel);
            self.confirmed.fetch_or(confirmed, Ordering::AcqRel);
            return;
        };
        // Bytes of files no longer on their way (a progress event after a pause, a cancel)
        // are forgotten.
        let on_their_way: HashSet<i64> = totals.uploading.iter().map(|(id, _)| *id).collect();
        self.sent().retain(|id, _| on_their_way.contains(id));
        let (announced, sent) = (self.announced().clone(), self.sent().clone());
        let words = desktop.words();
        let seen = Seen {
            announced: &announced,
            sent: &sent,
        };
        let summary = summarize(&totals, &waiting, &seen, words);
        self.set(words, &summary.text(words));
        let finished = confirmed.then(|| batch_notice(&totals, words)).flatten();
        if failed && summary.failed > 0 {
            notify(&self.app, words.upload_failed, words.upload_failed_body);
        }
        // (The finished notice, going out now, says it too.)
        if asked && summary.asking > 0 && finished.is_none() {
            notify(&self.app, words.decision_needed, words.decision_needed_body);
        }
        if let Some((title, body)) = finished {
            notify(&self.app, &title, &body);
        }
    }
}

/// What the tray saw of files on their way, beside the journal.
struct Seen<'a> {
    /// Files with a request retry announced since their bytes last moved.
    announced: &'a HashSet<i64>,
    /// Bytes sent so far, per file (ahead of the parts the journal holds as stored).
    sent: &'a HashMap<i64, u64>,
}

/// The summary of the signed-in account's files from the journal's `totals` and what the tray
/// `seen` of files on their way, and other accounts' unfinished files (named in `words`).
fn summarize(totals: &Totals, waiting: &[Waiting], seen: &Seen, words: &Words) -> Summary {
    let counted = QueueTotals::from(totals);
    let retried_now = totals
        .uploading
        .iter()
        .filter(|(id, _)| seen.announced.contains(id))
        .count() as u64;
    let ahead: u64 = totals
        .uploading
        .iter()
        .map(|(id, stored)| seen.sent.get(id).map_or(0, |s| s.saturating_sub(*stored)))
        .sum();
    let sent = counted.sent.saturating_add(ahead).min(counted.size);
    let percent = (sent * 100).checked_div(counted.size).unwrap_or(0);
    Summary {
        active: counted.active,
        percent,
        retrying: counted.retrying + retried_now,
        failed: counted.failed,
        asking: counted.asking,
        waiting: waiting
            .iter()
            .map(|w| {
                (
                    words.account(w.name.as_deref(), w.server.as_deref()),
                    w.files,
                )
            })
            .collect(),
    }
}

/// The tray's menu in `words`' language: the status line (not an action: the next recount
/// words it), open, pause all, resume all and quit (their ids never change with the
/// language); and its status line's item.
fn menu(app: &AppHandle, words: &Words) -> tauri::Result<(Menu<Wry>, MenuItem<Wry>)> {
    let item = |id: &str, text: &str| MenuItem::with_id(app, id, text, true, None::<&str>);
    let line = MenuItem::with_id(app, "status", words.signed_out, false, None::<&str>);
    let line = line?;
    let open = item("open", words.open_ferry)?;
    let pause = item("pause", words.pause_all)?;
    let resume = item("resume", words.resume_all)?;
    let quit = item("quit", words.quit)?;
    let menu = Menu::with_items(app, &[&line, &open, &pause, &resume, &quit])?;
    Ok((menu, line))
}

/// The tray icon with its menu, in the language Ferry speaks (`status` takes note of it).
pub(crate) fn build(app: &AppHandle, status: &TrayStatus) -> tauri::Result<()> {
    let lang = words::lang(app);
    *status.lang() = lang;
    let words = lang.words();
    let (menu, line) = menu(app, words)?;
    *status.line.lock().unwrap_or_else(|p| p.into_inner()) = Some(line);
    let mut builder = TrayIconBuilder::with_id("main")
        .menu(&menu)
        .tooltip((words.tooltip)(words.signed_out));
    if let Some(icon) = app.default_window_icon() {
        builder = builder.icon(icon.clone());
    }
    builder
        .on_menu_event(|app, event| match event.id.as_ref() {
            "open" => show(app),
            "quit" => crate::shell::quit(app),
            action @ ("pause" | "resume") => {
                let app = app.clone();
                let action = action.to_owned();
                tauri::async_runtime::spawn(async move {
                    let Some(desktop) = app.try_state::<Arc<Desktop>>().map(|d| d.inner().clone())
                    else {
                        return;
                    };
                    if let Err(err) = desktop.control(&action, None).await {
                        // Said where it was asked for: the window may be hidden.
                        tracing::warn!(code = %err.code(), "tray action failed");
                        let words = words::current(&app);
                        let asked = match action.as_str() {
                            "pause" => words.pause_all,
                            _ => words.resume_all,
                        };
                        notify(&app, &(words.action_failed)(asked), err.message());
                    }
                });
            }
            _ => {}
        })
        .build(app)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::words::{EN, ZH_CN};

    /// The account's files in the journal: `counts` per state, `retrying` failed files due
    /// again, `asking` failed files waiting for a decision.
    fn totals(counts: &[(FileState, u64)], retrying: u64, asking: u64) -> Totals {
        Totals {
            counts: counts.to_vec(),
            failed_scheduled: retrying,
            failed_asking: asking,
            ..Totals::default()
        }
    }

    #[test]
    fn the_finished_notice_says_how_many_failed() {
        use FileState::*;
        let notice = |counts: &[(FileState, u64)]| batch_notice(&totals(counts, 0, 0), &EN);
        assert_eq!(notice(&[(Confirmed, 3), (Queued, 1)]), None);
        let (_, body) = notice(&[(Confirmed, 3), (Cancelled, 1)]).unwrap();
        assert_eq!(body, "Every file in the queue is confirmed.");
        let (title, body) = notice(&[(Confirmed, 3), (Failed, 2)]).unwrap();
        assert_eq!(title, "Uploads finished, 2 failed");
        assert_eq!(
            body,
            "3 files confirmed, 2 failed. Open Ferry to see why and retry."
        );
        let (title, body) = notice(&[(Confirmed, 1), (Failed, 1)]).unwrap();
        assert_eq!(title, "Uploads finished, 1 failed");
        assert_eq!(
            body,
            "1 file confirmed, 1 failed. Open Ferry to see why and retry."
        );
    }

    /// A file waiting for a decision about an object at its key has not failed: the notice
    /// says it waits for the user's decision — in both languages.
    #[test]
    fn the_finished_notice_tells_files_asked_about_from_failed_ones() {
        use FileState::*;
        let asked = totals(&[(Confirmed, 2), (Failed, 1)], 0, 1);
        let (title, body) = batch_notice(&asked, &EN).unwrap();
        assert_eq!(title, "Uploads finished, 1 waiting for your decision");
        assert_eq!(
            body,
            "2 files confirmed, 1 waiting for your decision. Open Ferry to decide."
        );
        let (title, body) = batch_notice(&asked, &ZH_CN).unwrap();
        assert_eq!(title, "上传完成，1 个待决定");
        assert_eq!(body, "2 个文件已确认，1 个待决定。打开 Ferry 做出选择。");
        let both = totals(&[(Confirmed, 2), (Failed, 3)], 0, 1);
        let (title, body) = batch_notice(&both, &EN).unwrap();
        assert_eq!(title, "Uploads finished, 2 failed");
        assert_eq!(
            body,
            "2 files confirmed, 2 failed, 1 waiting for your decision. Open Ferry to see why \
             and retry."
        );
    }

    #[test]
    fn a_queue_with_files_waiting_to_be_retried_is_not_finished() {
        use FileState::*;
        // Two files failed; one of them is tried again by itself in a moment.
        let counts = [(Confirmed, 3), (Failed, 2)];
        assert_eq!(batch_notice(&totals(&counts, 1, 0), &EN), None);
        assert_eq!(batch_notice(&totals(&counts, 2, 0), &EN), None);
    }

    #[test]
    fn the_status_line_names_retrying_failed_and_waiting_files() {
        let mut summary = Summary::default();
        assert_eq!(summary.text(&EN), "idle");
        summary.active = 1;
        assert_eq!(summary.text(&EN), "uploading 1 file, 0%");
        summary.active = 3;
        summary.percent = 42;
        summary.retrying = 1;
        summary.failed = 2;
        assert_eq!(
            summary.text(&EN),
            "uploading 3 files, 42% · 1 retrying · 2 failed"
        );
        summary.asking = 1;
        assert_eq!(
            summary.text(&EN),
            "uploading 3 files, 42% · 1 retrying · 2 failed · 1 waiting for your decision"
        );
        summary.active = 0;
        summary.failed = 0;
        summary.asking = 0;
        summary.waiting = vec![("alice".into(), 4), ("bob at https://x.example".into(), 1)];
        assert_eq!(
            summary.text(&EN),
            "1 retrying · 4 waiting for alice · 1 waiting for bob at https://x.example"
        );
    }

    #[test]
    fn files_waiting_for_a_retry_count_as_retrying_not_failed() {
        use FileState::*;
        // Files 1 and 2 upload, 1 with a request retry announced; 3 failed files, 2 of them
        // due again; 2 uploaded, 1 of them with its confirmation due again.
        let totals = Totals {
            counts: vec![(Uploading, 2), (Uploaded, 2), (Failed, 3), (Confirmed, 5)],
            size: 400,
            sent: 100,
            failed_scheduled: 2,
            failed_asking: 0,
            uploaded_scheduled: 1,
            uploading: vec![(1, 0), (2, 0)],
        };
        let announced = HashSet::from([1, 9]);
        let alice = Waiting {
            name: Some("alice".into()),
            server: None,
            files: 1,
        };
        let sent = HashMap::new();
        let seen = Seen {
            announced: &announced,
            sent: &sent,
        };
        let summary = summarize(&totals, &[alice], &seen, &EN);
        assert_eq!(
            summary,
            Summary {
                active: 3,
                percent: 25,
                retrying: 4,
                failed: 1,
                asking: 0,
                waiting: vec![("alice".into(), 1)],
            }
        );
        assert_eq!(
            summary.text(&EN),
            "uploading 3 files, 25% · 4 retrying · 1 failed · 1 waiting for alice"
        );
    }

    #[test]
    fn the_percentage_counts_the_bytes_sent_beside_the_parts_stored() {
        use FileState::*;
        // File 1 goes in one PUT: 250 bytes sent, none stored until it is; file 2 goes in
        // parts: 100 stored, and its progress counts what is stored; file 9 is not on its way.
        let totals = Totals {
            counts: vec![(Uploading, 2)],
            size: 1000,
            sent: 100,
            uploading: vec![(1, 0), (2, 100)],
            ..Totals::default()
        };
        let sent = HashMap::from([(1, 250), (2, 100), (9, 500)]);
        let seen = Seen {
            announced: &HashSet::new(),
            sent: &sent,
        };
        assert_eq!(summarize(&totals, &[], &seen, &EN).percent, 35);
        // Bytes seen behind what is stored (an event from before a part was stored) take
        // nothing away.
        let sent = HashMap::from([(2, 40)]);
        let seen = Seen {
            announced: &HashSet::new(),
            sent: &sent,
        };
        assert_eq!(summarize(&totals, &[], &seen, &EN).percent, 10);
    }

    #[test]
    fn the_status_line_and_the_finished_notice_speak_chinese() {
        use FileState::*;
        let mut summary = Summary::default();
        assert_eq!(summary.text(&ZH_CN), "空闲");
        summary.active = 3;
        summary.percent = 42;
        summary.retrying = 1;
        summary.failed = 2;
        summary.waiting = vec![("alice".into(), 4)];
        assert_eq!(
            summary.text(&ZH_CN),
            "正在上传 3 个文件（42%） · 1 个重试中 · 2 个失败 · 4 个等待 alice 登录"
        );
        assert_eq!((ZH_CN.tooltip)("空闲"), "Ferry — 空闲");
        // Accounts of another app server, and rows from before accounts, named in Chinese.
        let others = [
            Waiting {
                name: Some("bob".into()),
                server: Some("https://x.example".into()),
                files: 1,
            },
            Waiting {
                name: None,
                server: None,
                files: 2,
            },
        ];
        let nothing = Seen {
            announced: &HashSet::new(),
            sent: &HashMap::new(),
        };
        let summary = summarize(&Totals::default(), &others, &nothing, &ZH_CN);
        assert_eq!(
            summary.text(&ZH_CN),
            "空闲 · 1 个等待 https://x.example 上的 bob 登录 · 2 个等待 未知账号 登录"
        );

        let notice = |counts: &[(FileState, u64)], retrying| {
            batch_notice(&totals(counts, retrying, 0), &ZH_CN)
        };
        let (title, body) = notice(&[(Confirmed, 3), (Cancelled, 1)], 0).unwrap();
        assert_eq!(
            (title.as_str(), body.as_str()),
            ("上传完成", "队列中的文件均已确认。")
        );
        let (title, body) = notice(&[(Confirmed, 1), (Failed, 2)], 0).unwrap();
        assert_eq!(title, "上传完成，2 个失败");
        assert_eq!(
            body,
            "1 个文件已确认，2 个失败。打开 Ferry 查看原因并重试。"
        );
        assert_eq!(notice(&[(Confirmed, 3), (Failed, 2)], 1), None);
    }
}
