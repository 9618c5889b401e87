//! Interruptions are failures like any other: SIGINT, SIGTERM and SIGHUP (and a closed
//! stdout, see [`crate::output`]) ask the run to stop at a safe point. The setup then ends
//! through its normal failure path: it journals where it stopped, says on stderr what it
//! left behind and how to resume, and exits 1 (or 3 when it had changed nothing yet). A
//! second signal exits at once with 1; the journal still lets a rerun resume.

use std::sync::{Mutex, Once, OnceLock};

use amsu_core::CancellationToken;

struct Stop {
    token: CancellationToken,
    reason: Mutex<Option<String>>,
}

fn stop_state() -> &'static Stop {
    static STOP: OnceLock<Stop> = OnceLock::new();
    STOP.get_or_init(|| Stop {
        token: CancellationToken::new(),
        reason: Mutex::new(None),
    })
}

/// The process's stop token: cancelled by the first signal or a closed stdout.
pub(crate) fn token() -> CancellationToken {
    stop_state().token.clone()
}

/// Why the run was asked to stop, if it was.
pub(crate) fn reason() -> Option<String> {
    stop_state()
        .reason
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
}

/// Asks the run to stop (the first call wins and says so on stderr). Returns false when
/// a stop was already asked for.
pub(crate) fn request_stop(reason: &str) -> bool {
    let s = stop_state();
    {
        let mut r = s.reason.lock().unwrap_or_else(|e| e.into_inner());
        if r.is_some() {
            return false;
        }
        *r = Some(reason.to_string());
    }
    crate::output::err_line(format_args!(
        "amsu: {reason}; stopping at a safe point (a second SIGINT, SIGTERM or SIGHUP exits at once)"
    ));
    s.token.cancel();
    true
}

/// Installs the handlers of SIGINT, SIGTERM and SIGHUP (once per process; needs a tokio
/// runtime). Commands that call this stop through [`token`]; the others keep the default
/// behaviour of these signals.
pub(crate) fn install() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        use tokio::signal::unix::{signal, SignalKind};
        for (kind, name) in [
            (SignalKind::interrupt(), "SIGINT"),
            (SignalKind::terminate(), "SIGTERM"),
            (SignalKind::hangup(), "SIGHUP"),
        ] {
            let mut stream = match signal(kind) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(signal = name, error = %e, "cannot handle the signal");
                    continue;
                }
            };
            tokio::spawn(async move {
                while stream.recv().await.is_some() {
                    if !request_stop(&format!("{name} received")) {
                        crate::output::err_line(format_args!(
                            "amsu: {name} received again; exiting at once. The journal records \
                             what was done: rerun the same command to resume."
                        ));
                        std::process::exit(crate::exit::FAILED);
                    }
                }
            });
        }
    });
}

/// After a setup stopped on request: says why, and where the journal is (stderr; the
/// error says what was left behind).
/// With `json`, the error went to stdout as JSON (if at all): it is said on stderr too.
pub(crate) fn explain(e: &amsu_core::Error, journal: &std::path::Path, json: bool) {
    if !e.is_interrupted() {
        return;
    }
    if json {
        crate::output::err_line(format_args!("error: {e}"));
    }
    crate::output::err_line(format_args!(
        "amsu stopped because {}. The journal {} records where it stopped (\"stopped\": \
         \"…interrupted…\"); rerun the same command to resume.",
        reason().unwrap_or_else(|| "it was asked to".into()),
        journal.display()
    ));
}
