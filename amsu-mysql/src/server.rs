//! [`MysqlMaster`] and [`MysqlReplica`]: core's server traits over real connections.

use std::time::Duration;
use tokio::time::Instant;

use std::collections::HashMap;
use std::sync::Arc;

use amsu_core::{
    BoxError, Coordinates, LockOutcome, LoginCheck, MasterServer, ReplicaServer, ReplicationSource,
    ReplicationStatus, ReplicationTls, Secret, ServerAddr, ServerIdentity, ServerInfo,
};
use async_trait::async_trait;

use crate::conn::{field, Session};
use crate::dialect::{
    parse_binlog_status, parse_replica_status, parse_version, Dialect, WaitOutcome,
};
use crate::{quote, MysqlError, SqlSession};

/// Databases that belong to the server itself; never copied, never "user data".
pub const SYSTEM_DATABASES: &[&str] = &["mysql", "information_schema", "performance_schema", "sys"];

/// Reads flavor, version, server_id and binary-log settings.
pub async fn probe<S: SqlSession + ?Sized>(s: &mut S) -> Result<ServerInfo, MysqlError> {
    let what = "reading server variables";
    let row = s
        .first_row(
            "SELECT @@version AS version, @@global.server_id AS server_id, \
             @@global.log_bin AS log_bin, @@global.binlog_format AS binlog_format, \
             @@global.read_only AS read_only",
            what,
        )
        .await?
        .ok_or_else(|| s.unexpected(what, "no row".into()))?;
    let version_string = field(&row, "version").unwrap_or_default().to_string();
    let (flavor, version) =
        parse_version(&version_string).map_err(|e| s.unexpected(what, e.to_string()))?;
    let num = |name: &str| -> Result<u64, MysqlError> {
        field(&row, name)
            .unwrap_or("0")
            .parse()
            .map_err(|_| s.unexpected(what, format!("{name} is not a number")))
    };
    Ok(ServerInfo::new(flavor, version, version_string)
        .with_server_id(num("server_id")? as u32)
        .with_log_bin(num("log_bin")? != 0)
        .with_binlog_format(field(&row, "binlog_format").unwrap_or_default())
        .with_read_only(num("read_only")? != 0))
}

/// The dialect of a connected server (read once per session: see
/// [`SqlSession::dialect`]).
pub async fn dialect<S: SqlSession + ?Sized>(s: &mut S) -> Result<Dialect, MysqlError> {
    s.dialect().await
}

/// The master side of a setup over a real connection.
#[derive(Debug, Clone)]
pub struct MysqlMaster {
    addr: ServerAddr,
    admin: Option<ServerAddr>,
}

impl MysqlMaster {
    /// A master reached at `addr` (its user needs the privileges of the steps it runs).
    pub fn new(addr: ServerAddr) -> Self {
        MysqlMaster { addr, admin: None }
    }

    /// Uses `admin` (same host, another user) for the changes: creating the replication
    /// user and setting `server_id`.
    pub fn with_admin(mut self, admin: ServerAddr) -> Self {
        self.admin = Some(admin);
        self
    }

    // Every statement amsu runs on the master is bounded in time.
    async fn session(&self) -> Result<Session, MysqlError> {
        Session::open_bounded(&self.addr).await
    }

    async fn admin_session(&self) -> Result<Session, MysqlError> {
        Session::open_bounded(self.admin.as_ref().unwrap_or(&self.addr)).await
    }
}

#[async_trait]
impl MasterServer for MysqlMaster {
    async fn probe(&self) -> Result<ServerInfo, BoxError> {
        Ok(probe(&mut self.session().await?).await?)
    }

    async fn check_login(&self, user: &str, password: &Secret) -> Result<LoginCheck, BoxError> {
        let addr = self
            .addr
            .clone()
            .user(user)
            .password(Some(password.clone()));
        match Session::open(&addr).await {
            Ok(s) => {
                let _ = s.conn.disconnect().await;
                Ok(LoginCheck::Ok)
            }
            Err(e) if e.is_access_denied() => Ok(LoginCheck::Denied),
            Err(e) => Err(e.into()),
        }
    }

