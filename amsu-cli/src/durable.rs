//! What a finished setup changed only at runtime: `SET GLOBAL server_id` and `read_only`
//! on the replica are lost when it restarts (replication then stops, with "equal server
//! ids" when the old id was the master's). Without `--replica-config-file`, the report
//! names them and prints the option-file lines to add. Which settings, and the lines, are
//! the library's ([`amsu_backup::SetupOutcome::runtime_only`]); this module renders them.

use amsu_backup::RuntimeOnly;

/// Says which settings are runtime-only and prints the option-file snippet that makes
/// them stick (text, or one JSON line); `tag` prefixes each line of a fan-out replica.
pub(crate) fn report_runtime_only(r: Option<&RuntimeOnly>, tag: Option<&str>, json: bool) {
    let Some(r) = r else { return };
    let snippet = match &r.option_file_snippet {
        Ok(s) => Some(s.clone()),
        Err(e) => {
            errln!(
                "{}warning: cannot read the replica's settings for its option file: {e}",
                tag.map_or(String::new(), |t| format!("[{t}] "))
            );
            None
        }
    };
    if json {
        let line = crate::json::line(&crate::json::Body::RuntimeOnly {
            settings: r.settings.iter().map(|n| n.to_string()).collect(),
            option_file_snippet: snippet,
        });
        crate::fanout_cmd::print_tagged(tag, &line, true);
        return;
    }
    let mut text = format!(
        "Runtime only: {} on the replica were set with SET GLOBAL and are lost when it restarts \
         (replication then stops). Add these lines to its option file (or rerun with \
         --replica-config-file PATH and include that file):",
        r.settings.join(" and ")
    );
    if let Some(s) = snippet {
        for line in s.lines() {
            text.push_str(&format!("\n    {line}"));
        }
    }
    crate::fanout_cmd::print_tagged(tag, &text, false);
}
