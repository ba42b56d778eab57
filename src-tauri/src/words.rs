//! The app's own sentences — tray, notifications, native dialogs and the messages of errors the
//! Rust side words — in English and Simplified Chinese, and which of the two Ferry speaks: the
//! one the settings choose, or the OS's locale. Both catalogs are [`Words`] values with every
//! field filled, so a sentence missing in one language does not compile. Error codes are not
//! words: they stay the same in every language.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tauri::{AppHandle, Manager};

use crate::desktop::Desktop;

/// The language the settings choose.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub(crate) enum Language {
    /// The OS's language (see [`Language::resolve`]).
    #[default]
    #[serde(rename = "system")]
    System,
    #[serde(rename = "en")]
    En,
    #[serde(rename = "zh-CN")]
    ZhCn,
}

/// A language Ferry speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lang {
    En,
    ZhCn,
}

impl Language {
    /// The language to speak: the chosen one, or for `System` the OS's — Simplified Chinese
    /// for any Chinese locale, English for everything else.
    pub(crate) fn resolve(self) -> Lang {
        match self {
            Language::En => Lang::En,
            Language::ZhCn => Lang::ZhCn,
            Language::System => from_locale(|name| std::env::var(name).ok()),
        }
    }
}

impl Lang {
    /// Its sentences.
    pub(crate) fn words(self) -> &'static Words {
        match self {
            Lang::En => &EN,
            Lang::ZhCn => &ZH_CN,
        }
    }

    /// Its BCP 47 tag, as the page names its catalogs: `en` or `zh-CN`.
    pub(crate) fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::ZhCn => "zh-CN",
        }
    }
}

/// The language the locale variables choose (`var` reads one), as POSIX and gettext read
/// them: the first non-empty of `LC_ALL`, `LC_MESSAGES` and `LANG` names the locale, and the
/// first entry of `LANGUAGE` goes before it unless the locale is C or POSIX (or unset). Windows
/// and macOS seldom set these: there it is English unless the settings say otherwise.
fn from_locale(var: impl Fn(&str) -> Option<String>) -> Lang {
    let set = |name: &str| var(name).filter(|v| !v.is_empty());
    let Some(locale) = ["LC_ALL", "LC_MESSAGES", "LANG"].into_iter().find_map(set) else {
        return Lang::En;
    };
    let plain = locale == "C" || locale == "POSIX" || locale.starts_with("C.");
    let first = set("LANGUAGE").and_then(|l| l.split(':').next().map(str::to_owned));
    let chosen = match first.filter(|f| !f.is_empty() && !plain) {
        Some(first) => first,
        None => locale,
    };
    if chosen.to_ascii_lowercase().starts_with("zh") {
        Lang::ZhCn
    } else {
        Lang::En
    }
}

/// The language Ferry speaks now: the one the settings choose, or the OS's before the
/// desktop's state (and so the settings) exists.
pub(crate) fn lang(app: &AppHandle) -> Lang {
    app.try_state::<Arc<Desktop>>()
        .map_or_else(|| Language::System.resolve(), |desktop| desktop.lang())
}

/// Ferry's sentences in the language it speaks now (see [`lang`]).
pub(crate) fn current(app: &AppHandle) -> &'static Words {
    lang(app).words()
}

impl Words {
    /// An account as people read it: its name (rows from before accounts were recorded have
    /// none), with its app server when that is not the one signed in to.
    pub(crate) fn account(&self, name: Option<&str>, server: Option<&str>) -> String {
        let name = name.unwrap_or(self.unknown_account);
        match server {
            Some(server) => (self.account_at)(name, server),
            None => name.to_owned(),
        }
    }
}

/// Every sentence the Rust side shows, in one language. Counts and names go in through the
/// `fn` fields, which say the whole sentence (plurals included).
pub(crate) struct Words {
    /// The language these are in (errors worded here say so to the page).
    pub(crate) lang: Lang,
    // The tray's menu.
    pub(crate) open_ferry: &'static str,
    pub(crate) pause_all: &'static str,
    pub(crate) resume_all: &'static str,
    /// The menu item, and the Quit dialog's button.
    pub(crate) quit: &'static str,

    // The tray's status line, its pieces joined by " · ".
    /// Files on their way.
    /// Files on their way, and the percentage of the queue's bytes stored.
    pub(crate) uploading: fn(u64, u64) -> String,
    pub(crate) retrying: fn(u64) -> String,
    pub(crate) failed: fn(u64) -> String,
    /// Files waiting for a decision about an object at their key.
    pub(crate) asking: fn(u64) -> String,
    pub(crate) idle: &'static str,
    /// Files of another account (files, account) waiting for it to sign in.
    pub(crate) waiting_for: fn(u64, &str) -> String,
    /// An account of another app server: (name, server).
    pub(crate) account_at: fn(&str, &str) -> String,
    /// The account of rows from before accounts were recorded.
    pub(crate) unknown_account: &'static str,
    /// Another account's file cannot be touched: (file, account).
    pub(crate) belongs_to: fn(&str, &str) -> String,
    pub(crate) signed_out: &'static str,
    /// The tray's tooltip around the status line.
    pub(crate) tooltip: fn(&str) -> String,