    async fn user_exists(&self, user: &str) -> Result<bool, BoxError> {
        let mut s = self.admin_session().await?;
        let n = s
            .column(
                &format!(
                    "SELECT COUNT(*) FROM mysql.user WHERE User = {}",
                    quote::string(user)
                ),
                "looking up the replication user in mysql.user",
            )
            .await?;
        Ok(n.first().map(|v| v != "0").unwrap_or(false))
    }

    async fn create_replication_user(
        &self,
        user: &str,
        host: &str,
        password: &Secret,
    ) -> Result<(), BoxError> {
        let mut s = self.admin_session().await?;
        let account = quote::account(user, host);
        s.exec(
            &format!(
                "CREATE USER {account} IDENTIFIED BY {}",
                quote::string(password.expose())
            ),
            &format!("CREATE USER {account}"),
        )
        .await?;
        if let Err(e) = s
            .exec(
                &format!("GRANT REPLICATION SLAVE ON *.* TO {account}"),
                &format!("GRANT REPLICATION SLAVE ON *.* TO {account}"),
            )
            .await
        {
            // Leave the master as it was.
            let _ = s
                .exec(
                    &format!("DROP USER {account}"),
                    "dropping the half-created user",
                )
                .await;
            return Err(e.into());
        }
        Ok(())
    }

    async fn set_replication_password(
        &self,
        user: &str,
        host: &str,
        password: &Secret,
    ) -> Result<(), BoxError> {
        let mut s = self.admin_session().await?;
        let account = quote::account(user, host);
        s.exec(
            &format!(
                "ALTER USER {account} IDENTIFIED BY {}",
                quote::string(password.expose())
            ),
            &format!("ALTER USER {account} IDENTIFIED BY '***'"),
        )
        .await?;
        Ok(())
    }

    async fn drop_replication_user(&self, user: &str, host: &str) -> Result<(), BoxError> {
        let mut s = self.admin_session().await?;
        let sql = format!("DROP USER IF EXISTS {}", quote::account(user, host));
        s.exec(&sql, &sql).await?;
        Ok(())
    }

    async fn set_server_id(&self, id: u32) -> Result<(), BoxError> {
        let mut s = self.admin_session().await?;
        s.exec(
            &format!("SET GLOBAL server_id = {id}"),
            &format!("SET GLOBAL server_id = {id}"),
        )
        .await?;
        Ok(())
    }

    async fn set_globals(&self, pairs: &[(String, String)]) -> Result<(), BoxError> {
        if pairs.is_empty() {
            return Ok(());
        }
        set_globals(&mut self.admin_session().await?, pairs).await
    }

    async fn binlog_position(&self) -> Result<Coordinates, BoxError> {
        let mut s = self.session().await?;
        Ok(binlog_position(&mut s).await?)
    }

    async fn identity(&self) -> Result<ServerIdentity, BoxError> {
        Ok(identity(&mut self.session().await?).await?)
    }

    async fn lock_in_use(&self, name: &str) -> Result<bool, BoxError> {
        let mut s = self.session().await?;
        let v = s
            .column(
                &format!("SELECT IS_USED_LOCK({})", quote::string(name)),
                "looking for the identity token",
            )
            .await?;
        Ok(v.first().is_some_and(|v| !v.is_empty()))
    }
}

