//! Finding the MySQL/MariaDB programs amsu runs (`mariadbd`, `mariadb-backup`,
//! `mbstream`…): `$PATH` first, then the places packages install them outside a
//! non-root `$PATH`. One lookup for the sandbox and the physical method.

use std::path::{Path, PathBuf};

/// Where programs are looked for besides `$PATH`, in this order.
pub(crate) const EXTRA_BIN_DIRS: &[&str] = &[
    "/usr/sbin",
    "/usr/bin",
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/local/mysql/bin",
];

/// The directories searched: `$PATH`, then `EXTRA_BIN_DIRS` not already in it.
pub fn search_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    for d in EXTRA_BIN_DIRS {
        let d = PathBuf::from(d);
        if !dirs.contains(&d) {
            dirs.push(d);
        }
    }
    dirs
}

/// The first of `names` that is an executable file in one of `dirs` (every directory
/// for the first name, then the next name).
pub fn find_in(names: &[&str], dirs: &[PathBuf]) -> Option<PathBuf> {
    let paths = std::env::join_paths(dirs).ok()?;
    names
        .iter()
        .find_map(|name| which::which_in(name, Some(&paths), Path::new("/")).ok())
}

/// The first of `names` found in [`search_dirs`].
pub fn find(names: &[&str]) -> Option<PathBuf> {
    find_in(names, &search_dirs())
}

/// `dirs` as one `:`-separated list, for a message that says where was looked.
pub fn display_dirs(dirs: &[PathBuf]) -> String {
    dirs.iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn finds_executables_only_in_name_order() {
        let (ta, tb) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (a, b) = (ta.path().to_path_buf(), tb.path().to_path_buf());
        let exe = |dir: &Path, name: &str, mode: u32| {
            let p = dir.join(name);
            std::fs::write(&p, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
            p
        };
        exe(&a, "tool-old", 0o755);
        let new = exe(&b, "tool-new", 0o755);
        exe(&a, "not-exec", 0o644);
        let dirs = [a.clone(), b.clone()];
        assert_eq!(find_in(&["tool-new", "tool-old"], &dirs), Some(new));
        assert_eq!(
            find_in(&["missing", "tool-old"], &dirs),
            Some(a.join("tool-old"))
        );
        assert_eq!(find_in(&["not-exec"], &dirs), None);
        assert_eq!(
            display_dirs(&dirs),
            format!("{}:{}", a.display(), b.display())
        );
        assert!(search_dirs().contains(&PathBuf::from("/usr/sbin")));
    }
}