    // Notifications.
    pub(crate) upload_failed: &'static str,
    pub(crate) upload_failed_body: &'static str,
    /// Title: a menu action (its words) did not work; the body says why.
    pub(crate) action_failed: fn(&str) -> String,
    /// A file waits for a decision about an object at its key.
    pub(crate) decision_needed: &'static str,
    pub(crate) decision_needed_body: &'static str,
    pub(crate) uploads_finished: &'static str,
    pub(crate) all_confirmed: &'static str,
    /// Title: the queue ran empty with (failed) files failed.
    pub(crate) finished_failed: fn(u64) -> String,
    /// Title: the queue ran empty with (asking) files waiting for a decision, none failed.
    pub(crate) finished_asking: fn(u64) -> String,
    /// Body: (confirmed, failed, asking) files.
    pub(crate) finished_body: fn(u64, u64, u64) -> String,
    pub(crate) session_ended: &'static str,
    pub(crate) session_ended_body: &'static str,
    pub(crate) not_added: &'static str,
    pub(crate) not_added_body: &'static str,
    pub(crate) still_running: &'static str,
    pub(crate) still_running_in_tray: &'static str,
    pub(crate) still_running_minimised: &'static str,

    // The Quit dialog.
    pub(crate) quit_title: &'static str,
    /// Files still on their way.
    pub(crate) quit_question: fn(u64) -> String,
    pub(crate) keep_uploading: &'static str,

    // The dialog asking to allow plain http:// to another computer (host).
    pub(crate) insecure_title: &'static str,
    pub(crate) insecure_question: fn(&str) -> String,
    pub(crate) insecure_connect: &'static str,
    pub(crate) cancel: &'static str,
    pub(crate) insecure_refused: fn(&str) -> String,

    // The system's file dialogs (the desktop test finds them by their titles).
    pub(crate) add_files_title: &'static str,
    pub(crate) choose_folder_title: &'static str,
    pub(crate) save_diagnostics_title: &'static str,
    /// A pick id the page named and nothing was picked as.
    pub(crate) unknown_pick: fn(u64) -> String,

    // Settings refused (`invalid_settings`).
    /// Why the page's settings could not be read.
    pub(crate) settings_unreadable: fn(&str) -> String,
    pub(crate) files_range: &'static str,
    pub(crate) parts_range: &'static str,
    pub(crate) part_size_range: &'static str,
    pub(crate) bandwidth_range: &'static str,
    pub(crate) proxy_address: &'static str,
    pub(crate) proxy_password_needs_user: &'static str,

    /// `signed_out`: a command that needs an account.
    pub(crate) sign_in_first: &'static str,
}

