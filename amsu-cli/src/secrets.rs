//! Where passwords come from: a `--…-password-file`, else an environment variable, else
//! the URL. They are wrapped in `Secret` at once and never printed.

use std::path::Path;

use amsu_core::{Secret, ServerAddr};
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

/// Parses a server URL and fills in its password from the file flag or environment
/// (these win over a password in the URL, which shows in `ps`).
pub fn server(url: &str, file: Option<&Path>, env_var: &str, what: &str) -> Result<ServerAddr> {
    let mut addr: ServerAddr = url
        .parse()
        .with_context(|| format!("--{what} is not a valid server URL"))?;
    if let Some(p) = password(file, env_var)? {
        addr.password = Some(p);
    }
    Ok(addr)
}
