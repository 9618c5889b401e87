//! Loading schema, objects and accounts into the replica. Every statement runs with
//! `sql_log_bin = 0`, so the replica's own binary log never records the copy.

use amsu_core::Flavor;
use amsu_mysql::conn::{text, Session, SESSION_SETUP};
use amsu_mysql::{codes, quote, MysqlError};

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use crate::catalog::{Account, Database, ObjectKind, SchemaObject, SequenceState, Table};
use crate::indexes::{self, Deferred};

/// Session settings for loading on the replica, after amsu's usual ones.
pub const LOAD_SESSION: &[&str] = &[
    "SET SESSION sql_log_bin = 0",
    "SET SESSION foreign_key_checks = 0",
    "SET SESSION character_set_database = binary",
];

/// Prepares a replica session for loading.
pub async fn prepare_session(s: &mut Session) -> Result<(), MysqlError> {
    for sql in LOAD_SESSION {
        s.exec(sql, sql).await?;
    }
    Ok(())
}

/// Creates the databases (an existing empty one is kept and given the master's defaults).
pub async fn create_databases(s: &mut Session, dbs: &[Database]) -> Result<(), MysqlError> {
    for db in dbs {
        let sql = db
            .create_sql
            .replacen("CREATE DATABASE ", "CREATE DATABASE IF NOT EXISTS ", 1)
            .replacen("IF NOT EXISTS /*!32312 IF NOT EXISTS*/", "IF NOT EXISTS", 1);
        s.exec(
            &sql,
            &format!("creating database {}", quote::ident(&db.name)),
        )
        .await?;
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
            s.exec(sql, &format!("creating table {}", t.qualified()))
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
            if let Some(name) = r.as_ref(0).and_then(text) {
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
        tracing::debug!(table = %t.qualified(), "adding deferred keys");
        s.exec(&sql, &what).await?;
    }
    Ok(())
}

/// Fails when the statement just run on `s` (a `LOAD DATA` of a chunk) left warnings:
/// the server changed a value on the way in (truncated, converted, clipped), so the copy
/// would not be exact. Notes are ignored. The error quotes the first warnings.
pub async fn check_no_warnings(s: &mut Session, what: &str) -> Result<(), MysqlError> {
    if s.conn.get_warnings() == 0 {
        return Ok(());
    }
    let rows = s.rows("SHOW WARNINGS LIMIT 5", "reading warnings").await?;
    let warnings: Vec<String> = rows
        .iter()
        .map(|r| {
            let f = |i: usize| r.as_ref(i).and_then(text).unwrap_or_default();
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

/// Gives the (freshly created) sequences the state they had on the master.
pub async fn restore_sequences(
    s: &mut Session,
    states: &[SequenceState],
) -> Result<(), MysqlError> {
    for st in states {
        let what = format!(
            "restoring the state of sequence {}",
            quote::qualified(&st.db, &st.name)
        );
        for sql in st.restore_sql() {
            s.exec(&sql, &what).await?;
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
    // A resumed restore may find the object made by the interrupted run: replace it.
    let kind = match o.kind {
        ObjectKind::View => "VIEW",
        ObjectKind::Procedure => "PROCEDURE",
        ObjectKind::Function => "FUNCTION",
        ObjectKind::Trigger => "TRIGGER",
        ObjectKind::Event => "EVENT",
    };
    let qualified = quote::qualified(&o.db, &o.name);
    s.exec(
        &format!("DROP {kind} IF EXISTS {qualified}"),
        &format!("replacing {kind} {qualified}"),
    )
    .await?;
    with_object_session(s, o).await?;
    let what = format!("creating {:?} {}", o.kind, quote::qualified(&o.db, &o.name));
    let r = s.exec(&o.create_sql, &what).await;
    let r = match r {
        Ok(()) if o.kind == ObjectKind::Event && flavor == Flavor::MariaDb && !o.disabled => {
            // An event must not run on a replica: replication brings its effects. (A
            // disabled one stays plainly disabled, as on the master.)
            s.exec(
                &format!(
                    "ALTER EVENT {} DISABLE ON SLAVE",
                    quote::qualified(&o.db, &o.name)
                ),
                "disabling the event on the replica",
            )
            .await
        }
        other => other,
    };
    reset_session(s).await?;
    r
}

/// Creates `objects` in the given order, retrying those that fail until a round makes no
/// progress: views whose underlying views are not there yet, triggers `PRECEDES` one
/// that comes later in the order.
async fn create_with_retries(
    s: &mut Session,
    mut objects: Vec<&SchemaObject>,
    flavor: Flavor,
) -> Result<(), MysqlError> {
    while !objects.is_empty() {
        let mut left = Vec::new();
        let mut last_err = None;
        for o in &objects {
            if let Err(e) = create_object(s, o, flavor).await {
                last_err = Some(e);
                left.push(*o);
            }
        }
        if left.len() == objects.len() {
            return Err(last_err.expect("an object failed"));
        }
        objects = left;
    }
    Ok(())
}

/// Creates routines (first: views may call functions), then views (in dependency order,
/// found by retrying those whose dependencies are not there yet), triggers (in the
/// master's action order, so that each table's triggers fire in the same order) and
/// events. Call after the data is loaded, so no trigger fires during the load.
pub async fn create_objects(
    s: &mut Session,
    objects: &[SchemaObject],
    flavor: Flavor,
) -> Result<(), MysqlError> {
    let of = |kind: ObjectKind| objects.iter().filter(move |o| o.kind == kind);
    for o in of(ObjectKind::Procedure).chain(of(ObjectKind::Function)) {
        create_object(s, o, flavor).await?;
    }
    create_with_retries(s, of(ObjectKind::View).collect(), flavor).await?;
    create_with_retries(s, of(ObjectKind::Trigger).collect(), flavor).await?;
    for o in of(ObjectKind::Event) {
        create_object(s, o, flavor).await?;
    }
    Ok(())
}

/// Creates roles and accounts (an account that exists on the replica is replaced, so the
/// replica mirrors the master), then applies their grants.
pub async fn create_accounts(s: &mut Session, accounts: &[Account]) -> Result<(), MysqlError> {
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
        match s.exec(&a.create_sql, &what).await {
            Ok(()) => {}
            // MariaDB gives a role's creator the role with ADMIN OPTION; the role may
            // already exist when an earlier account's grants named it.
            Err(e) if e.server_code() == Some(codes::CANNOT_USER) && a.is_role => {}
            Err(e) => return Err(e),
        }
    }
    for a in accounts {
        for g in &a.grants {
            let what = format!("applying grants of {}@{}", a.user, a.host);
            s.exec(g, &what).await?;
        }
    }
    // The loading user should not keep the roles it created.
    Ok(())
}
