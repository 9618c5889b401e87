//! Seeding a new replica from a donor: a running replica of the master whose data the
//! logical copy reads instead of the master's (`amsu setup --donor URL`), so the master
//! serves no bulk reads.
//!
//! How the snapshot gets the *master's* coordinates: the donor's SQL thread is stopped
//! (`STOP SLAVE SQL_THREAD`, which returns at a transaction boundary), and then its
//! executed master position — `Relay_Master_Log_File`/`Exec_Master_Log_Pos` and
//! `@@gtid_slave_pos` — is exactly the master position of the donor's data. The copy's
//! snapshot (the workers' consistent-snapshot transactions under `BACKUP STAGE
//! BLOCK_COMMIT` on the donor) is taken while the SQL thread stays stopped, so no
//! replicated transaction can commit between reading the position and starting the
//! snapshots; the SQL thread is started again as soon as the snapshot's lock is
//! released (usually well under a second later). The new replica is then pointed at the
//! master at that position, by file and position or by GTID.
//!
//! The donor is left as it was: the SQL thread is started again on every path out of the
//! copy, and before stopping it a marker file (next to the setup's journal) records that
//! amsu stopped it; a rerun after `kill -9` finds the marker and starts the thread again
//! first ([`Donor::recover`]). Nothing else changes on the donor.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use amsu_core::{
    same_server, BoxError, Coordinates, Event, EventSink, Finding, FindingCode, Flavor,
    Positioning, Preflight, Remedy, ReplicationStatus, Role, ServerAddr,
};
use amsu_mysql::conn::{field, Session};
use amsu_mysql::dialect::Dialect;
use amsu_mysql::MysqlError;
use async_trait::async_trait;

use crate::image::ImageError;

/// The default [`Donor::max_lag`]: 30 s.
pub(crate) const DEFAULT_MAX_LAG: Duration = Duration::from_secs(30);

/// A running replica of the master to copy from instead of the master. Build with
/// [`Donor::new`] and the setters.
#[derive(Clone)]
pub struct Donor {
    addr: ServerAddr,
    max_lag: Duration,
    marker: Option<PathBuf>,
}

impl std::fmt::Debug for Donor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // ServerAddr's Debug hides the password.
        f.debug_struct("Donor")
            .field("addr", &self.addr)
            .field("max_lag", &self.max_lag)
            .field("marker", &self.marker)
            .finish()
    }
}

impl Donor {
    /// The donor at `addr` (a user that may read every table, take the backup lock and
    /// stop and start the SQL thread). Default lag limit: `DEFAULT_MAX_LAG`; no marker
    /// file (the façade puts one next to the journal).
    pub fn new(addr: ServerAddr) -> Self {
        Donor {
            addr,
            max_lag: DEFAULT_MAX_LAG,
            marker: None,
        }
    }

    /// The most the donor may lag behind the master (`Seconds_Behind_Master`) for the
    /// setup to start. Default: `DEFAULT_MAX_LAG`.
    pub fn max_lag(mut self, lag: Duration) -> Self {
        self.max_lag = lag;
        self
    }

    /// The file that records, while amsu holds the donor's SQL thread stopped, that it
    /// did (so that a rerun after a crash starts it again). Default: none.
    pub fn marker(mut self, path: Option<PathBuf>) -> Self {
        self.marker = path;
        self
    }

    /// The donor's address.
    pub(crate) fn addr(&self) -> &ServerAddr {
        &self.addr
    }

    /// The lag limit.
    pub fn lag_limit(&self) -> Duration {
        self.max_lag
    }

    /// `HOST:PORT` of the donor, as events and messages name it.
    pub fn name(&self) -> String {
        format!("{}:{}", self.addr.host, self.addr.port)
    }

    /// True when the marker says an earlier run of this setup stopped this donor's SQL
    /// thread and did not start it again.
    fn marked(&self) -> bool {
        self.marker
            .as_deref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .is_some_and(|text| text.trim() == self.name())
    }