/// English: the sentences as Ferry has always said them (the end-to-end tests read them).
pub(crate) static EN: Words = Words {
    lang: Lang::En,
    open_ferry: "Open Ferry",
    pause_all: "Pause all",
    resume_all: "Resume all",
    quit: "Quit",

    uploading: |n, percent| {
        let files = if n == 1 { "file" } else { "files" };
        format!("uploading {n} {files}, {percent}%")
    },
    retrying: |n| format!("{n} retrying"),
    failed: |n| format!("{n} failed"),
    asking: |n| format!("{n} waiting for your decision"),
    idle: "idle",
    waiting_for: |n, account| format!("{n} waiting for {account}"),
    account_at: |name, server| format!("{name} at {server}"),
    unknown_account: "an unknown account",
    belongs_to: |file, account| {
        format!("{file} belongs to {account}: it waits for them to sign in.")
    },
    signed_out: "signed out",
    tooltip: |status| format!("Ferry — {status}"),

    upload_failed: "An upload failed",
    upload_failed_body: "Open Ferry to see why and retry.",
    action_failed: |action| format!("{action} did not work"),
    decision_needed: "A file is already at the store",
    decision_needed_body: "Open Ferry to choose: replace it, keep both, or skip the file.",
    uploads_finished: "Uploads finished",
    all_confirmed: "Every file in the queue is confirmed.",
    finished_failed: |failed| format!("Uploads finished, {failed} failed"),
    finished_asking: |asking| format!("Uploads finished, {asking} waiting for your decision"),
    finished_body: |confirmed, failed, asking| {
        let files = if confirmed == 1 { "file" } else { "files" };
        let mut said = format!("{confirmed} {files} confirmed");
        if failed > 0 {
            said += &format!(", {failed} failed");
        }
        if asking > 0 {
            said += &format!(", {asking} waiting for your decision");
        }
        let then = match failed {
            0 => "decide",
            _ => "see why and retry",
        };
        format!("{said}. Open Ferry to {then}.")
    },
    session_ended: "Signed out",
    session_ended_body: "Your session ended. Sign in again to continue uploading.",
    not_added: "Not added",
    not_added_body: "Sign in first; dropped files are uploaded once you are signed in.",
    still_running: "Ferry is still running",
    still_running_in_tray: "Uploads and watched folders go on. Open Ferry or quit it from its \
                            icon in the tray.",
    still_running_minimised: "Uploads and watched folders go on. Ferry is minimised; quit it \
                              from its window.",

    quit_title: "Quit Ferry?",
    quit_question: |n| {
        let files = if n == 1 { "file is" } else { "files are" };
        format!(
            "{n} {files} still on the way. Quit anyway? They go on from where they stopped the \
             next time Ferry starts."
        )
    },
    keep_uploading: "Keep uploading",

    insecure_title: "Connect without encryption?",
    insecure_question: |host| {
        format!(
            "{host} would be reached without encryption (http://). Your password, your session \
             and your storage credentials could be read by anyone on the way.\n\n\
             Connect anyway?"
        )
    },
    insecure_connect: "Connect without encryption",
    cancel: "Cancel",
    insecure_refused: |host| format!("Not connected: {host} was not allowed without encryption."),

    add_files_title: "Add files to Ferry",
    choose_folder_title: "Choose a folder for Ferry",
    save_diagnostics_title: "Save Ferry's diagnostics",
    unknown_pick: |id| format!("Nothing was picked as {id}: choose the files again."),

    settings_unreadable: |err| {
        format!("The settings could not be read ({err}). Numbers only, please.")
    },
    files_range: "Files at once must be between 1 and 16.",
    parts_range: "Parts in flight must be between 1 and 64.",
    part_size_range: "Parts must be between 5 MiB and 5 GiB.",
    bandwidth_range: "A bandwidth limit must be between 1 and 102400 MiB/s (leave it empty for \
                      none).",
    proxy_address: "Give the proxy's address, as http://host:port or socks5://host:port.",
    proxy_password_needs_user: "A proxy password goes with a user name: give the user name too.",

    sign_in_first: "Sign in first.",
};

/// Simplified Chinese; the product name stays "Ferry".
pub(crate) static ZH_CN: Words = Words {
    lang: Lang::ZhCn,
    open_ferry: "打开 Ferry",
    pause_all: "全部暂停",
    resume_all: "全部继续",
    quit: "退出",

    uploading: |n, percent| format!("正在上传 {n} 个文件（{percent}%）"),
    retrying: |n| format!("{n} 个重试中"),
    failed: |n| format!("{n} 个失败"),
    asking: |n| format!("{n} 个待决定"),
    idle: "空闲",
    waiting_for: |n, account| format!("{n} 个等待 {account} 登录"),
    account_at: |name, server| format!("{server} 上的 {name}"),
    unknown_account: "未知账号",
    belongs_to: |file, account| format!("{file} 属于 {account}：它会等该账号登录后再上传。"),
    signed_out: "未登录",
    tooltip: |status| format!("Ferry — {status}"),

    upload_failed: "有文件上传失败",
    upload_failed_body: "打开 Ferry 查看原因并重试。",
    action_failed: |action| format!("{action}未成功"),
    decision_needed: "有文件在存储中已存在",
    decision_needed_body: "打开 Ferry 选择：覆盖、保留两者或跳过该文件。",
    uploads_finished: "上传完成",
    all_confirmed: "队列中的文件均已确认。",
    finished_failed: |failed| format!("上传完成，{failed} 个失败"),
    finished_asking: |asking| format!("上传完成，{asking} 个待决定"),
    finished_body: |confirmed, failed, asking| {
        let mut said = format!("{confirmed} 个文件已确认");
        if failed > 0 {
            said += &format!("，{failed} 个失败");
        }
        if asking > 0 {
            said += &format!("，{asking} 个待决定");
        }
        let then = match failed {
            0 => "做出选择",
            _ => "查看原因并重试",
        };
        format!("{said}。打开 Ferry {then}。")
    },
    session_ended: "登录已过期",
    session_ended_body: "会话已结束。请重新登录以继续上传。",
    not_added: "未添加",
    not_added_body: "请先登录；拖入的文件会在登录后上传。",
    still_running: "Ferry 仍在运行",
    still_running_in_tray: "上传和文件夹监视仍在继续。可从托盘图标打开或退出 Ferry。",
    still_running_minimised: "上传和文件夹监视仍在继续。Ferry 已最小化，可从其窗口退出。",

    quit_title: "退出 Ferry？",
    quit_question: |n| {
        format!("还有 {n} 个文件正在上传。仍要退出吗？下次启动 Ferry 时会从中断处继续。")
    },
    keep_uploading: "继续上传",

    insecure_title: "以不加密方式连接？",
    insecure_question: |host| {
        format!(
            "将以不加密方式（http://）连接 {host}。你的密码、会话和存储凭证可能被传输途中的\
             任何人读取。\n\n仍要连接吗？"
        )
    },
    insecure_connect: "以不加密方式连接",
    cancel: "取消",
    insecure_refused: |host| format!("未连接：未允许以不加密方式连接 {host}。"),

    add_files_title: "添加文件到 Ferry",
    choose_folder_title: "为 Ferry 选择文件夹",
    save_diagnostics_title: "保存 Ferry 诊断信息",
    unknown_pick: |id| format!("找不到所选项 {id}：请重新选择文件。"),

    settings_unreadable: |err| format!("无法读取设置（{err}）。请只填写数字。"),
    files_range: "同时上传的文件数必须在 1 到 16 之间。",
    parts_range: "同时传输的分片数必须在 1 到 64 之间。",
    part_size_range: "分片大小必须在 5 MiB 到 5 GiB 之间。",
    bandwidth_range: "带宽限制必须在 1 到 102400 MiB/s 之间（留空表示不限速）。",
    proxy_address: "请填写代理地址，格式为 http://host:port 或 socks5://host:port。",
    proxy_password_needs_user: "代理密码需与用户名一起使用：请同时填写用户名。",

    sign_in_first: "请先登录。",
};

