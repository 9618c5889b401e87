//! Proving that master and replica are two different servers, before anything changes.
//!
//! A replica URL that names the master itself (`127.0.0.1`, `localhost`, a socket, or
//! another name of the same host) would make amsu reconfigure — or, with `--force`,
//! empty — the master. Several independent signals are read, and any one of them that
//! says "same" refuses the setup (not overridable by `--force`):
//!
//! 1. **A token.** The replica adapter takes a user-level lock with a random name on one
//!    of its sessions; the master adapter asks whether any session holds that lock. Only
//!    the same server can see it. This is the decisive signal: it needs no assumption
//!    about host names, ports, containers or proxies.
//! 2. **`@@server_uuid`** (MySQL), when both servers have one and they are equal.
//! 3. **Host name, port, data directory, `server_id` and binary log state** all equal.
//!
//! A replica that is itself a replica *source* of the given master (the master replicates
//! from it) is refused too: the replica's `SHOW SLAVE HOSTS` lists the master's
//! `server_id`.

use crate::FindingCode;
use crate::{
    BoxError, Finding, LockOutcome, MasterServer, ReplicaServer, Role, Secret, ServerIdentity,
};

/// Proves that `master` and `replica` are different servers (see [`same_server`]):
/// `Some` blocking finding (`same_server`) when they are one, or when the replica feeds
/// the master. Changes nothing: the token is a user-level lock with a random name, taken
/// and released on the replica. `Setup` runs it before anything else; `amsu check` and
/// `amsu restore` run it too.
pub async fn distinct_servers(
    master: &dyn MasterServer,
    replica: &dyn ReplicaServer,
) -> Result<Option<Finding>, BoxError> {
    let token = format!("amsu_identity_{}", Secret::generate().expose());
    let seen = match replica.hold_lock(&token).await? {
        LockOutcome::Acquired => {
            let seen = master.lock_in_use(&token).await;
            replica.release_lock(&token).await?;
            seen?
        }
        // Nobody else can know a fresh random name: a server that says it is taken
        // cannot be trusted to tell the two apart.
        LockOutcome::HeldBy(who) => {
            return Err(format!("the identity token lock is already held by {who}").into())
        }
    };
    let (m, r) = (master.identity().await?, replica.identity().await?);
    Ok(same_server(&m, &r, seen).map(|why| {
        Finding::blocking(
            Role::Replica,
            FindingCode::SameServer,
            format!(
                "the master and the replica URL reach the same server ({why}); amsu would reconfigure or empty the master"
            ),
            "give the replica's own address (another port or socket) as the replica; this cannot be overridden",
        )
    }))
}

/// Why two servers were found to be one (or in a replication circle), in words; `None`
/// when every signal says they are different. Pure.
pub fn same_server(
    master: &ServerIdentity,
    replica: &ServerIdentity,
    token_seen: bool,
) -> Option<String> {
    if token_seen {
        return Some(
            "a lock taken on the replica's connection is visible from the master's connection: both URLs reach the same server".into(),
        );
    }
    if let (Some(a), Some(b)) = (&master.server_uuid, &replica.server_uuid) {
        if !a.is_empty() && a == b {
            return Some(format!("both servers have @@server_uuid {a}"));
        }
    }
    if master.hostname == replica.hostname
        && master.port == replica.port
        && master.datadir == replica.datadir
        && master.server_id == replica.server_id
        && master.binlog == replica.binlog
    {
        return Some(format!(
            "both report host name {}, port {}, data directory {}, server_id {} and the same binary log state",
            master.hostname, master.port, master.datadir, master.server_id
        ));
    }
    if master.server_id != 0 && replica.replica_ids.contains(&master.server_id) {
        return Some(format!(
            "the master (server_id {}) is itself connected to the replica as a replica: making the replica replicate from it would make a circle",
            master.server_id
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(host: &str, port: u16, dir: &str) -> ServerIdentity {
        ServerIdentity::new(host, port, dir)
            .server_id(1)
            .binlog(Some("0-1-5".into()))
    }

    #[test]
    fn the_token_alone_decides() {
        let m = id("db1", 3306, "/var/lib/mysql/");
        let r = id("db2", 3307, "/srv/mysql/").server_id(2);
        assert!(same_server(&m, &r, true).is_some());
        assert!(same_server(&m, &r, false).is_none());
    }

    #[test]
    fn equal_fingerprints_are_one_server() {
        let m = id("db1", 3306, "/var/lib/mysql/");
        let why = same_server(&m, &m.clone(), false).expect("same");
        assert!(why.contains("db1"), "{why}");
        // One differing part (another port on the same host) makes them two.
        let r = id("db1", 3307, "/var/lib/mysql/");
        assert!(same_server(&m, &r, false).is_none());
    }

    #[test]
    fn equal_server_uuids_are_one_server() {
        let m = id("a", 1, "/a/").server_uuid(Some("u-1".into()));
        let r = id("b", 2, "/b/")
            .server_uuid(Some("u-1".into()))
            .server_id(7);
        assert!(same_server(&m, &r, false).is_some());
        let r = r.server_uuid(Some("u-2".into()));
        assert!(same_server(&m, &r, false).is_none());
    }

    #[test]
    fn a_replica_that_feeds_the_master_is_refused() {
        let m = id("a", 1, "/a/").server_id(10);
        let r = id("b", 2, "/b/").server_id(20).replica_ids(vec![10]);
        let why = same_server(&m, &r, false).expect("circle");
        assert!(why.contains("circle"), "{why}");
    }
}