    /// After a crash of an earlier run (the marker is there): starts the donor's SQL
    /// thread again if it is stopped, then removes the marker. Nothing otherwise.
    pub(crate) async fn recover(&self, events: &Arc<dyn EventSink>) -> Result<(), ImageError> {
        if !self.marked() {
            return Ok(());
        }
        let mut s = Session::open(&self.addr).await?;
        let d = dialect(&mut s).await?;
        let st = status(&mut s, &d).await?;
        if st.as_ref().is_some_and(|st| !st.sql_running) {
            let sql = format!("{} SQL_THREAD", d.start_replica());
            s.exec(&sql, "starting the donor's SQL thread again")
                .await?;
            events.emit(&Event::Changed {
                server: Role::Donor,
                what: format!(
                    "{sql} on {}: an interrupted earlier run had stopped it",
                    self.name()
                ),
            });
        }
        self.unmark();
        Ok(())
    }

    fn mark(&self) -> Result<(), ImageError> {
        if let Some(p) = &self.marker {
            if let Some(dir) = p.parent() {
                std::fs::create_dir_all(dir).map_err(|e| io_error(p, e))?;
            }
            std::fs::write(p, self.name()).map_err(|e| io_error(p, e))?;
        }
        Ok(())
    }

    fn unmark(&self) {
        if let Some(p) = &self.marker {
            let _ = std::fs::remove_file(p);
        }
    }

    /// Stops the donor's SQL thread (marked first) and reads the master position of its
    /// data. The thread runs again after [`Paused::restart`], which
    /// [`crate::snapshot`] calls once the snapshot is taken.
    pub(crate) async fn pause(&self, events: &Arc<dyn EventSink>) -> Result<Paused, ImageError> {
        let mut s = Session::open(&self.addr).await?;
        let d = dialect(&mut s).await?;
        let stop = format!("{} SQL_THREAD", d.stop_replica());
        self.mark()?;
        if let Err(e) = s.exec(&stop, "stopping the donor's SQL thread").await {
            self.unmark();
            return Err(e.into());
        }
        let at = Instant::now();
        events.emit(&Event::Changed {
            server: Role::Donor,
            what: format!(
                "{stop} on {} for the snapshot (started again right after it)",
                self.name()
            ),
        });
        let mut paused = Paused {
            donor: self.clone(),
            session: s,
            dialect: d,
            coordinates: Coordinates::new(String::new(), 0),
            stopped_at: at,
            running: false,
            events: events.clone(),
        };
        match paused.read_position().await {
            Ok(c) => {
                paused.coordinates = c;
                Ok(paused)
            }
            Err(e) => {
                let _ = paused.restart().await;
                Err(e)
            }
        }
    }
}

fn io_error(p: &Path, e: std::io::Error) -> ImageError {
    ImageError::from(crate::BackupError::Internal(format!(
        "cannot write the donor marker {}: {e}",
        p.display()
    )))
}

/// The donor with its SQL thread stopped by [`Donor::pause`].
pub(crate) struct Paused {
    donor: Donor,
    session: Session,
    dialect: Dialect,
    coordinates: Coordinates,
    stopped_at: Instant,
    running: bool,
    events: Arc<dyn EventSink>,
}

impl Paused {
    /// The master's coordinates of the donor's data while its SQL thread is stopped.
    pub(crate) fn coordinates(&self) -> &Coordinates {
        &self.coordinates
    }

    async fn read_position(&mut self) -> Result<Coordinates, ImageError> {
        let what = "reading the donor's executed master position";
        let st = status(&mut self.session, &self.dialect)
            .await?
            .ok_or_else(|| self.session.unexpected(what, "the donor is not a replica"))?;
        if st.exec_file.is_empty() {
            return Err(self
                .session
                .unexpected(what, "no Relay_Master_Log_File")
                .into());
        }
        let gtid_sql = match self.dialect.flavor {
            Flavor::MariaDb => "SELECT @@global.gtid_slave_pos",
            Flavor::MySql => "SELECT @@global.gtid_executed",
        };
        let gtid = self
            .session
            .column(gtid_sql, what)
            .await?
            .into_iter()
            .next()
            .map(|g| g.split_whitespace().collect::<String>())
            .filter(|g| !g.is_empty());
        Ok(Coordinates::new(st.exec_file, st.exec_position).with_gtid(gtid))
    }

