//! Where credentials come from: a `--…-password-file`, else an environment variable, else
//! the URL, else a MySQL option file (`--defaults-file` or `~/.my.cnf`), else a prompt.
//! Passwords are wrapped in `Secret` at once and never printed; what is remembered is
//! only where each came from, for the message of a refused login.

use std::io::IsTerminal;
use std::path::Path;

use amsu_core::{Secret, ServerAddr};
use amsu_mysql::option_file::OptionFile;
use anyhow::{Context, Result};

/// Reads a password file (first line, without the line ending).
pub fn read_password_file(path: &Path) -> Result<Secret> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the password file {}", path.display()))?;
    Ok(Secret::new(
        text.lines().next().unwrap_or_default().to_string(),
    ))
}

/// The password from a file flag, else from `env_var`, else `None`.
pub fn password(file: Option<&Path>, env_var: &str) -> Result<Option<Secret>> {
    if let Some(f) = file {
        return read_password_file(f).map(Some);
    }
    Ok(std::env::var(env_var).ok().map(Secret::new))
}

/// Where else credentials may come from.
#[derive(Debug, Clone, Default)]
pub struct Fallbacks<'a> {
    /// A MySQL option file (`--defaults-file`): read instead of `~/.my.cnf`.
    pub defaults_file: Option<&'a Path>,
    /// Prompt on a terminal.
    pub ask: bool,
}

/// Where each server's password came from (or which sources were tried), by the server as
/// shown in messages: for the remedy of an "Access denied".
static ORIGINS: std::sync::Mutex<Vec<(String, String)>> = std::sync::Mutex::new(Vec::new());

fn record(addr: &ServerAddr, origin: String) {
    if let Ok(mut o) = ORIGINS.lock() {
        o.retain(|(a, _)| a != &addr.to_string());
        o.push((addr.to_string(), origin));
    }
}

/// What to say about an error `message`: when a server refused a login, where the
/// password came from, or which sources were tried when there was none.
pub fn remedy(message: &str) -> Option<String> {
    if !message.contains("Access denied for user") {
        return None;
    }
    let origins = ORIGINS.lock().ok()?;
    let said: Vec<String> = origins
        .iter()
        .filter(|(addr, _)| message.contains(addr.as_str()))
        .map(|(addr, origin)| format!("{addr}: {origin}"))
        .collect();
    (!said.is_empty()).then(|| said.join("; "))
}

/// The option files read when `--defaults-file` is not given: `~/.my.cnf` (as the MySQL
/// clients do).
fn default_option_files() -> Vec<std::path::PathBuf> {
    std::env::var_os("HOME")
        .map(|h| vec![Path::new(&h).join(".my.cnf")])
        .unwrap_or_default()
}

/// Parses a server URL and fills in its credentials as the MySQL clients do. The
/// password: the file flag, else the environment (these win over a password in the URL,
/// which shows in `ps`), else the URL, else the option file (`--defaults-file`, or
/// `~/.my.cnf`: `[amsu-WHAT]` over `[client]`), else a prompt with `--ask-pass` (which
/// fails without a terminal). `user`, `port` and `socket` from the option file apply
/// where the URL does not give them.
pub fn server(
    url: &str,
    file: Option<&Path>,
    env_var: &str,
    what: &str,
    fallbacks: &Fallbacks<'_>,
) -> Result<ServerAddr> {
    let mut addr: ServerAddr = url
        .parse()
        .with_context(|| format!("--{what} is not a valid server URL"))?;
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let url_has_user = authority.contains('@');
    let hostport = authority.rsplit('@').next().unwrap_or_default();
    let url_has_port = hostport
        .rsplit_once(':')
        .is_some_and(|(h, _)| !h.ends_with('['))
        && !hostport.ends_with(']');
    let url_password = addr.password.is_some();
    let mut tried = vec![
        match file {
            Some(f) => format!("--{what}-password-file {}", f.display()),
            None => format!("--{what}-password-file (not given)"),
        },
        format!("{env_var} (not in amsu's environment: a shell variable must be exported)"),
        "the URL (no :PASSWORD)".to_string(),
    ];
    let mut origin = None;
    if let Some(p) = password(file, env_var)? {
        origin = Some(match file {
            Some(f) => format!("the password came from {}", f.display()),
            None => format!("the password came from {env_var}"),
        });
        addr.password = Some(p);
    } else if url_password {
        origin = Some("the password came from the URL".to_string());
    }
    let files: Vec<std::path::PathBuf> = match fallbacks.defaults_file {
        Some(f) => vec![f.to_path_buf()],
        None => default_option_files(),
    };
    let section = format!("amsu-{what}");
    for path in &files {
        let explicit = fallbacks.defaults_file.is_some();
        if !explicit && !path.exists() {
            tried.push(format!("{} (no such file)", path.display()));
            continue;
        }
        let opts = option_file(path)?;
        let get = |key: &str| {
            [section.as_str(), "client"]
                .into_iter()
                .find_map(|s| opts.get(s, key).map(|v| (s.to_string(), v.to_string())))
        };
        if !url_has_user {
            if let Some((_, u)) = get("user") {
                addr.user = u;
            }
        }
        if !url_has_port {
            if let Some(p) = get("port").and_then(|(_, p)| p.parse().ok()) {
                addr.port = p;
            }
        }
        if addr.socket.is_none() && (addr.host == "localhost") {
            addr.socket = get("socket").map(|(_, s)| s);
        }
        if addr.password.is_none() {
            match get("password") {
                Some((s, p)) => {
                    origin = Some(format!(
                        "the password came from [{s}] in {}",
                        path.display()
                    ));
                    addr.password = Some(Secret::new(p));
                }
                None => tried.push(format!(
                    "{} (no password under [{section}] or [client])",
                    path.display()
                )),
            }
        }
    }
    if addr.password.is_none() && fallbacks.ask {
        if !std::io::stdin().is_terminal() {
            anyhow::bail!(
                "--ask-pass needs a terminal to ask for the {what}'s password, and stdin is not one; give it with {env_var} (exported) or --{what}-password-file FILE"
            );
        }
        let p = rpassword::prompt_password(format!("Password for {addr}: "))
            .context("cannot read the password from the terminal")?;
        addr.password = Some(Secret::new(p));
        origin = Some("the password was typed at the prompt".into());
    }
    record(
        &addr,
        origin.unwrap_or_else(|| {
            format!(
                "no password was given; tried {}, and --ask-pass was not given",
                tried.join(", ")
            )
        }),
    );
    Ok(addr)
}

/// Reads a MySQL option file with the one option-file reader
/// ([`amsu_mysql::option_file`]).
pub fn option_file(path: &Path) -> Result<OptionFile> {
    OptionFile::read(path)
        .with_context(|| format!("cannot read the option file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_file_password_fills_in_and_section_wins() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let f = dir.join("my.cnf");
        std::fs::write(
            &f,
            "[client]\npassword=client-pw\n[amsu-replica]\npassword=replica-pw\n",
        )
        .unwrap();
        let fb = Fallbacks {
            defaults_file: Some(&f),
            ask: false,
        };
        let m = server("mysql://root@h", None, "AMSU_TEST_UNSET_VAR", "master", &fb).unwrap();
        let r = server(
            "mysql://root@h",
            None,
            "AMSU_TEST_UNSET_VAR",
            "replica",
            &fb,
        )
        .unwrap();
        assert_eq!(m.password.unwrap().expose(), "client-pw");
        assert_eq!(r.password.unwrap().expose(), "replica-pw");
    }
}
