//! The replication user's password, kept where the next setup of the same master finds
//! it: `~/.amsu/repl/MASTERHOST_PORT.cnf` (`$AMSU_HOME/repl/…` when set), an option file
//! with `[client]` `user` and `password`, mode 0600. amsu writes it when it generated the
//! password (and the master accepts it); `amsu setup` and `amsu restore
//! --start-replication` read it when no password is given with `AMSU_REPL_PASSWORD` or
//! `--repl-password-file`. `--repl-password-file FILE` naming a file that does not exist
//! asks amsu to write the password there too.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use amsu_backup::{ReplUser, ReplUserError};
use amsu_core::{LoginCheck, MasterServer, Secret, ServerAddr};
use amsu_mysql::option_file;
use anyhow::{anyhow, Context, Result};

use crate::secrets;

/// `$AMSU_HOME`, else `~/.amsu`.
pub(crate) fn amsu_home() -> PathBuf {
    std::env::var_os("AMSU_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".amsu")))
        .unwrap_or_else(|| std::env::temp_dir().join("amsu"))
}

/// Where the replication password for replicas of `master` is kept.
pub(crate) fn saved_path(master: &ServerAddr) -> PathBuf {
    let name: String = format!("{}_{}", master.host, master.port)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    amsu_home().join("repl").join(format!("{name}.cnf"))
}

/// Where the password came from, and where it goes once the master accepts it.
pub(crate) struct ReplPassword {
    /// The replication user.
    pub user: String,
    /// A password to log in with (given, or saved by an earlier run).
    pub given: Option<Secret>,
    /// A generated password for a user this run creates.
    pub generated: Option<Secret>,
    /// The saved file `given` was read from.
    pub from_saved: Option<PathBuf>,
    /// The saved option file to write once the generated password works.
    pub save_to: Option<PathBuf>,
    /// A `--repl-password-file` that did not exist: the password is written there (one
    /// line) once it works.
    pub write_password_file: Option<PathBuf>,
}

impl ReplPassword {
    /// The password this run ends up using.
    pub(crate) fn password(&self) -> Option<&Secret> {
        self.given.as_ref().or(self.generated.as_ref())
    }
}

/// Finds the replication password: `--repl-password-file` (when it exists), else
/// `AMSU_REPL_PASSWORD`, else the file saved for `master` (when it names `user`), else a
/// new generated one.
pub(crate) fn resolve(
    file: Option<&Path>,
    master: &ServerAddr,
    user: &str,
) -> Result<ReplPassword> {
    let mut r = ReplPassword {
        user: user.to_string(),
        given: None,
        generated: None,
        from_saved: None,
        save_to: None,
        write_password_file: None,
    };
    match file {
        Some(f) if f.exists() => {
            r.given = Some(secrets::read_password_file(f)?);
            return Ok(r);
        }
        Some(f) => r.write_password_file = Some(f.to_path_buf()),
        None => {}
    }
    if let Ok(p) = std::env::var("AMSU_REPL_PASSWORD") {
        r.given = Some(Secret::new(p));
        return Ok(r);
    }
    let saved = saved_path(master);
    if saved.exists() {
        let opts = secrets::option_file(&saved)?;
        let get = |key: &str| opts.get("client", key).map(str::to_string);
        if get("user").as_deref() == Some(user) {
            if let Some(p) = get("password") {
                r.given = Some(Secret::new(p));
                r.from_saved = Some(saved);
                return Ok(r);
            }
        }
    }
    r.generated = Some(Secret::generate());
    r.save_to = Some(saved);
    Ok(r)
}

/// Writes `text` to `path` with mode 0600 (its directory 0700), replacing it atomically.
fn write_private(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let tmp = path.with_extension("amsu-tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot create {}", tmp.display()))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))
}

/// The option file kept for replicas of `master`.
fn option_file_text(master: &ServerAddr, user: &str, password: &Secret) -> String {
    format!(
        "# Written by amsu: the replication user of the master {}:{}, whose password amsu\n\
         # generated. Later `amsu setup`s of replicas of this master read it.\n\
         [client]\nuser = {}\npassword = {}\n",
        master.host,
        master.port,
        option_file::value(user),
        option_file::value(password.expose()),
    )
}