    /// Starts the donor's SQL thread again (once; later calls do nothing) and removes
    /// the marker.
    pub(crate) async fn restart(&mut self) -> Result<(), ImageError> {
        if self.running {
            return Ok(());
        }
        let start = format!("{} SQL_THREAD", self.dialect.start_replica());
        let r = match self
            .session
            .exec(&start, "starting the donor's SQL thread again")
            .await
        {
            Ok(()) => Ok(()),
            // The session may have died with the donor: try once on a new one.
            Err(_) => match Session::open(&self.donor.addr).await {
                Ok(mut s) => s
                    .exec(&start, "starting the donor's SQL thread again")
                    .await
                    .map_err(ImageError::from),
                Err(e) => Err(e.into()),
            },
        };
        r?;
        self.running = true;
        self.donor.unmark();
        self.events.emit(&Event::Changed {
            server: Role::Donor,
            what: format!(
                "{start} on {}: its SQL thread was stopped for {} ms",
                self.donor.name(),
                self.stopped_at.elapsed().as_millis()
            ),
        });
        Ok(())
    }
}

async fn dialect(s: &mut Session) -> Result<Dialect, MysqlError> {
    let info = amsu_mysql::probe(s).await?;
    Ok(Dialect::new(info.flavor, info.version))
}

async fn status(s: &mut Session, d: &Dialect) -> Result<Option<ReplicationStatus>, MysqlError> {
    amsu_mysql::replication_status(s, d).await
}

/// The statements the copy runs on the donor, for the plan.
pub(crate) fn plan_statements(donor: &Donor) -> Vec<String> {
    vec![
        format!(
            "-- on the donor {} (a replica of the master; the master serves no bulk reads):",
            donor.name()
        ),
        "STOP SLAVE SQL_THREAD  -- recorded first, so a rerun after a crash starts it again"
            .into(),
        "SHOW SLAVE STATUS; SELECT @@global.gtid_slave_pos  -- the master position of the donor's data".into(),
        "BACKUP STAGE START; BACKUP STAGE BLOCK_COMMIT".into(),
        "START TRANSACTION WITH CONSISTENT SNAPSHOT  -- on each worker".into(),
        "SHOW CREATE USER … / SHOW GRANTS FOR …  -- each non-system account (the donor's are the master's when it replicates everything)".into(),
        "SELECT … FROM <non-transactional table>  -- copied while commits are blocked".into(),
        "BACKUP STAGE END".into(),
        "START SLAVE SQL_THREAD  -- the donor replicates again".into(),
        "SELECT <columns> FROM <table> WHERE <key range>  -- each chunk, in the snapshot".into(),
        "-- on the replica (sql_log_bin = 0, foreign_key_checks = 0):".into(),
        "CREATE DATABASE … / CREATE TABLE …  -- from SHOW CREATE on the donor".into(),
        "START TRANSACTION; LOAD DATA LOCAL INFILE … INTO TABLE <table> CHARACTER SET binary …; COMMIT  -- each chunk".into(),
        "CREATE VIEW / PROCEDURE / FUNCTION / TRIGGER / EVENT …; ALTER EVENT … DISABLE ON SLAVE".into(),
        "DROP USER IF EXISTS …; CREATE USER …; GRANT …  -- each copied account".into(),
        "-- CHANGE MASTER on the replica names the master, at the donor's executed master position".into(),
    ]
}

/// The donor's read-only checks: a healthy replica of this master, distinct from the
/// master and from the new replica, not lagging beyond its limit, with a position the
/// chosen positioning can start from. Also refuses a copy method other than `logical`.
pub(crate) struct DonorChecks {
    donor: Donor,
    master: ServerAddr,
    replica: ServerAddr,
    positioning: Positioning,
    method: &'static str,
}

impl std::fmt::Debug for DonorChecks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DonorChecks")
            .field("donor", &self.donor)
            .field("method", &self.method)
            .finish_non_exhaustive()
    }
}

impl DonorChecks {
    /// The checks of `donor` for a setup of `replica` from `master` with `positioning`
    /// and the copy method named `method`.
    pub(crate) fn new(
        donor: Donor,
        master: ServerAddr,
        replica: ServerAddr,
        positioning: Positioning,
        method: &'static str,
    ) -> Self {
        DonorChecks {
            donor,
            master,
            replica,
            positioning,
            method,
        }
    }

