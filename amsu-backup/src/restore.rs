//! Loading schema, objects and accounts into the replica. Every statement runs with
//! `sql_log_bin = 0`, so the replica's own binary log never records the copy.
//!
//! Definitions (of databases, tables, objects, accounts, grants) are sent with
//! [`Session::exec_one`]: on a session in single-statement mode (a restore from an
//! image) they go through the prepared-statement protocol and never run as more than
//! one statement.

use amsu_core::Flavor;
use amsu_mysql::conn::{Session, SESSION_SETUP};
use amsu_mysql::{codes, quote, MysqlError};

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use crate::catalog::{Account, Database, ObjectKind, SchemaObject, SequenceState, Table};
use crate::indexes::{self, Deferred};

/// Session settings for loading on the replica, after amsu's usual ones.
pub(crate) const LOAD_SESSION: &[&str] = &[
    "SET SESSION sql_log_bin = 0",
    "SET SESSION foreign_key_checks = 0",
    "SET SESSION character_set_database = binary",
];

/// Prepares a replica session for loading.
pub(crate) async fn prepare_session(s: &mut Session) -> Result<(), MysqlError> {
    for sql in LOAD_SESSION {
        s.exec(sql, sql).await?;
    }
    Ok(())
}

/// Creates the databases (an existing empty one is kept and given the master's defaults),
/// and records each one it created on the replica ([`amsu_mysql::owned`]) so that a rerun
/// after an interruption drops exactly these and nothing else.
pub(crate) async fn create_databases(s: &mut Session, dbs: &[Database]) -> Result<(), MysqlError> {
    let existing = amsu_mysql::owned::existing_databases(s).await?;
    for db in dbs {
        let sql = db
            .create_sql
            .replacen("CREATE DATABASE ", "CREATE DATABASE IF NOT EXISTS ", 1)
            .replacen("IF NOT EXISTS /*!32312 IF NOT EXISTS*/", "IF NOT EXISTS", 1);
        s.exec_one(
            &sql,
            &format!("creating database {}", quote::ident(&db.name)),
        )
        .await?;
        if !existing.contains(&db.name) {
            amsu_mysql::owned::record_database(s, &db.name).await?;
        }
    }
    Ok(())
}

/// Creates the tables (foreign-key checks are off in the session, so order is free),
/// with their secondary keys left out where adding them after the data is safe (see
/// [`crate::indexes`]). Tables named in `existing` are already there (a resumed restore)
/// and are not created again. Returns the tables whose keys are to be added after the
/// data, with those keys.
pub(crate) async fn create_tables(
    s: &mut Session,
    tables: &[Table],
    existing: &HashSet<(String, String)>,
) -> Result<Vec<(Table, Deferred)>, MysqlError> {
    let mut deferred = Vec::new();
    let with_fks = indexes::with_foreign_keys(tables);
    let mut current_db: Option<&str> = None;
    for t in tables {
        let d = indexes::defer(t, &with_fks);
        if !existing.contains(&(t.db.clone(), t.name.clone())) {
            if current_db != Some(t.db.as_str()) {
                s.exec(
                    &format!("USE {}", quote::ident(&t.db)),
                    "selecting the database",
                )
                .await?;
                current_db = Some(t.db.as_str());
            }
            let sql = d.as_ref().map_or(t.create_sql.as_str(), |d| &d.create_sql);
            s.exec_one(sql, &format!("creating table {}", t.qualified()))
                .await?;
        }
        if let Some(d) = d {
            deferred.push((t.clone(), d));
        }
    }
    Ok(deferred)
}

/// The tables that exist on the replica, of the databases of `tables`.
pub(crate) async fn existing_tables(
    s: &mut Session,
    tables: &[Table],
) -> Result<HashSet<(String, String)>, MysqlError> {
    let dbs: HashSet<&str> = tables.iter().map(|t| t.db.as_str()).collect();
    let mut out = HashSet::new();
    for db in dbs {
        let rows = s
            .rows(
                &format!(
                    "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = {}",
                    quote::string(db)
                ),
                "listing the tables already restored",
            )
            .await?;
        for r in rows {
            if let Some(name) = r.text(0) {
                out.insert((db.to_string(), name));
            }
        }
    }
    Ok(out)
}

