//! Colour for people on a terminal: errors red, warnings yellow, success green. Off when
//! the stream is not a terminal, with `NO_COLOR` set, or with `--json`; `CLICOLOR_FORCE`
//! forces it (anstream's rules, the same as clap's help).

use amsu_core::Severity;
use anstyle::{AnsiColor, Style};

const ERROR: Style = AnsiColor::Red.on_default().bold();
const WARNING: Style = AnsiColor::Yellow.on_default().bold();
const SUCCESS: Style = AnsiColor::Green.on_default().bold();
const INFO: Style = AnsiColor::Cyan.on_default();

/// `text` in `style` (the escape codes are stripped on output where colour is off, see
/// [`crate::output`]).
fn paint(style: Style, text: &str) -> String {
    format!("{style}{text}{style:#}")
}

/// `error:`.
pub(crate) fn error_label() -> String {
    paint(ERROR, "error:")
}

/// `warning:`.
pub(crate) fn warning_label() -> String {
    paint(WARNING, "warning:")
}

/// `warning (SERVER):`.
pub(crate) fn warning_on(server: &str) -> String {
    paint(WARNING, &format!("warning ({server}):"))
}

/// A line that says it worked.
pub(crate) fn success(text: &str) -> String {
    paint(SUCCESS, text)
}

/// `[blocking]`, `[warning]`, `[info]`.
pub(crate) fn severity(s: Severity) -> String {
    paint(style_of(s), &format!("[{s}]"))
}

/// A group heading of findings.
pub(crate) fn heading(s: Severity, title: &str) -> String {
    paint(style_of(s), title)
}

fn style_of(s: Severity) -> Style {
    match s {
        Severity::Blocking => ERROR,
        Severity::Warning => WARNING,
        _ => INFO,
    }
}