/// After a run: when the password is to be kept and the master accepts it for the user,
/// writes it to every file in `save_to`. Returns the files written.
pub(crate) async fn save_if_live(
    r: &ReplPassword,
    master: &ServerAddr,
    checker: &dyn MasterServer,
) -> Result<Vec<PathBuf>> {
    let Some(pw) = r.password() else {
        return Ok(vec![]);
    };
    if r.save_to.is_none() && r.write_password_file.is_none() {
        return Ok(vec![]);
    }
    let live = checker
        .check_login(&r.user, pw)
        .await
        .map_err(|e| anyhow!("logging in as the replication user '{}': {e}", r.user))?;
    if live != LoginCheck::Ok {
        return Ok(vec![]);
    }
    let mut written = Vec::new();
    if let Some(path) = &r.save_to {
        write_private(path, &option_file_text(master, &r.user, pw))?;
        written.push(path.clone());
    }
    if let Some(path) = &r.write_password_file {
        write_private(path, &format!("{}\n", pw.expose()))?;
        written.push(path.clone());
    }
    Ok(written)
}

/// [`save_if_live`], then says where the password went (or why it could not be kept).
pub(crate) async fn save_and_say(
    r: &ReplPassword,
    master: &ServerAddr,
    checker: &dyn MasterServer,
    json: bool,
) {
    match save_if_live(r, master, checker).await {
        Ok(written) if written.is_empty() => {}
        Ok(written) => {
            let paths: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
            if json {
                crate::json::emit(crate::json::Body::ReplPasswordSaved { paths });
            } else {
                errln!(
                    "The password of the replication user '{}' is kept in {} (mode 0600): later setups of replicas of this master use it.",
                    r.user,
                    paths.join(" and ")
                );
            }
        }
        Err(e) => errln!(
            "warning: the replication user's password could not be kept ({e:#}); a later setup of this master needs AMSU_REPL_PASSWORD or --repl-user"
        ),
    }
}

/// The replication user `amsu restore --start-replication` replicates as, decided before
/// anything changes.
pub(crate) struct RestoreUser {
    /// Where the password came from and goes.
    pub password: ReplPassword,
    /// The user does not exist yet: create it (`'user'@'%'`, REPLICATION SLAVE only).
    pub create: bool,
}

/// Checks the replication user on the master (through `m`, the master URL's user) with
/// the password found ([`resolve`]): a working password is used, a missing user is to be
/// created, an existing user without a working password is refused (nothing changed) —
/// the library's [`amsu_backup::check_repl_user`]; this adds where the password comes
/// from and the flags that give it.
pub(crate) async fn check_restore_user(
    master: &ServerAddr,
    m: &dyn MasterServer,
    user: &str,
    file: Option<&Path>,
) -> Result<RestoreUser, (bool, anyhow::Error)> {
    let password = resolve(file, master, user).map_err(|e| (false, e))?;
    match amsu_backup::check_repl_user(m, user, password.given.as_ref()).await {
        Ok(found) => Ok(RestoreUser {
            password,
            create: found == ReplUser::Missing,
        }),
        Err(ReplUserError::Check(e)) => Err((true, anyhow!("{master}: {e}"))),
        Err(e) => Err((
            true,
            anyhow!(
                "{e}; nothing was changed. Give its password \
                 with AMSU_REPL_PASSWORD or --repl-password-file (amsu keeps the passwords it \
                 generates in {}), or choose another user with --repl-user; do not drop \
                 '{user}': replicas that replicate as it would stop",
                amsu_home().join("repl").display()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_saved_file_is_private_and_reads_back() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let path = dir.join("repl/db1_3306.cnf");
        let master: ServerAddr = "mysql://root@db1:3306".parse().unwrap();
        let pw = Secret::new(r#"we"ird\pw"#);
        write_private(&path, &option_file_text(&master, "amsu_repl", &pw)).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let o = secrets::option_file(&path).unwrap();
        assert_eq!(o.get("client", "user"), Some("amsu_repl"));
        assert_eq!(o.get("client", "password"), Some(r#"we"ird\pw"#));
    }

    #[test]
    fn saved_paths_name_the_master() {
        let master: ServerAddr = "mysql://root@db1.example:3307".parse().unwrap();
        assert!(saved_path(&master).ends_with("repl/db1.example_3307.cnf"));
    }
}
