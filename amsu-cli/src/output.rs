//! Writing to stdout and stderr without ever panicking. `println!` panics when stdout is
//! a closed pipe (`amsu setup … | head -1`); here a failed write to stdout asks the run to
//! stop at a safe point instead (see [`crate::interrupt`]) and later output to stdout is
//! dropped. A failed write to stderr is ignored. Both go through anstream, which strips
//! the colour of [`crate::style`] where it is off (not a terminal, `NO_COLOR`).

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// True once a write to stdout failed.
pub(crate) fn stdout_closed() -> bool {
    STDOUT_CLOSED.load(Ordering::Relaxed)
}

/// Writes `args` to stdout, with a newline when `newline`, and flushes.
pub(crate) fn out(args: std::fmt::Arguments<'_>, newline: bool) {
    if stdout_closed() {
        return;
    }
    let mut o = anstream::AutoStream::auto(std::io::stdout().lock());
    let r = o
        .write_fmt(args)
        .and_then(|()| if newline { o.write_all(b"\n") } else { Ok(()) })
        .and_then(|()| o.flush());
    if let Err(e) = r {
        drop(o);
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
        let what = if e.kind() == std::io::ErrorKind::BrokenPipe {
            "stdout was closed".to_string()
        } else {
            format!("cannot write to stdout ({e})")
        };
        crate::interrupt::request_stop(&what);
    }
}

/// Writes one line to stderr; errors are ignored.
pub(crate) fn err_line(args: std::fmt::Arguments<'_>) {
    let mut e = anstream::AutoStream::auto(std::io::stderr().lock());
    let _ = e
        .write_fmt(args)
        .and_then(|()| e.write_all(b"\n"))
        .and_then(|()| e.flush());
}

/// `println!` that never panics (see the module docs).
macro_rules! outln {
    () => {
        $crate::output::out(format_args!(""), true)
    };
    ($($t:tt)*) => {
        $crate::output::out(format_args!($($t)*), true)
    };
}

/// `print!` that never panics.
macro_rules! out {
    ($($t:tt)*) => {
        $crate::output::out(format_args!($($t)*), false)
    };
}

/// `eprintln!` that never panics.
macro_rules! errln {
    ($($t:tt)*) => {
        $crate::output::err_line(format_args!($($t)*))
    };
}
