//! Reading facts: what the servers, the tool, the image and the file system say.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use amsu_core::manifest::{Manifest, MANIFEST_FILE};
use amsu_core::{is_local_host, BoxError, Coordinates, CopyReport, Finding, Transport, Version};
use amsu_mysql::conn::Session;
use amsu_mysql::{quote, MysqlError, SYSTEM_DATABASES};

use super::copy::tempdir_in;
use super::process::find_program;
use super::swap::sibling;
use super::{findings, parse, PhysicalCopy, PhysicalSource, ReplicaVars, Resolved, BACKUP_TOOLS};

impl PhysicalCopy {
    /// Every read-only check, and what they resolved when none blocks: reads the facts,
    /// the decisions are [`findings`]'.
    pub(super) async fn check_all(&self) -> Result<(Vec<Finding>, Option<Resolved>), BoxError> {
        let mut f = Vec::new();
        let tool = match &self.opts.tool {
            Some(t) => Some(t.clone()),
            None => find_program(BACKUP_TOOLS).ok(),
        };
        let Some(tool) = tool else {
            f.push(findings::tool_missing());
            return Ok((f, None));
        };
        let tool_version = tool_version(&tool).await;

        let mut m = Session::open(&self.master).await?;
        let master_version = m
            .column("SELECT @@version", "reading the master's version")
            .await?
            .join("");
        let master_datadir = m
            .column("SELECT @@datadir", "reading the master's datadir")
            .await?
            .join("");
        let mut r = Session::open(&self.replica).await?;
        let replica_version = r
            .column("SELECT @@version", "reading the replica's version")
            .await?
            .join("");
        let replica_datadir = PathBuf::from(
            r.column("SELECT @@datadir", "reading the replica's datadir")
                .await?
                .join(""),
        );

        // The version of the data: the image's source, or the master.
        let (source_version, estimate) = match &self.source {
            PhysicalSource::Image { transport, dir } => {
                let manifest = read_remote_manifest(&**transport, dir).await?;
                let bytes: u64 = manifest.files.iter().map(|f| f.size).sum();
                f.extend(findings::image_method(&manifest.method));
                (manifest.source.version, bytes)
            }
            _ => (master_version.clone(), master_size_estimate(&mut m).await?),
        };
        f.extend(findings::versions(
            &tool,
            tool_version,
            &source_version,
            &replica_version,
        ));

        if !matches!(self.source, PhysicalSource::Image { .. }) {
            f.extend(findings::backticks(&backtick_names(&mut m).await?));
        }

        let datadir = match &self.opts.datadir {
            Some(d) => d.clone(),
            None => replica_datadir.clone(),
        };
        let canon = |p: &Path| std::fs::canonicalize(p).ok();
        let datadir = match canon(&datadir) {
            Some(d) => d,
            None => {
                f.push(findings::datadir_missing(&datadir));
                return Ok((f, None));
            }
        };
        f.extend(findings::datadir_mismatch(
            &replica_datadir,
            canon(&replica_datadir).as_deref(),
            &datadir,
        ));
        if let PhysicalSource::Local = self.source {
            f.extend(findings::local_master(
                &self.master.host,
                is_local_host(&self.master.host),
                canon(Path::new(&master_datadir)).as_deref(),
                &datadir,
            ));
        }
        let work_dir = match &self.opts.work_dir {
            Some(w) => w.clone(),
            None => sibling(&datadir, "amsu-work"),
        };
        f.extend(findings::free_space(
            &work_dir,
            free_space(&work_dir),
            estimate,
        ));
        // After the copy the replica has the master's accounts.
        let after = self
            .master
            .clone()
            .user(self.replica.user.clone())
            .password(self.replica.password.clone());
        if let Err(e) = Session::open(&after).await {
            if e.is_access_denied() {
                f.push(findings::replica_login_after_copy(&self.replica.user));
            }
        }
        let resolved = findings::resolve(&f, tool, datadir, work_dir);
        Ok((f, resolved))
    }
    pub(super) async fn replica_vars(&self) -> Result<ReplicaVars, MysqlError> {
        let mut s = Session::open(&self.replica).await?;
        let row = s
            .column(
                "SELECT CONCAT(@@global.server_id, ' ', @@global.read_only)",
                "reading the replica's server_id and read_only",
            )
            .await?
            .join("");
        let mut it = row.split_whitespace();
        let server_id = it.next().and_then(|v| v.parse().ok()).unwrap_or(0);
        // `ON`/`OFF` (a boolean in 10.x, an enum with more values in 11.x): set back as read.
        let read_only = it
            .next()
            .filter(|v| v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or("OFF")
            .to_string();
        Ok(ReplicaVars {
            server_id,
            read_only,
        })
    }

    pub(super) async fn count(&self, coordinates: &Coordinates) -> Result<CopyReport, MysqlError> {
        let mut s = Session::open(&self.replica).await?;
        let system = SYSTEM_DATABASES
            .iter()
            .map(|d| quote::string(d))
            .collect::<Vec<_>>()
            .join(",");
        let n = |v: Vec<String>| v.first().and_then(|x| x.parse().ok()).unwrap_or(0u64);
        let databases = n(s
            .column(
                &format!("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME NOT IN ({system})"),
                "counting databases",
            )
            .await?);
        let tables = n(s
            .column(
                &format!("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA NOT IN ({system})"),
                "counting tables",
            )
            .await?);
        let objects = n(s
            .column(
                &format!(
                    "SELECT (SELECT COUNT(*) FROM information_schema.VIEWS WHERE TABLE_SCHEMA NOT IN ({system})) \
                     + (SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA NOT IN ({system})) \
                     + (SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA NOT IN ({system})) \
                     + (SELECT COUNT(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA NOT IN ({system}))"
                ),
                "counting objects",
            )
            .await?);
        let accounts = n(s
            .column("SELECT COUNT(*) FROM mysql.user", "counting accounts")
            .await?);
        Ok(CopyReport::new(coordinates.clone()).with_catalog(databases, tables, accounts, objects))
    }
}

/// Databases and tables whose names hold a backtick (at most 20), which mariadb-backup
/// cannot lock ([`findings::backticks`]).
async fn backtick_names(m: &mut Session) -> Result<Vec<String>, MysqlError> {
    m.column(
        "SELECT CONCAT(TABLE_SCHEMA, '.', TABLE_NAME) FROM information_schema.TABLES \
         WHERE LOCATE('`', TABLE_SCHEMA) > 0 OR LOCATE('`', TABLE_NAME) > 0 \
         UNION SELECT SCHEMA_NAME FROM information_schema.SCHEMATA \
         WHERE LOCATE('`', SCHEMA_NAME) > 0 ORDER BY 1 LIMIT 20",
        "looking for names mariadb-backup cannot lock",
    )
    .await
}

pub(super) async fn read_remote_manifest(
    transport: &dyn Transport,
    dir: &str,
) -> Result<Manifest, BoxError> {
    let tmp = tempdir_in(&std::env::temp_dir())?;
    let local = tmp.path().join(MANIFEST_FILE);
    let remote = if dir.is_empty() {
        MANIFEST_FILE.to_string()
    } else {
        format!("{}/{MANIFEST_FILE}", dir.trim_end_matches('/'))
    };
    let r = transport.fetch(&remote, 0, &local).await;
    let text = r.and_then(|_| Ok(std::fs::read_to_string(&local)?));
    drop(tmp);
    let text = text.map_err(|e| format!("cannot read the image's {remote}: {e}"))?;
    Ok(Manifest::from_json(&text)?)
}

/// A rough size of the master's data: tables and indexes, plus the redo log.
pub(super) async fn master_size_estimate(s: &mut Session) -> Result<u64, MysqlError> {
    let v = s
        .column(
            "SELECT COALESCE(SUM(DATA_LENGTH + INDEX_LENGTH), 0) + @@innodb_log_file_size FROM information_schema.TABLES",
            "estimating the size of the master's data",
        )
        .await?;
    Ok(v.first().and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0) as u64)
}

pub(super) async fn tool_version(tool: &Path) -> Option<Version> {
    let out = tokio::process::Command::new(tool)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .await
        .ok()?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    parse::tool_version(&text)
}

/// Free bytes on the file system holding `path` (or its nearest existing ancestor).
pub(super) fn free_space(path: &Path) -> io::Result<u64> {
    let mut p = path;
    while !p.exists() {
        p = p.parent().unwrap_or(Path::new("/"));
    }
    let st = nix::sys::statvfs::statvfs(p).map_err(io::Error::from)?;
    Ok(st.blocks_available() as u64 * st.fragment_size() as u64)
}