/// What identifies a connected server: `@@hostname`, `@@port`, `@@datadir`,
/// `@@server_id`, `@@server_uuid` (MySQL), the binary log state and the `server_id`s of
/// its connected replicas (when readable). Reads only.
pub async fn identity<S: SqlSession + ?Sized>(s: &mut S) -> Result<ServerIdentity, MysqlError> {
    let d = dialect(s).await?;
    let what = "reading the server's identity";
    let row = s
        .first_row(
            "SELECT @@hostname AS hostname, @@port AS port, @@datadir AS datadir, \
             @@global.server_id AS server_id",
            what,
        )
        .await?
        .ok_or_else(|| s.unexpected(what, "no row".into()))?;
    let get = |n: &str| field(&row, n).unwrap_or_default().to_string();
    let uuid = match d.flavor {
        amsu_core::Flavor::MySql => s
            .column("SELECT @@server_uuid", what)
            .await
            .ok()
            .and_then(|v| v.into_iter().next()),
        amsu_core::Flavor::MariaDb => None,
    };
    let binlog = match d.flavor {
        amsu_core::Flavor::MariaDb => s
            .column("SELECT @@global.gtid_binlog_state", what)
            .await
            .ok()
            .and_then(|v| v.into_iter().next()),
        amsu_core::Flavor::MySql => None,
    };
    let binlog = match binlog_position(s).await {
        Ok(c) => Some(format!(
            "{}:{} {}",
            c.file,
            c.position,
            binlog.unwrap_or_default()
        )),
        Err(_) => binlog,
    };
    // Needs REPLICATION MASTER ADMIN (or the like); unreadable means "none known".
    let replica_ids = s
        .rows("SHOW SLAVE HOSTS", "listing connected replicas")
        .await
        .map(|rows| {
            rows.iter()
                .filter_map(|r| r.get_text("Server_id")?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    Ok(ServerIdentity::new(
        get("hostname"),
        get("port").parse().unwrap_or(0),
        get("datadir"),
    )
    .server_uuid(uuid)
    .server_id(get("server_id").parse().unwrap_or(0))
    .binlog(binlog)
    .replica_ids(replica_ids))
}

/// The binary-log position of a connected master (file, position and, on MariaDB, the
/// GTID position).
pub async fn binlog_position<S: SqlSession + ?Sized>(s: &mut S) -> Result<Coordinates, MysqlError> {
    let d = dialect(s).await?;
    let what = "reading the binary log position";
    let row = s
        .first_row(d.show_binlog_status(), what)
        .await?
        .ok_or_else(|| s.unexpected(what, "no row: is the binary log enabled?".into()))?;
    let mut c = parse_binlog_status(&row);
    if c.gtid.is_none() && d.flavor == amsu_core::Flavor::MariaDb {
        let g = s.column("SELECT @@global.gtid_binlog_pos", what).await?;
        c.gtid = g.into_iter().next().filter(|g| !g.is_empty());
    }
    Ok(c)
}

/// The replica side of a setup over a real connection.
#[derive(Clone)]
pub struct MysqlReplica {
    addr: ServerAddr,
    /// Sessions holding user-level locks ([`ReplicaServer::hold_lock`]), by lock name.
    locks: Arc<tokio::sync::Mutex<HashMap<String, Session>>>,
}

impl std::fmt::Debug for MysqlReplica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MysqlReplica")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl MysqlReplica {
    /// A replica reached at `addr` (its user needs SUPER or the flavor's admin privileges).
    pub fn new(addr: ServerAddr) -> Self {
        MysqlReplica {
            addr,
            locks: Arc::default(),
        }
    }

    async fn session(&self) -> Result<(Session, Dialect), MysqlError> {
        let mut s = Session::open(&self.addr).await?;
        let d = dialect(&mut s).await?;
        Ok((s, d))
    }
}

/// The replication status of a connected server, `None` when it is not a replica.
pub async fn replication_status<S: SqlSession + ?Sized>(
    s: &mut S,
    d: &Dialect,
) -> Result<Option<ReplicationStatus>, MysqlError> {
    Ok(
        s.first_row(d.show_replica_status(), "reading the replication status")
            .await?
            .map(|row| parse_replica_status(&row)),
    )
}

fn replication_error(
    server: &str,
    st: &ReplicationStatus,
    raw_io: &str,
    raw_sql: &str,
) -> MysqlError {
    MysqlError::replication(
        server,
        raw_io,
        raw_sql,
        st.last_io_error.clone(),
        st.last_sql_error.clone(),
    )
}

#[async_trait]
impl ReplicaServer for MysqlReplica {
    async fn probe(&self) -> Result<ServerInfo, BoxError> {
        Ok(probe(&mut Session::open(&self.addr).await?).await?)
    }

    async fn replication_status(&self) -> Result<Option<ReplicationStatus>, BoxError> {
        let (mut s, d) = self.session().await?;
        Ok(replication_status(&mut s, &d).await?)
    }

    async fn user_databases(&self) -> Result<Vec<String>, BoxError> {
        let (mut s, _) = self.session().await?;
        let system = SYSTEM_DATABASES
            .iter()
            .map(|d| quote::string(d))
            .collect::<Vec<_>>()
            .join(",");
        // A database counts as user data when it holds a table, view, routine or event;
        // an empty one (like Debian's `test`) holds nothing to lose. One statement per
        // information_schema table (a correlated subquery per database is quadratic).
        let sql = format!(
            "SELECT DISTINCT TABLE_SCHEMA FROM information_schema.TABLES WHERE TABLE_SCHEMA NOT IN ({system}) \
             UNION SELECT DISTINCT ROUTINE_SCHEMA FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA NOT IN ({system}) \
             UNION SELECT DISTINCT EVENT_SCHEMA FROM information_schema.EVENTS WHERE EVENT_SCHEMA NOT IN ({system}) \
             ORDER BY 1"
        );
        Ok(s.column(&sql, "listing the replica's databases").await?)
    }

    async fn reset_replication(&self) -> Result<(), BoxError> {
        let (mut s, d) = self.session().await?;
        s.exec(d.stop_replica(), "stopping replication").await?;
        s.exec(d.reset_replica_all(), "resetting replication")
            .await?;
        Ok(())
    }

    async fn drop_databases(&self, names: &[String]) -> Result<(), BoxError> {
        let (mut s, _) = self.session().await?;
        s.exec(
            "SET SESSION sql_log_bin = 0",
            "disabling the binary log for this session",
        )
        .await?;
        for n in names {
            let sql = format!("DROP DATABASE {}", quote::ident(n));
            s.exec(&sql, &sql).await?;
        }
        Ok(())
    }

    async fn configure(&self, server_id: Option<u32>, read_only: bool) -> Result<(), BoxError> {
        let (mut s, _) = self.session().await?;
        if let Some(id) = server_id {
            let sql = format!("SET GLOBAL server_id = {id}");
            s.exec(&sql, &sql).await?;
        }
        let sql = format!(
            "SET GLOBAL read_only = {}",
            if read_only { "ON" } else { "OFF" }
        );
        s.exec(&sql, &sql).await?;
        Ok(())
    }

    async fn change_master(&self, source: &ReplicationSource) -> Result<(), BoxError> {
        let (mut s, d) = self.session().await?;
        let opts = crate::dialect::ChangeSourceOptions::for_source(source);
        for (sql, shown) in d.change_source_statements(source, &opts) {
            s.exec(&sql, &shown).await?;
        }
        Ok(())
    }

    async fn set_replication_credentials(
        &self,
        user: &str,
        password: &Secret,
        tls: &ReplicationTls,
    ) -> Result<(), BoxError> {
        let (mut s, d) = self.session().await?;
        let opts = crate::dialect::ChangeSourceOptions::for_tls(tls);
        s.exec(d.stop_replica(), "stopping replication").await?;
        s.exec(
            &d.change_source_credentials(user, password, &opts),
            &d.change_source_credentials_redacted(user, &opts),
        )
        .await?;
        Ok(())
    }

    async fn start_replication(&self, timeout: Duration) -> Result<ReplicationStatus, BoxError> {
        let (mut s, d) = self.session().await?;
        s.exec(d.start_replica(), "starting replication").await?;
        let deadline = Instant::now() + timeout;
        loop {
            let row = s
                .first_row(d.show_replica_status(), "reading the replication status")
                .await?
                .ok_or_else(|| s.unexpected("SHOW SLAVE STATUS", "no row after START"))?;
            let st = parse_replica_status(&row);
            let raw = |a: &str, b: &str| {
                field(&row, a)
                    .or_else(|| field(&row, b))
                    .unwrap_or("")
                    .to_string()
            };
            let (io, sql) = (
                raw("Slave_IO_Running", "Replica_IO_Running"),
                raw("Slave_SQL_Running", "Replica_SQL_Running"),
            );
            if st.io_running && st.sql_running {
                return Ok(st);
            }
            let failed = !st.last_io_error.is_empty()
                || !st.last_sql_error.is_empty()
                || sql.eq_ignore_ascii_case("No")
                || io.eq_ignore_ascii_case("No");
            if failed || Instant::now() >= deadline {
                return Err(replication_error(s.server(), &st, &io, &sql).into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn wait_until_applied(
        &self,
        target: &Coordinates,
        timeout: Duration,
    ) -> Result<(), BoxError> {
        let (mut s, d) = self.session().await?;
        let deadline = Instant::now() + timeout;
        loop {
            // Wait in short slices so a stopped thread is noticed.
            let r = s
                .column(
                    &d.wait_for_position(target, 1),
                    "waiting for the replica to catch up",
                )
                .await?;
            match r.first().map(String::as_str) {
                Some(v) if v.parse::<i64>().map(|n| n >= 0).unwrap_or(false) => return Ok(()),
                _ => {}
            }
            still_applying(&mut s, &d, deadline, timeout, || {
                format!("the replica to apply up to {target}")
            })
            .await?;
        }
    }

    async fn wait_until_gtid_applied(&self, gtid: &str, timeout: Duration) -> Result<(), BoxError> {
        let (mut s, d) = self.session().await?;
        let deadline = Instant::now() + timeout;
        loop {
            // Wait in short slices so a stopped thread is noticed.
            let r = s
                .column(
                    &d.wait_for_gtid(gtid, 1),
                    "waiting for the replica to catch up (by GTID)",
                )
                .await?;
            let value = r.first().and_then(|v| v.parse::<i64>().ok());
            if d.gtid_wait_outcome(value) == WaitOutcome::Reached {
                return Ok(());
            }
            still_applying(&mut s, &d, deadline, timeout, || {
                format!("the replica to apply up to GTID {gtid}")
            })
            .await?;
        }
    }

    async fn identity(&self) -> Result<ServerIdentity, BoxError> {
        Ok(identity(&mut Session::open(&self.addr).await?).await?)
    }

    async fn hold_lock(&self, name: &str) -> Result<LockOutcome, BoxError> {
        let mut locks = self.locks.lock().await;
        if locks.contains_key(name) {
            return Ok(LockOutcome::Acquired);
        }
        let mut s = Session::open(&self.addr).await?;
        let what = format!("taking the lock {name}");
        let got = s
            .column(
                &format!("SELECT GET_LOCK({}, 0)", quote::string(name)),
                &what,
            )
            .await?;
        if got.first().map(String::as_str) == Some("1") {
            locks.insert(name.to_string(), s);
            return Ok(LockOutcome::Acquired);
        }
        let holder = s
            .first_row(
                &format!(
                    "SELECT p.ID AS id, p.USER AS user, p.HOST AS host, p.TIME AS time \
                     FROM information_schema.PROCESSLIST p WHERE p.ID = IS_USED_LOCK({})",
                    quote::string(name)
                ),
                "looking up the lock's holder",
            )
            .await
            .ok()
            .flatten();
        Ok(LockOutcome::HeldBy(match holder {
            Some(row) => format!(
                "connection {} of '{}' from {}, open for {} s",
                field(&row, "id").unwrap_or("?"),
                field(&row, "user").unwrap_or("?"),
                field(&row, "host").unwrap_or("?"),
                field(&row, "time").unwrap_or("?"),
            ),
            None => "a session of another client".into(),
        }))
    }

    async fn release_lock(&self, name: &str) -> Result<(), BoxError> {
        if let Some(mut s) = self.locks.lock().await.remove(name) {
            // A session that died (the replica restarted, as the physical method does)
            // already lost its locks: nothing left to release.
            let released = s
                .exec(
                    &format!("DO RELEASE_LOCK({})", quote::string(name)),
                    &format!("releasing the lock {name}"),
                )
                .await;
            if let Err(e) = released {
                tracing::debug!(error = %e, "the lock's session is gone; the server released it");
            }
            let _ = s.conn.disconnect().await;
        }
        Ok(())
    }

    async fn owned_databases(&self) -> Result<Vec<String>, BoxError> {
        Ok(crate::owned::databases(&mut Session::open(&self.addr).await?).await?)
    }

    async fn forget_owned(&self) -> Result<(), BoxError> {
        Ok(crate::owned::forget(&mut Session::open(&self.addr).await?).await?)
    }

    async fn read_globals(
        &self,
        names: &[String],
    ) -> Result<Vec<(String, Option<String>)>, BoxError> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        Ok(read_globals(&mut Session::open(&self.addr).await?, names).await?)
    }

    async fn set_globals(&self, pairs: &[(String, String)]) -> Result<(), BoxError> {
        if pairs.is_empty() {
            return Ok(());
        }
        set_globals(&mut Session::open(&self.addr).await?, pairs).await
    }
}

/// The global variables `names` of `s`, in order, `None` for one the server does not have.
async fn read_globals<S: SqlSession + ?Sized>(
    s: &mut S,
    names: &[String],
) -> Result<Vec<(String, Option<String>)>, MysqlError> {
    let list = names
        .iter()
        .map(|n| quote::string(n))
        .collect::<Vec<_>>()
        .join(",");
    let sql = format!("SHOW GLOBAL VARIABLES WHERE Variable_name IN ({list})");
    let rows = s.rows(&sql, "reading the replica's globals").await?;
    let found: Vec<(String, Option<String>)> = rows
        .iter()
        .map(|r| (r.text_or_empty(0).to_ascii_lowercase(), r.text(1)))
        .collect();
    Ok(names
        .iter()
        .map(|n| {
            let v = found
                .iter()
                .find(|(f, _)| f.eq_ignore_ascii_case(n))
                .and_then(|(_, v)| v.clone());
            (n.clone(), v)
        })
        .collect())
}

/// `SET GLOBAL name = value` for each pair, in order, on `s`.
async fn set_globals<S: SqlSession + ?Sized>(
    s: &mut S,
    pairs: &[(String, String)],
) -> Result<(), BoxError> {
    for (name, value) in pairs {
        let sql = crate::plan_sql::set_global(name, value).ok_or_else(|| {
            s.unexpected(
                "setting a global",
                format!("refused the variable name `{name}`"),
            )
        })?;
        s.exec(&sql, &sql).await?;
    }
    Ok(())
}

/// After a wait slice that did not reach its target: fails when replication stopped (its
/// errors quoted verbatim) or when the deadline has passed.
async fn still_applying<S: SqlSession + ?Sized>(
    s: &mut S,
    d: &Dialect,
    deadline: Instant,
    timeout: Duration,
    what: impl FnOnce() -> String,
) -> Result<(), BoxError> {
    if let Some(st) = replication_status(s, d).await? {
        if !st.io_running || !st.sql_running {
            let (io, sql) = (
                if st.io_running { "Yes" } else { "No" },
                if st.sql_running { "Yes" } else { "No" },
            );
            if !st.last_io_error.is_empty() || !st.last_sql_error.is_empty() || !st.sql_running {
                return Err(replication_error(s.server(), &st, io, sql).into());
            }
        }
    }
    if Instant::now() >= deadline {
        return Err(MysqlError::timeout(s.server(), what(), timeout.as_secs()).into());
    }
    Ok(())
}

#[cfg(test)]
mod session_tests;
