//! The CLI's words for what the libraries leave neutral: which amsu flag lets amsu fix a
//! finding itself, and what to do about an error the CLI recognises.

/// What the CLI adds to a finding's fix: the flag (or variable) that lets amsu do it.
pub fn hint_for(code: &str) -> Option<&'static str> {
    match code {
        "already_replica" => Some("amsu setup --force resets it"),
        "replica_not_empty" => Some("amsu setup --force drops them"),
        "errant_gtids" => Some("--force drops the replica's data"),
        "binlog_retention" => Some("amsu setup --protect-binlogs raises it for the setup"),
        "gtid_positioning" => Some("leave out --gtid"),
        "repl_user_password" => {
            Some("export AMSU_REPL_PASSWORD, or --repl-password-file FILE, or --repl-user NAME")
        }
        "outfile_ftp" => {
            Some("--ftp URL; its password in AMSU_FTP_PASSWORD or --ftp-password-file")
        }
        "outfile_endpoint" => Some("--ftp URL"),
        "unsupported_table" => Some("--method physical"),
        "image_method" => Some("amsu backup --method physical"),
        "physical_version_mismatch" | "physical_identifier" => Some("--method logical"),
        "datadir_missing" | "datadir_mismatch" => Some("--replica-datadir DIR"),
        "master_not_local" => Some("--master-backup-command CMD, or --image DIR"),
        "same_datadir" => Some("--master and --replica"),
        "image_invalid" => Some("--image, --image-key; amsu backup takes a new one"),
        "image_other_master" => Some("amsu backup --master URL"),
        "donor_method" => Some("--method logical, or leave out --donor"),
        "donor_unreachable" => {
            Some("--donor URL; its password in AMSU_DONOR_PASSWORD or --donor-password-file")
        }
        "donor_is_master" | "donor_is_replica" | "donor_not_replica" | "donor_other_master" => {
            Some("--donor URL, or leave it out")
        }
        "donor_lagging" => Some("--donor-max-lag SECONDS"),
        "donor_no_gtid" => Some("leave out --gtid"),
        _ => None,
    }
}

/// The flag that lets amsu fix the finding `code` itself, if any.
pub fn flag_for(code: &str) -> Option<&'static str> {
    match code {
        "already_replica" | "replica_not_empty" | "errant_gtids" => Some("--force"),
        "binlog_retention" => Some("--protect-binlogs"),
        "gtid_positioning" => Some("--gtid"),
        "repl_user_password" => Some("--repl-password-file"),
        "outfile_ftp" | "outfile_endpoint" => Some("--ftp"),
        "unsupported_table" | "image_method" => Some("--method"),
        "physical_version_mismatch" | "physical_identifier" => Some("--method"),
        "datadir_missing" | "datadir_mismatch" => Some("--replica-datadir"),
        "master_not_local" => Some("--master-backup-command"),
        "image_invalid" => Some("--image"),
        "donor_lagging" => Some("--donor-max-lag"),
        "donor_method" => Some("--method"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    /// Library messages name no CLI flag and no AMSU_ environment variable: the CLI adds
    /// those (see [`super::flag_for`]). Lists the offenders that remain, so the count
    /// only goes down.
    #[test]
    fn library_messages_name_no_cli_flags() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut offenders = Vec::new();
        for krate in ["amsu-core", "amsu-mysql", "amsu-backup", "amsu-transfer"] {
            let mut stack = vec![root.join(krate).join("src")];
            while let Some(dir) = stack.pop() {
                for e in std::fs::read_dir(&dir).unwrap().flatten() {
                    let p = e.path();
                    if p.is_dir() {
                        stack.push(p);
                        continue;
                    }
                    if p.extension().is_none_or(|x| x != "rs") {
                        continue;
                    }
                    let text = std::fs::read_to_string(&p).unwrap();
                    // Unit tests may name anything.
                    let code = text.split("#[cfg(test)]").next().unwrap_or("");
                    for (i, line) in code.lines().enumerate() {
                        let t = line.trim_start();
                        if t.starts_with("//") {
                            continue;
                        }
                        for lit in string_literals(t) {
                            if names_cli(&lit) {
                                offenders.push(format!("{}:{}: {lit}", p.display(), i + 1));
                            }
                        }
                    }
                }
            }
        }
        // Known offenders in amsu-backup, not yet reworded (other branches edit those
        // files); any other fails.
        assert!(
            offenders.is_empty(),
            "library strings name a CLI flag or AMSU_ variable; say it neutrally and let the CLI name the flag (remedy.rs):\n{}",
            offenders.join("\n")
        );
    }

    fn string_literals(line: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut rest = line;
        while let Some(i) = rest.find('"') {
            let after = &rest[i + 1..];
            let mut end = None;
            let mut esc = false;
            for (j, c) in after.char_indices() {
                match c {
                    '\\' if !esc => esc = true,
                    '"' if !esc => {
                        end = Some(j);
                        break;
                    }
                    _ => esc = false,
                }
            }
            match end {
                Some(j) => {
                    out.push(after[..j].to_string());
                    rest = &after[j + 1..];
                }
                None => {
                    out.push(after.to_string());
                    break;
                }
            }
        }
        out
    }

    /// A user-facing message naming an amsu flag or variable. Server and tool options
    /// (`--datadir=`, `--defaults-file=`) are arguments, not messages: they contain `=`
    /// or stand alone.
    fn names_cli(s: &str) -> bool {
        if s.contains("AMSU_") && s.contains(' ') {
            return true;
        }
        if !s.contains(' ') {
            return false;
        }
        const FLAGS: &[&str] = &[
            "--force",
            "--yes",
            "--protect-binlogs",
            "--gtid",
            "--repl-user",
            "--repl-password-file",
            "--ftp",
            "--method",
            "--replica-datadir",
            "--master-backup-command",
            "--image",
            "--master ",
            "--replica ",
            "--dry-run",
        ];
        FLAGS.iter().any(|f| s.contains(f))
    }
}
