//! Sandbox servers: real `mariadb-install-db` + `mariadbd` on free loopback ports.

use std::net::TcpStream;

use amsu_mysql::sandbox::{list, stop_by_name, Sandbox, SandboxError, SandboxInfo, SandboxOptions};
use mysql_async::prelude::Queryable;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tempfile::TempDir;

/// A TCP connection as `root` with an empty password (never switched to the socket).
async fn tcp_conn(sandbox: &Sandbox) -> mysql_async::Conn {
    let opts = mysql_async::Opts::from_url(&format!("{}?prefer_socket=false", sandbox.url()))
        .expect("sandbox URL parses");
    mysql_async::Conn::new(opts)
        .await
        .unwrap_or_else(|e| panic!("cannot log in to {}: {e}", sandbox.url()))
}

fn pid_alive(pid: u32) -> bool {
    kill(Pid::from_raw(pid as i32), None).is_ok()
}

fn port_open(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// Kills a detached sandbox if a test fails before stopping it.
struct KillOnDrop(SandboxInfo);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if self.0.is_running() {
            let _ = kill(Pid::from_raw(self.0.pid as i32), Signal::SIGKILL);
        }
    }
}

#[tokio::test]
async fn two_sandboxes_at_once_with_and_without_binlog() {
    let base = TempDir::new().unwrap();
    let (a, b) = tokio::join!(
        Sandbox::deploy(
            SandboxOptions::new("binlog-on")
                .base_dir(base.path())
                .server_id(7)
        ),
        Sandbox::deploy(
            SandboxOptions::new("binlog-off")
                .base_dir(base.path())
                .server_id(8)
                .log_bin(false)
                // Then a TCP login can only match root@127.0.0.1, not root@localhost.
                .extra_option("--skip-name-resolve")
        ),
    );
    let mut a = a.unwrap();
    let b = b.unwrap();
    assert_ne!(a.port(), b.port());
    assert_eq!(a.addr().to_string(), a.url());
    assert_eq!(a.url(), format!("mysql://root@127.0.0.1:{}", a.port()));
    assert!(a.dir().join("sandbox.json").is_file());
    assert!(a.error_log().is_file());
    assert!(a.socket().exists());
    assert!(a.datadir().join("mysql").is_dir());
    assert!(a.version().contains("MariaDB"), "{}", a.version());

    // Binary log on, server_id 7, LOCAL INFILE allowed.
    let mut conn = tcp_conn(&a).await;
    let row: (u32, u8, u8, String) = conn
        .query_first("SELECT @@server_id, @@log_bin, @@local_infile, @@binlog_format")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row, (7, 1, 1, "ROW".to_string()));
    let log_bin_basename: String = conn
        .query_first("SELECT @@log_bin_basename")
        .await
        .unwrap()
        .unwrap();
    assert!(
        log_bin_basename.starts_with(&a.dir().display().to_string()),
        "{log_bin_basename}"
    );
    conn.disconnect().await.unwrap();

    // Binary log off; root@127.0.0.1 exists and has every privilege.
    let mut conn = tcp_conn(&b).await;
    let row: (u32, u8, String) = conn
        .query_first("SELECT @@server_id, @@log_bin, CURRENT_USER()")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row, (8, 0, "root@127.0.0.1".to_string()));
    conn.query_drop("CREATE DATABASE d").await.unwrap();
    conn.disconnect().await.unwrap();

    // A restart keeps the port and the data, under a new PID.
    let old_pid = a.pid();
    let port = a.port();
    a.restart().await.unwrap();
    assert_ne!(a.pid(), old_pid);
    assert!(!pid_alive(old_pid));
    assert_eq!(a.port(), port);
    let mut conn = tcp_conn(&a).await;
    let id: Option<u32> = conn.query_first("SELECT @@server_id").await.unwrap();
    assert_eq!(id, Some(7));
    conn.disconnect().await.unwrap();

    // A start on a port someone else took fails with the server's own words.
    a.shutdown().await.unwrap();
    let squatter = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let err = a.start().await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, SandboxError::PortInUse { .. }), "{msg}");
    assert!(msg.contains("Address already in use"), "{msg}");
    assert!(!a.is_started());
    drop(squatter);
    a.start().await.unwrap();
    assert!(a.is_started());

    // stop: the process is gone and the port closed; the files stay.
    let (pid_a, port_a, dir_a) = (a.pid(), a.port(), a.dir().to_path_buf());
    a.stop().await.unwrap();
    assert!(!pid_alive(pid_a));
    assert!(!port_open(port_a));
    assert!(dir_a.join("data").is_dir());

    // drop stops the server as well.
    let (pid_b, port_b) = (b.pid(), b.port());
    drop(b);
    assert!(!pid_alive(pid_b));
    assert!(!port_open(port_b));
}

#[tokio::test]
async fn a_bad_option_fails_with_the_error_log() {
    let base = TempDir::new().unwrap();
    let err = Sandbox::deploy(
        SandboxOptions::new("bad")
            .base_dir(base.path())
            .extra_option("--no-such-option"),
    )
    .await
    .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, SandboxError::ServerExited { .. }), "{msg}");
    assert!(msg.contains("unknown option '--no-such-option'"), "{msg}");
    assert!(msg.contains("error.log"), "{msg}");
    // Nothing is left running, and the failed sandbox is still listed so it can be removed.
    let listed = list(base.path()).unwrap();
    assert_eq!(listed.len(), 1);
    assert!(!listed[0].running);
    assert!(!stop_by_name(base.path(), "bad", true).await.unwrap());
    assert!(!base.path().join("bad").exists());
}

#[tokio::test]
async fn kept_sandbox_is_listed_and_stopped_by_name() {
    let base = TempDir::new().unwrap();
    let sandbox = Sandbox::deploy(
        SandboxOptions::new("kept")
            .base_dir(base.path())
            .server_id(3)
            .detached(true),
    )
    .await
    .unwrap();
    let (pid, port) = (sandbox.pid(), sandbox.port());
    let info = sandbox.keep();
    let _guard = KillOnDrop(info.clone());
    assert!(info.running);
    // The handle is gone, the server is not.
    assert!(pid_alive(pid));
    assert!(port_open(port));

    let listed = list(base.path()).unwrap();
    assert_eq!(listed.len(), 1);
    let l = &listed[0];
    assert_eq!(
        (l.name.as_str(), l.port, l.pid, l.server_id),
        ("kept", port, pid, 3)
    );
    assert!(l.log_bin);
    assert!(l.running);
    assert!(l.version.contains("MariaDB"), "{}", l.version);

    assert!(matches!(
        stop_by_name(base.path(), "other", false).await,
        Err(SandboxError::NotFound { .. })
    ));
    assert!(stop_by_name(base.path(), "kept", false).await.unwrap());
    assert!(!port_open(port));
    // It was our child: reap it, then the PID is gone for good.
    let _ = nix::sys::wait::waitpid(Pid::from_raw(pid as i32), None);
    assert!(!pid_alive(pid));
    let listed = list(base.path()).unwrap();
    assert!(!listed[0].running);
    assert!(base.path().join("kept").is_dir());

    // Stopping a stopped sandbox with `remove` deletes its directory.
    assert!(!stop_by_name(base.path(), "kept", true).await.unwrap());
    assert!(list(base.path()).unwrap().is_empty());
}
