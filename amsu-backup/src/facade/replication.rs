//! How a replica replicates from its master: one value shared by a setup
//! ([`SetupConfig::replication`](super::SetupConfig::replication)) and the replication
//! start of a restore ([`StartReplication`](super::StartReplication)).

use std::fmt;
use std::path::PathBuf;

use amsu_core::{
    BoxError, LoginCheck, MasterServer, Positioning, ReplicationTls, Secret, ServerAddr,
    SetupOptions,
};

/// The replication settings of a setup or of a restore's replication start: the
/// replication user and its passwords, the master's host as the replica reaches it, TLS,
/// GTID or file-and-position positioning, and the journal. Build it with
/// [`ReplicationSettings::new`] and the by-value setters; each documents its default.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplicationSettings {
    repl_user: String,
    repl_password: Option<Secret>,
    new_repl_password: Option<Secret>,
    master_host_for_replica: Option<String>,
    tls: ReplicationTls,
    positioning: Positioning,
    journal: Option<PathBuf>,
}

impl fmt::Debug for ReplicationSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The replication passwords are not shown.
        f.debug_struct("ReplicationSettings")
            .field("repl_user", &self.repl_user)
            .field("master_host_for_replica", &self.master_host_for_replica)
            .field("positioning", &self.positioning)
            .field("journal", &self.journal)
            .finish_non_exhaustive()
    }
}

impl Default for ReplicationSettings {
    fn default() -> Self {
        Self::new()
    }
}

impl ReplicationSettings {
    /// The defaults: replication user `amsu_repl` with a generated password, the master
    /// URL's host, file and position replication without TLS, the journal at
    /// [`default_journal_path`](super::default_journal_path) of the replica.
    pub fn new() -> Self {
        ReplicationSettings {
            repl_user: "amsu_repl".into(),
            repl_password: None,
            new_repl_password: None,
            master_host_for_replica: None,
            tls: ReplicationTls::default(),
            positioning: Positioning::FilePosition,
            journal: None,
        }
    }

    /// The replication user (created when missing). Default: `amsu_repl`.
    pub fn repl_user(mut self, user: impl Into<String>) -> Self {
        self.repl_user = user.into();
        self
    }

    /// The replication user's password, when it exists already (or to create it with).
    /// Default: none.
    pub fn repl_password(mut self, password: Option<Secret>) -> Self {
        self.repl_password = password;
        self
    }

    /// The password to create a missing replication user with. Default: generated.
    pub fn new_repl_password(mut self, password: Option<Secret>) -> Self {
        self.new_repl_password = password;
        self
    }

    /// The master's host name as the replica reaches it. Default: the master URL's host.
    pub fn master_host_for_replica(mut self, host: Option<String>) -> Self {
        self.master_host_for_replica = host;
        self
    }

    /// TLS of the replication connection. Default: none.
    pub fn tls(mut self, tls: ReplicationTls) -> Self {
        self.tls = tls;
        self
    }

    /// File and position, or GTID, replication. Default: file and position.
    pub fn positioning(mut self, positioning: Positioning) -> Self {
        self.positioning = positioning;
        self
    }

    /// Where the journal is kept. Default: [`default_journal_path`](super::default_journal_path)
    /// of the replica.
    pub fn journal(mut self, path: Option<PathBuf>) -> Self {
        self.journal = path;
        self
    }

    /// The replication user.
    pub fn user(&self) -> &str {
        &self.repl_user
    }

    /// The replication positioning.
    pub(crate) fn positioning_of(&self) -> Positioning {
        self.positioning
    }

    /// The journal given, if any.
    pub(crate) fn journal_given(&self) -> Option<&PathBuf> {
        self.journal.as_ref()
    }

    /// `options` with these settings, for a replica of `master`.
    pub(crate) fn apply(&self, master: &ServerAddr, options: SetupOptions) -> SetupOptions {
        options
            .master_host(
                self.master_host_for_replica
                    .clone()
                    .unwrap_or_else(|| master.host.clone()),
            )
            .repl_user(self.repl_user.clone())
            .repl_password(self.repl_password.clone())
            .new_repl_password(self.new_repl_password.clone())
            .tls(self.tls.clone())
            .positioning(self.positioning)
    }
}

