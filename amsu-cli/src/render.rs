//! Renders setup events: progress lines (or a bar on a terminal) on stderr, or
//! newline-delimited JSON on stdout with `--json`.

use std::io::IsTerminal;
use std::sync::Mutex;

use amsu_core::{human, Event, EventSink};
use indicatif::{ProgressBar, ProgressStyle};

/// How events are shown.
pub struct Renderer {
    json: bool,
    bar: Mutex<Option<ProgressBar>>,
    terminal: bool,
    last_progress: Mutex<std::time::Instant>,
    /// Step lines already shown, so that a step checked again (the preflight runs before
    /// the confirmation and again in the run) is shown once.
    shown: Mutex<std::collections::HashSet<String>>,
    /// The replica every line is tagged with (a fan-out's replicas).
    tag: Option<String>,
}

impl Renderer {
    /// A renderer; `json` prints events as JSON lines on stdout.
    pub fn new(json: bool) -> Self {
        Renderer {
            json,
            bar: Mutex::new(None),
            terminal: std::io::stderr().is_terminal(),
            last_progress: Mutex::new(std::time::Instant::now()),
            shown: Mutex::new(Default::default()),
            tag: None,
        }
    }

    /// A renderer whose lines are tagged with `tag` (`[tag] …`, or `"replica": tag` in
    /// JSON) and without a progress bar: one of several replicas of a fan-out.
    pub fn tagged(json: bool, tag: String) -> Self {
        Renderer {
            terminal: false,
            tag: Some(tag),
            ..Renderer::new(json)
        }
    }

    /// True the first time `key` is seen.
    fn first(&self, key: String) -> bool {
        self.shown.lock().expect("shown lock").insert(key)
    }

    fn line(&self, s: &str) {
        if let Some(t) = &self.tag {
            errln!("[{t}] {s}");
            return;
        }
        let bar = self.bar.lock().expect("bar lock");
        match bar.as_ref() {
            Some(b) => b.println(s),
            None => errln!("{s}"),
        }
    }

    /// Clears the progress bar.
    pub fn finish(&self) {
        if let Some(b) = self.bar.lock().expect("bar lock").take() {
            b.finish_and_clear();
        }
    }
}

impl EventSink for Renderer {
    fn emit(&self, event: &Event) {
        if self.json {
            // A closed stdout asks the run to stop (see `output`).
            crate::json::emit_tagged_event(event, self.tag.as_deref());
            return;
        }
        match event {
            Event::StepStarted { step } => {
                if self.first(format!("start {step}")) {
                    self.line(&format!("» {}: {}", step, step.describe()))
                }
            }
            Event::StepFinished { step, millis } => {
                if *step == amsu_core::Step::CopyData {
                    self.finish();
                }
                if self.first(format!("done {step}")) {
                    self.line(&format!("  ✓ {step} ({millis} ms)"))
                }
            }
            Event::StepSkipped { step, reason } => self.line(&format!("  – {step}: {reason}")),
            Event::Changed { server, what } => self.line(&format!("  changed on {server}: {what}")),
            Event::Warning { server, message } => match server {
                Some(s) => self.line(&format!(
                    "  {} {message}",
                    crate::style::warning_on(&s.to_string())
                )),
                None => self.line(&format!("  {} {message}", crate::style::warning_label())),
            },
            Event::CommitBlocked { millis } => {
                self.line(&format!("  master commits blocked for {millis:.1} ms"))
            }
            Event::CatalogReading { server, purpose } => {
                self.line(&format!("  reading the {server}'s catalog for {purpose} …"))
            }
            Event::CatalogRead {
                server,
                databases,
                tables,
                millis,
            } => self.line(&format!(
                "  {server}: {tables} tables in {databases} databases ({millis} ms)"
            )),
            Event::Snapshot { coordinates } => self.line(&format!("  snapshot at {coordinates}")),
            Event::Replication { seconds_behind } => self.line(&format!(
                "  replication running, {} s behind",
                seconds_behind.map_or("?".into(), |s| s.to_string())
            )),
            Event::Progress {
                tables_done,
                tables_total,
                rows,
                bytes,
                bytes_per_sec,
                percent,
                eta_secs,
                ..
            } => {
                let rate = format!("{}/s", human::bytes(*bytes_per_sec as u64));
                let eta = match (percent, eta_secs) {
                    (Some(p), Some(s)) => format!(", {p:.0} %, about {} left", human::secs(*s)),
                    _ => String::new(),
                };
                if self.terminal {
                    let mut bar = self.bar.lock().expect("bar lock");
                    let b = bar.get_or_insert_with(|| {
                        let b = ProgressBar::new(*tables_total);
                        b.set_style(
                            ProgressStyle::with_template(
                                "  [{bar:30}] {pos}/{len} tables {msg} ({elapsed})",
                            )
                            .expect("valid template")
                            .progress_chars("=> "),
                        );
                        b
                    });
                    b.set_position(*tables_done);
                    b.set_message(format!(
                        "{rows} rows, {}, {rate}{eta}",
                        human::bytes(*bytes)
                    ));
                } else {
                    let mut last = self.last_progress.lock().expect("progress lock");
                    if last.elapsed().as_secs() >= 2 || tables_done == tables_total {
                        *last = std::time::Instant::now();
                        self.line(&format!(
                            "  copied {tables_done}/{tables_total} tables, {rows} rows, {}, {rate}{eta}",
                            human::bytes(*bytes)
                        ));
                    }
                }
            }
            other => self.line(&format!("  {other:?}")),
        }
    }
}