/// Adds the deferred keys of `tables` once their data is loaded, a table per session at
/// a time (keys already on the replica, from an interrupted run, are skipped). Returns
/// the sessions.
pub(crate) async fn add_deferred_keys(
    sessions: Vec<Session>,
    tables: Vec<(Table, Deferred)>,
) -> Result<Vec<Session>, MysqlError> {
    let queue = Arc::new(Mutex::new(VecDeque::from(tables)));
    let handles: Vec<_> = sessions
        .into_iter()
        .map(|mut s| {
            let queue = queue.clone();
            tokio::spawn(async move {
                loop {
                    let Some((t, d)) = queue.lock().expect("queue lock").pop_front() else {
                        return (s, Ok(()));
                    };
                    if let Err(e) = add_keys(&mut s, &t, &d).await {
                        queue.lock().expect("queue lock").clear();
                        return (s, Err(e));
                    }
                }
            })
        })
        .collect();
    let mut out = Vec::new();
    let mut first_err = None;
    for h in handles {
        let (s, r) = h.await.expect("a key-adding task panicked");
        out.push(s);
        if let Err(e) = r {
            first_err.get_or_insert(e);
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

async fn add_keys(s: &mut Session, t: &Table, d: &Deferred) -> Result<(), MysqlError> {
    let what = format!("adding the secondary keys of {}", t.qualified());
    let existing = s
        .column(
            &format!(
                "SELECT DISTINCT INDEX_NAME FROM information_schema.STATISTICS \
                 WHERE TABLE_SCHEMA = {} AND TABLE_NAME = {}",
                quote::string(&t.db),
                quote::string(&t.name)
            ),
            &what,
        )
        .await?;
    if let Some(sql) = d.alter_sql(t, &existing) {
        if s.is_single_statements() {
            // The keys are lines of the image's CREATE TABLE: the ALTER must be one
            // statement on this table, whatever those lines hold.
            let e = amsu_mysql::statement::Expected::AlterTable {
                db: &t.db,
                name: &t.name,
            };
            amsu_mysql::statement::check(&sql, &e)
                .map_err(|err| s.unexpected(&what, format!("refused: {err}")))?;
        }
        tracing::debug!(table = %t.qualified(), "adding deferred keys");
        s.exec_one(&sql, &what).await?;
    }
    Ok(())
}

/// Fails when the statement just run on `s` (a `LOAD DATA` of a chunk) left warnings:
/// the server changed a value on the way in (truncated, converted, clipped), so the copy
/// would not be exact. Notes are ignored. The error quotes the first warnings.
pub(crate) async fn check_no_warnings(s: &mut Session, what: &str) -> Result<(), MysqlError> {
    if s.warning_count() == 0 {
        return Ok(());
    }
    let rows = s.rows("SHOW WARNINGS LIMIT 5", "reading warnings").await?;
    let warnings: Vec<String> = rows
        .iter()
        .map(|r| {
            let f = |i: usize| r.text(i).unwrap_or_default();
            (f(0), f(1), f(2))
        })
        .filter(|(level, _, _)| !level.eq_ignore_ascii_case("Note"))
        .map(|(level, code, msg)| {
            let msg: String = msg.chars().take(200).collect();
            format!("{level} {code}: {msg}")
        })
        .collect();
    if warnings.is_empty() {
        return Ok(());
    }
    Err(s.unexpected(
        what,
        format!(
            "the replica changed values while loading (the copy would not be exact): {}",
            warnings.join("; ")
        ),
    ))
}

/// Like [`check_no_warnings`] for a `LOAD DATA` into `t`, which loads ENUM columns by
/// index: an index of 0 (the error value `''` that a non-strict insert stores on the
/// master) can only be written with a "Data truncated" warning for that column, which is
/// expected and allowed. Every other warning fails the load, and so do more warnings than
/// the server keeps (`max_error_count`), since those could not be checked.
pub(crate) async fn check_load_warnings(
    s: &mut Session,
    t: &Table,
    what: &str,
) -> Result<(), MysqlError> {
    let count = s.warning_count();
    if count == 0 {
        return Ok(());
    }
    let enums: Vec<String> = t
        .copied_columns()
        .filter(|c| c.data_type == "enum")
        .map(|c| format!("Data truncated for column '{}' at row ", c.name))
        .collect();
    if enums.is_empty() {
        return check_no_warnings(s, what).await;
    }
    let rows = s.rows("SHOW WARNINGS", "reading warnings").await?;
    let unexpected: Vec<String> = rows
        .iter()
        .map(|r| {
            let f = |i: usize| r.text(i).unwrap_or_default();
            (f(0), f(1), f(2))
        })
        .filter(|(level, code, msg)| {
            let expected = level.eq_ignore_ascii_case("Note")
                || (code == "1265" && enums.iter().any(|e| msg.starts_with(e.as_str())));
            !expected
        })
        .take(5)
        .map(|(level, code, msg)| {
            let msg: String = msg.chars().take(200).collect();
            format!("{level} {code}: {msg}")
        })
        .collect();
    if !unexpected.is_empty() {
        return Err(s.unexpected(
            what,
            format!(
                "the replica changed values while loading (the copy would not be exact): {}",
                unexpected.join("; ")
            ),
        ));
    }
    if (count as usize) > rows.len() {
        return Err(s.unexpected(
            what,
            format!(
                "{count} warnings, more than the {} the server keeps: they cannot all be checked",
                rows.len()
            ),
        ));
    }
    Ok(())
}

/// Gives the (freshly created) sequences the state they had on the master.
pub(crate) async fn restore_sequences(
    s: &mut Session,
    states: &[SequenceState],
) -> Result<(), MysqlError> {
    for st in states {
        let what = format!(
            "restoring the state of sequence {}",
            quote::qualified(&st.db, &st.name)
        );
        for sql in st.restore_sql() {
            s.exec_one(&sql, &what).await?;
        }
    }
    Ok(())
}

async fn with_object_session(s: &mut Session, o: &SchemaObject) -> Result<(), MysqlError> {
    s.exec(
        &format!("USE {}", quote::ident(&o.db)),
        "selecting the database",
    )
    .await?;
    if let Some(m) = &o.sql_mode {
        s.exec(
            &format!("SET SESSION sql_mode = {}", quote::string(m)),
            "setting the object's sql_mode",
        )
        .await?;
    }
    if let Some(cs) = &o.character_set_client {
        s.exec(
            &format!("SET SESSION character_set_client = {}", quote::string(cs)),
            "setting the object's character_set_client",
        )
        .await?;
    }
    if let Some(c) = &o.collation_connection {
        s.exec(
            &format!("SET SESSION collation_connection = {}", quote::string(c)),
            "setting the object's collation_connection",
        )
        .await?;
    }
    if let Some(tz) = &o.time_zone {
        s.exec(
            &format!("SET SESSION time_zone = {}", quote::string(tz)),
            "setting the event's time_zone",
        )
        .await?;
    }
    Ok(())
}

async fn reset_session(s: &mut Session) -> Result<(), MysqlError> {
    for sql in SESSION_SETUP.iter().chain(LOAD_SESSION) {
        s.exec(sql, sql).await?;
    }
    Ok(())
}

async fn create_object(
    s: &mut Session,
    o: &SchemaObject,
    flavor: Flavor,
) -> Result<(), MysqlError> {
    create_object_as(s, o, &o.create_sql, flavor).await
}

/// Creates `o` with the statement `sql` (its own, or a stand-in of a view).
async fn create_object_as(
    s: &mut Session,
    o: &SchemaObject,
    sql: &str,
    flavor: Flavor,
) -> Result<(), MysqlError> {
    // A resumed restore may find the object made by the interrupted run: replace it.
    let kind = o.kind.keyword();
    let qualified = quote::qualified(&o.db, &o.name);
    // The object's own sql_mode first: packages exist only under sql_mode=ORACLE.
    with_object_session(s, o).await?;
    s.exec(
        &format!("DROP {kind} IF EXISTS {qualified}"),
        &format!("replacing {kind} {qualified}"),
    )
    .await?;
    let what = format!("creating {kind} {qualified}");
    // An event must not run on a replica: replication brings its effects. Created
    // `DISABLE ON SLAVE` in the statement itself where its head allows (ALTER EVENT would
    // make the loading user its definer); a disabled one stays plainly disabled.
    let replica_event = o.kind == ObjectKind::Event && flavor == Flavor::MariaDb && !o.disabled;
    let slave_disabled = replica_event
        .then(|| disabled_on_slave(&o.name, sql))
        .flatten();
    let r = s
        .exec_one(slave_disabled.as_deref().unwrap_or(sql), &what)
        .await;
    let r = match r {
        Ok(()) if replica_event && slave_disabled.is_none() => {
            // An event must not run on a replica: replication brings its effects. (A
            // disabled one stays plainly disabled, as on the master.)
            s.exec(
                &format!("ALTER EVENT {qualified} DISABLE ON SLAVE"),
                "disabling the event on the replica",
            )
            .await
        }
        other => other,
    };
    reset_session(s).await?;
    r
}

/// `SHOW CREATE EVENT` text of event `name` with its status `ENABLE` turned into
/// `DISABLE ON SLAVE`. Only the server-written head is changed: the status is the first
/// ` PRESERVE ENABLE ` after the quoted name and `ON SCHEDULE` (the schedule holds no
/// text of the user's). `None` when the head is not of that form.
fn disabled_on_slave(name: &str, sql: &str) -> Option<String> {
    let quoted = [
        quote::ident(name),
        format!("\"{}\"", name.replace('"', "\"\"")),
    ];
    let after_name = quoted.iter().find_map(|q| {
        let head = format!(" EVENT {q} ON SCHEDULE ");
        sql.find(&head).map(|at| at + head.len())
    })?;
    let status = " PRESERVE ENABLE ";
    let Some(found) = sql[after_name..].find(status) else {
        // Already so on the master (it was a replica itself).
        return sql[after_name..]
            .contains(" PRESERVE DISABLE ON SLAVE ")
            .then(|| sql.to_string());
    };
    let at = after_name + found;
    Some(format!(
        "{} PRESERVE DISABLE ON SLAVE {}",
        &sql[..at],
        &sql[at + status.len()..]
    ))
}

/// The statement of view `o` with `SQL SECURITY INVOKER` in place of `SQL SECURITY
/// DEFINER`: the stand-in used while views over it are created when its definer exists
/// nowhere. Only the server-written head of `SHOW CREATE VIEW` (before ` VIEW `) is
/// changed; `None` when that head is not of the expected form.
fn invoker_stand_in(o: &SchemaObject) -> Option<String> {
    let head_end = o.create_sql.find(" VIEW ")?;
    let head = &o.create_sql[..head_end];
    let at = head.find(" SQL SECURITY DEFINER")?;
    Some(format!(
        "{} SQL SECURITY INVOKER{}",
        &o.create_sql[..at],
        &o.create_sql[at + " SQL SECURITY DEFINER".len()..]
    ))
}

/// Creates `objects` in the given order, retrying those that fail until a round makes no
/// progress: views whose underlying views are not there yet, triggers `PRECEDES` one
/// that comes later in the order.
///
/// A view whose definer exists nowhere (dropped on the master after the view was made)
/// is created exactly as on the master (MariaDB allows that, with a note), but a view
/// over it cannot be created while it is so: the server checks the inner view's definer
/// and fails with `ER_NO_SUCH_USER`. When a round stalls on that, those inner views are
/// replaced by `SQL SECURITY INVOKER` stand-ins, the stalled views are created, and the
/// inner views are put back as they were.
async fn create_with_retries(
    s: &mut Session,
    mut objects: Vec<&SchemaObject>,
    flavor: Flavor,
) -> Result<(), MysqlError> {
    let mut orphans: Vec<&SchemaObject> = Vec::new();
    let mut swapped = false;
    while !objects.is_empty() {
        let mut left = Vec::new();
        let mut last_err = None;
        for o in &objects {
            match create_object(s, o, flavor).await {
                Ok(()) => {
                    if o.kind == ObjectKind::View && definer_missing(s, o).await? {
                        orphans.push(o);
                    }
                }
                Err(e) => {
                    last_err = Some(e);
                    left.push(*o);
                }
            }
        }
        if left.len() == objects.len() {
            let e = last_err.expect("an object failed");
            if swapped || orphans.is_empty() || e.server_code() != Some(codes::NO_SUCH_USER) {
                return Err(e);
            }
            swapped = true;
            for o in &orphans {
                if let Some(sql) = invoker_stand_in(o) {
                    create_object_as(s, o, &sql, flavor).await?;
                }
            }
            let stalled = std::mem::take(&mut left);
            let r = Box::pin(create_with_retries(s, stalled, flavor)).await;
            for o in &orphans {
                create_object(s, o, flavor).await?;
            }
            r?;
        }
        objects = left;
    }
    Ok(())
}

/// True when the definer of view `o`, just created, exists nowhere on the server (the
/// creation left the note `ER_NO_SUCH_USER`).
async fn definer_missing(s: &mut Session, o: &SchemaObject) -> Result<bool, MysqlError> {
    let row = s
        .rows(
            &format!(
                "SELECT COUNT(*) FROM information_schema.VIEWS v WHERE v.TABLE_SCHEMA = {} \
                 AND v.TABLE_NAME = {} AND v.SECURITY_TYPE = 'DEFINER' AND NOT EXISTS \
                 (SELECT 1 FROM mysql.user u WHERE CONCAT(u.User, '@', u.Host) = v.DEFINER)",
                quote::string(&o.db),
                quote::string(&o.name)
            ),
            "checking the definer of a view",
        )
        .await?;
    Ok(row
        .first()
        .and_then(|r| r.text(0))
        .is_some_and(|n| n != "0"))
}

async fn create_routines(
    s: &mut Session,
    objects: &[SchemaObject],
    flavor: Flavor,
) -> Result<(), MysqlError> {
    let of = |kind: ObjectKind| objects.iter().filter(move |o| o.kind == kind);
    for o in of(ObjectKind::Package)
        .chain(of(ObjectKind::PackageBody))
        .chain(of(ObjectKind::Procedure))
        .chain(of(ObjectKind::Function))
    {
        create_object(s, o, flavor).await?;
    }
    Ok(())
}

async fn create_views_triggers_events(
    s: &mut Session,
    objects: &[SchemaObject],
    flavor: Flavor,
) -> Result<(), MysqlError> {
    let of = |kind: ObjectKind| objects.iter().filter(move |o| o.kind == kind);
    create_with_retries(s, of(ObjectKind::View).collect(), flavor).await?;
    create_with_retries(s, of(ObjectKind::Trigger).collect(), flavor).await?;
    for o in of(ObjectKind::Event) {
        create_object(s, o, flavor).await?;
    }
    Ok(())
}

/// The account this session is logged in as (`CURRENT_USER()`), as `(user, host)`.
pub(crate) async fn login_account(s: &mut Session) -> Result<Option<(String, String)>, MysqlError> {
    let v = s
        .column("SELECT CURRENT_USER()", "reading the current account")
        .await?;
    Ok(v.first().and_then(|a| {
        let (u, h) = a.rsplit_once('@')?;
        Some((u.to_string(), h.to_string()))
    }))
}

/// `accounts` without the one this session logs in as (`CURRENT_USER()`): amsu never
/// replaces the account it (and the operator) use on the replica; the preflight reports
/// it (`account_kept`).
async fn without_login(s: &mut Session, accounts: &[Account]) -> Result<Vec<Account>, MysqlError> {
    let me = login_account(s).await?;
    Ok(accounts
        .iter()
        .filter(|a| {
            a.is_role
                || Some((a.user.as_str(), a.host.as_str()))
                    != me.as_ref().map(|(u, h)| (u.as_str(), h.as_str()))
        })
        .cloned()
        .collect())
}

/// Everything after the data, in the order the server needs: accounts and roles (the
/// objects name them as definers), packages and routines, the grants (a view over a
/// `SQL SECURITY DEFINER` view is checked against that definer's privileges, and routine
/// grants need the routine), then views, triggers and events, and last the grants that
/// name a view (which only exists then).
pub(crate) async fn create_objects_and_accounts(
    s: &mut Session,
    objects: &[SchemaObject],
    accounts: &[Account],
    flavor: Flavor,
) -> Result<(), MysqlError> {
    let accounts = &without_login(s, accounts).await?;
    create_account_names(s, accounts).await?;
    create_routines(s, objects, flavor).await?;
    let mut later = Vec::new();
    for a in accounts {
        for g in &a.grants {
            if s.exec(g, "applying a grant").await.is_err() {
                later.push((a, g));
            }
        }
    }
    create_views_triggers_events(s, objects, flavor).await?;
    for (a, g) in later {
        let what = format!("applying grants of {}@{}", a.user, a.host);
        s.exec(g, &what).await?;
    }
    restate_accounts(s, accounts).await
}

/// `SHOW GRANTS` repeats the password in its `GRANT USAGE … IDENTIFIED BY PASSWORD`
/// line, and applying it sets the password anew, which ends a `PASSWORD EXPIRE`: each
/// account's own `SHOW CREATE USER` is applied once more as `ALTER USER`, so the
/// account ends exactly as on the master (expiry, lock, limits, TLS).
async fn restate_accounts(s: &mut Session, accounts: &[Account]) -> Result<(), MysqlError> {
    for a in accounts.iter().filter(|a| !a.is_role) {
        if let Some(rest) = a.create_sql.strip_prefix("CREATE USER ") {
            let what = format!("restating account {}", quote::account(&a.user, &a.host));
            s.exec(&format!("ALTER USER {rest}"), &what).await?;
        }
    }
    Ok(())
}

/// Creates roles and accounts without their grants (an account that exists on the
/// replica is replaced, so the replica mirrors the master).
pub(crate) async fn create_account_names(
    s: &mut Session,
    accounts: &[Account],
) -> Result<(), MysqlError> {
    for a in accounts {
        let target = if a.is_role {
            quote::string(&a.user)
        } else {
            quote::account(&a.user, &a.host)
        };
        let drop = if a.is_role {
            format!("DROP ROLE IF EXISTS {target}")
        } else {
            format!("DROP USER IF EXISTS {target}")
        };
        s.exec(&drop, &drop).await?;
        let what = format!("creating account {target}");
        match s.exec_one(&a.create_sql, &what).await {
            Ok(()) => {}
            // MariaDB gives a role's creator the role with ADMIN OPTION; the role may
            // already exist when an earlier account's grants named it.
            Err(e) if e.server_code() == Some(codes::CANNOT_USER) && a.is_role => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(sql: &str) -> SchemaObject {
        SchemaObject {
            kind: ObjectKind::View,
            db: "d".into(),
            name: "v".into(),
            create_sql: sql.into(),
            sql_mode: None,
            character_set_client: None,
            collation_connection: None,
            time_zone: None,
            disabled: false,
        }
    }

    #[test]
    fn an_event_is_created_disabled_on_the_replica_by_its_head_only() {
        let sql = "CREATE DEFINER=`a`@`h` EVENT `e PRESERVE ENABLE ` ON SCHEDULE EVERY 1 HOUR \
                   STARTS '2035-01-01 00:00:00' ON COMPLETION NOT PRESERVE ENABLE COMMENT ' PRESERVE ENABLE ' DO SELECT 1";
        assert_eq!(
            disabled_on_slave("e PRESERVE ENABLE ", sql).as_deref(),
            Some(
                "CREATE DEFINER=`a`@`h` EVENT `e PRESERVE ENABLE ` ON SCHEDULE EVERY 1 HOUR \
                 STARTS '2035-01-01 00:00:00' ON COMPLETION NOT PRESERVE DISABLE ON SLAVE COMMENT ' PRESERVE ENABLE ' DO SELECT 1"
            )
        );
        let ansi = "CREATE DEFINER=\"a\"@\"h\" EVENT \"e\" ON SCHEDULE EVERY 1 DAY ON COMPLETION PRESERVE ENABLE DO x";
        assert_eq!(
            disabled_on_slave("e", ansi).as_deref(),
            Some("CREATE DEFINER=\"a\"@\"h\" EVENT \"e\" ON SCHEDULE EVERY 1 DAY ON COMPLETION PRESERVE DISABLE ON SLAVE DO x")
        );
        assert_eq!(disabled_on_slave("other", sql), None);
        let already = "CREATE DEFINER=`a`@`h` EVENT `e` ON SCHEDULE EVERY 1 DAY ON COMPLETION NOT PRESERVE DISABLE ON SLAVE DO x";
        assert_eq!(disabled_on_slave("e", already).as_deref(), Some(already));
    }

    #[test]
    fn an_orphan_view_stand_in_changes_only_the_security_of_its_head() {
        let v = view("CREATE ALGORITHM=UNDEFINED DEFINER=`g`@`h` SQL SECURITY DEFINER VIEW `v` AS select ' SQL SECURITY DEFINER' AS `x`");
        assert_eq!(
            invoker_stand_in(&v).as_deref(),
            Some("CREATE ALGORITHM=UNDEFINED DEFINER=`g`@`h` SQL SECURITY INVOKER VIEW `v` AS select ' SQL SECURITY DEFINER' AS `x`")
        );
        let inv = view(
            "CREATE ALGORITHM=UNDEFINED DEFINER=`g`@`h` SQL SECURITY INVOKER VIEW `v` AS select 1",
        );
        assert_eq!(invoker_stand_in(&inv), None);
    }
}