    async fn run(&self) -> Result<Vec<Finding>, BoxError> {
        let name = self.donor.name();
        let blocking = |code: FindingCode, problem: String, fix: &str| {
            Finding::blocking(Role::Donor, code, problem, fix)
        };
        let mut out = Vec::new();
        if self.method != "logical" {
            out.push(
                blocking(
                    FindingCode::DonorMethod,
                    format!(
                        "seeding from a donor works with the logical method only, not {}",
                        self.method
                    ),
                    "use the logical method with a donor, or copy from the master without a donor",
                )
                .with_remedy(Remedy::setting_to("method", "logical")),
            );
            return Ok(out);
        }
        let mut ds = match Session::open(&self.donor.addr).await {
            Ok(s) => s,
            Err(e) => {
                out.push(blocking(
                    FindingCode::DonorUnreachable,
                    format!("cannot connect to the donor {name}: {e}"),
                    "check the donor's address, user and password",
                ));
                return Ok(out);
            }
        };
        let dd = dialect(&mut ds).await?;
        let donor_id = amsu_mysql::identity(&mut ds).await?;
        let mut ms = Session::open(&self.master).await?;
        let master_id = amsu_mysql::identity(&mut ms).await?;
        let mut rs = Session::open(&self.replica).await?;
        let replica_id = amsu_mysql::identity(&mut rs).await?;
        if let Some(why) = same_server(&master_id, &donor_id, false) {
            out.push(blocking(
                FindingCode::DonorIsMaster,
                format!("the donor {name} is the master itself: {why}"),
                "give a replica of the master as the donor, or copy from the master",
            ));
            return Ok(out);
        }
        if let Some(why) = same_server(&donor_id, &replica_id, false) {
            out.push(blocking(
                FindingCode::DonorIsReplica,
                format!("the donor {name} is the new replica itself: {why}"),
                "give another, running replica of the master as the donor",
            ));
            return Ok(out);
        }
        if donor_id.server_id != 0 && donor_id.server_id == replica_id.server_id {
            out.push(blocking(
                FindingCode::DonorServerIdClash,
                format!(
                    "the donor and the new replica both have server_id {}: the master would disconnect one of them",
                    donor_id.server_id
                ),
                "give the new replica another server_id (SET GLOBAL server_id and in its option file)",
            ));
        }
        let Some(st) = status(&mut ds, &dd).await? else {
            out.push(blocking(
                FindingCode::DonorNotReplica,
                format!("the donor {name} is not a replica (SHOW SLAVE STATUS is empty)"),
                "give a running replica of the master as the donor",
            ));
            return Ok(out);
        };
        let row = ds
            .first_row(dd.show_replica_status(), "reading the donor's status")
            .await?
            .unwrap_or_default();
        let master_server_id = field(&row, "Master_Server_Id")
            .or_else(|| field(&row, "Source_Server_Id"))
            .and_then(|v| v.trim().parse::<u32>().ok());
        let master_uuid = field(&row, "Master_UUID").or_else(|| field(&row, "Source_UUID"));
        let same_master = st.master_port == master_id.port
            && match (master_uuid, &master_id.server_uuid) {
                (Some(a), Some(b)) if !a.is_empty() => a == b,
                _ => master_server_id.is_none_or(|id| id == 0 || id == master_id.server_id),
            };
        if !same_master {
            out.push(blocking(
                FindingCode::DonorOtherMaster,
                format!(
                    "the donor {name} replicates from {}:{} (server_id {}), not from this master (port {}, server_id {})",
                    st.master_host,
                    st.master_port,
                    master_server_id.map_or("?".to_string(), |i| i.to_string()),
                    master_id.port,
                    master_id.server_id
                ),
                "give a replica of this master as the donor",
            ));
            return Ok(out);
        }
        let stopped_by_us = !st.sql_running && self.donor.marked();
        if stopped_by_us {
            out.push(Finding::warning(
                Role::Donor,
                FindingCode::DonorStoppedByAmsu,
                format!("an interrupted earlier run of this setup stopped the SQL thread of the donor {name}"),
                "nothing: this run starts it again before its snapshot",
            ));
        }
        if !st.io_running || !(st.sql_running || stopped_by_us) {
            out.push(blocking(
                FindingCode::DonorNotReplicating,
                format!(
                    "the donor {name} is not replicating (I/O thread {}, SQL thread {})",
                    if st.io_running { "running" } else { "stopped" },
                    if st.sql_running { "running" } else { "stopped" }
                ),
                "START SLAVE on the donor and wait until it has caught up",
            ));
        }
        if !st.last_io_error.is_empty() || !st.last_sql_error.is_empty() {
            out.push(blocking(
                FindingCode::DonorReplicationError,
                format!(
                    "the donor {name} reports a replication error: {}",
                    [st.last_io_error.as_str(), st.last_sql_error.as_str()]
                        .into_iter()
                        .filter(|e| !e.is_empty())
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
                "fix the donor's replication first (its data may differ from the master's)",
            ));
        }
        let limit = self.donor.max_lag.as_secs();
        match st.seconds_behind {
            Some(lag) if lag > limit => out.push(
                blocking(
                    FindingCode::DonorLagging,
                    format!(
                        "the donor {name} lags {lag} s behind the master (the limit is {limit} s)"
                    ),
                    "wait until the donor has caught up, or allow it more lag",
                )
                .with_remedy(Remedy::setting("donor.max_lag")),
            ),
            None if st.sql_running && st.io_running => out.push(blocking(
                FindingCode::DonorLagging,
                format!("the donor {name} does not know its lag (Seconds_Behind_Master is NULL)"),
                "wait until the donor replicates normally",
            )),
            _ => {}
        }
        match self.positioning {
            Positioning::Gtid => {
                let sql = match dd.flavor {
                    Flavor::MariaDb => "SELECT @@global.gtid_slave_pos",
                    Flavor::MySql => "SELECT @@global.gtid_executed",
                };
                let g = ds.column(sql, "reading the donor's GTID position").await?;
                if g.first().is_none_or(|g| g.trim().is_empty()) {
                    out.push(blocking(
                        FindingCode::DonorNoGtid,
                        format!("the donor {name} has no GTID position ({sql} is empty), so the new replica cannot start from it by GTID"),
                        "replicate by file and position",
                    )
                    .with_remedy(Remedy::setting_to("positioning", "file")));
                }
            }
            Positioning::FilePosition => {
                if let Ok(logs) = ms
                    .column("SHOW BINARY LOGS", "listing the master's binary logs")
                    .await
                {
                    if !st.exec_file.is_empty() && !logs.contains(&st.exec_file) {
                        out.push(blocking(
                            FindingCode::DonorPositionPurged,
                            format!(
                                "the donor {name} has executed up to {}:{}, which the master no longer has",
                                st.exec_file, st.exec_position
                            ),
                            "wait until the donor has caught up",
                        ));
                    }
                }
            }
            _ => {}
        }
        Ok(out)
    }
}

#[async_trait]
impl Preflight for DonorChecks {
    async fn findings(&self) -> Result<Vec<Finding>, BoxError> {
        self.run().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn donor(port: u16) -> Donor {
        Donor::new(format!("mysql://root@127.0.0.1:{port}").parse().unwrap())
    }

    #[test]
    fn the_marker_names_the_donor_it_was_written_for() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.donor-stopped");
        let d = donor(3307).marker(Some(path.clone()));
        assert!(!d.marked(), "no marker yet");
        d.mark().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "127.0.0.1:3307");
        assert!(d.marked());
        // Another donor with the same journal does not take it for its own.
        assert!(!donor(3308).marker(Some(path.clone())).marked());
        d.unmark();
        assert!(!path.exists());
        assert!(!d.marked());
    }