#[cfg(test)]
mod tests {
    use super::*;

    fn chosen(vars: &[(&str, &str)]) -> Lang {
        from_locale(|name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn the_os_language_is_read_in_posix_order() {
        use Lang::*;
        assert_eq!(chosen(&[]), En, "nothing set");
        assert_eq!(chosen(&[("LANG", "zh_CN.UTF-8")]), ZhCn);
        assert_eq!(chosen(&[("LANG", "zh_TW.UTF-8")]), ZhCn);
        assert_eq!(chosen(&[("LANG", "zh_CN")]), ZhCn);
        assert_eq!(chosen(&[("LANG", "de_DE.UTF-8")]), En);
        assert_eq!(
            chosen(&[("LC_ALL", "en_US.UTF-8"), ("LANG", "zh_CN.UTF-8")]),
            En
        );
        assert_eq!(
            chosen(&[("LC_ALL", "zh_CN.UTF-8"), ("LANG", "en_US.UTF-8")]),
            ZhCn
        );
        assert_eq!(
            chosen(&[("LC_MESSAGES", "zh_CN.UTF-8"), ("LANG", "en_US.UTF-8")]),
            ZhCn
        );
        assert_eq!(
            chosen(&[("LC_ALL", ""), ("LANG", "zh_CN.UTF-8")]),
            ZhCn,
            "empty is unset"
        );
        for plain in ["C", "POSIX", "C.UTF-8", ""] {
            assert_eq!(chosen(&[("LANG", plain)]), En, "{plain:?}");
        }
    }

    #[test]
    fn the_first_of_language_goes_first_unless_the_locale_is_c() {
        use Lang::*;
        let zh_first = ("LANGUAGE", "zh_CN:en_US");
        assert_eq!(chosen(&[zh_first, ("LANG", "en_US.UTF-8")]), ZhCn);
        assert_eq!(
            chosen(&[("LANGUAGE", "en_GB:zh_CN"), ("LANG", "zh_CN.UTF-8")]),
            En
        );
        assert_eq!(chosen(&[zh_first, ("LANG", "C")]), En);
        assert_eq!(chosen(&[zh_first, ("LANG", "POSIX")]), En);
        assert_eq!(chosen(&[zh_first]), En, "no locale is C");
        assert_eq!(
            chosen(&[("LANGUAGE", ""), ("LANG", "zh_CN.UTF-8")]),
            ZhCn,
            "an empty LANGUAGE says nothing"
        );
    }

    #[test]
    fn a_chosen_language_is_spoken_whatever_the_os_says() {
        assert_eq!(Language::En.resolve(), Lang::En);
        assert_eq!(Language::ZhCn.resolve(), Lang::ZhCn);
        assert_eq!(Lang::ZhCn.tag(), "zh-CN");
        assert_eq!(Lang::En.tag(), "en");
        assert_eq!(Lang::ZhCn.words().quit, "退出");
    }
}