/// The replication user on the master, as [`check_repl_user`] found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReplUser {
    /// The password logs in as the user: replicate with it.
    LogsIn,
    /// The user does not exist: create it (`'user'@'%'`, REPLICATION SLAVE only) with the
    /// password, before the setups that replicate as it.
    Missing,
}

/// Why [`check_repl_user`] refuses; nothing was changed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ReplUserError {
    /// The user exists and the password (if any) does not log in as it: a setup would
    /// stop at its preflight (`repl_user_password`). Its password is needed, or another
    /// user; dropping it would stop the replicas that replicate as it.
    NoPassword {
        /// The user.
        user: String,
        /// True when a password was given (and does not log in).
        password_given: bool,
    },
    /// The master could not be asked.
    Check(BoxError),
}

impl fmt::Display for ReplUserError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplUserError::NoPassword {
                user,
                password_given,
            } => write!(
                f,
                "the replication user '{user}' {}",
                if *password_given {
                    "exists but the given password does not log in"
                } else {
                    "exists and no password for it was given"
                }
            ),
            ReplUserError::Check(e) => write!(f, "{e}"),
        }
    }
}

/// The message of [`ReplUserError::Check`] is its cause's.
impl std::error::Error for ReplUserError {}

/// Before anything changes, what the replication `user` is on the master (asked through
/// `master`): [`ReplUser::LogsIn`] when `password` logs in as it, [`ReplUser::Missing`]
/// when it does not exist, else [`ReplUserError::NoPassword`]. The same decision as a
/// setup's preflight, for a caller that creates the user once for several replicas (a
/// fan-out restore with its replication start).
pub async fn check_repl_user(
    master: &dyn MasterServer,
    user: &str,
    password: Option<&Secret>,
) -> Result<ReplUser, ReplUserError> {
    if let Some(pw) = password {
        if master
            .check_login(user, pw)
            .await
            .map_err(ReplUserError::Check)?
            == LoginCheck::Ok
        {
            return Ok(ReplUser::LogsIn);
        }
    }
    if master
        .user_exists(user)
        .await
        .map_err(ReplUserError::Check)?
    {
        return Err(ReplUserError::NoPassword {
            user: user.to_string(),
            password_given: password.is_some(),
        });
    }
    Ok(ReplUser::Missing)
}

#[cfg(test)]
mod tests {
    use super::*;
    use amsu_core::MockMasterServer;

    fn master(login: LoginCheck, exists: bool) -> MockMasterServer {
        let mut m = MockMasterServer::new();
        m.expect_check_login().returning(move |_, _| Ok(login));
        m.expect_user_exists().returning(move |_| Ok(exists));
        m.expect_create_replication_user().never();
        m
    }

    /// A working password is used, a missing user is to be created, an existing user
    /// without a working password is refused; nothing is changed on the master.
    #[tokio::test]
    async fn the_replication_user_is_used_created_or_refused() {
        let pw = Secret::new("pw");
        let m = master(LoginCheck::Ok, true);
        assert_eq!(
            check_repl_user(&m, "repl", Some(&pw)).await.unwrap(),
            ReplUser::LogsIn
        );
        let m = master(LoginCheck::Denied, false);
        assert_eq!(
            check_repl_user(&m, "repl", Some(&pw)).await.unwrap(),
            ReplUser::Missing
        );
        assert_eq!(
            check_repl_user(&m, "repl", None).await.unwrap(),
            ReplUser::Missing
        );
        let m = master(LoginCheck::Denied, true);
        let e = check_repl_user(&m, "repl", Some(&pw)).await.unwrap_err();
        assert!(
            matches!(
                &e,
                ReplUserError::NoPassword {
                    password_given: true,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(
            e.to_string().contains("given password does not log in"),
            "{e}"
        );
        let e = check_repl_user(&m, "repl", None).await.unwrap_err();
        assert!(
            e.to_string().contains("no password for it was given"),
            "{e}"
        );
    }
}