    #[test]
    fn without_a_marker_file_nothing_is_written() {
        let d = donor(3307);
        d.mark().unwrap();
        assert!(!d.marked());
    }

    #[test]
    fn the_plan_names_the_donor_and_restarts_its_sql_thread() {
        let plan = plan_statements(&donor(3307).max_lag(Duration::from_secs(5)));
        assert!(plan[0].contains("on the donor 127.0.0.1:3307"), "{plan:?}");
        let stop = plan
            .iter()
            .position(|s| s.starts_with("STOP SLAVE SQL_THREAD"));
        let snap = plan
            .iter()
            .position(|s| s.starts_with("START TRANSACTION WITH CONSISTENT SNAPSHOT"));
        let start = plan
            .iter()
            .position(|s| s.starts_with("START SLAVE SQL_THREAD"));
        let chunks = plan.iter().position(|s| s.starts_with("SELECT <columns>"));
        assert!(
            stop < snap && snap < start && start < chunks && stop.is_some(),
            "{plan:?}"
        );
    }

    #[test]
    fn debug_hides_the_password() {
        let d = Donor::new("mysql://root:S3cret-Pw@db2:3306".parse().unwrap());
        assert!(!format!("{d:?}").contains("S3cret"));
        assert_eq!(d.name(), "db2:3306");
        assert_eq!(d.lag_limit(), DEFAULT_MAX_LAG);
    }
}
