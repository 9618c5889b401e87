use super::*;

#[test]
fn options_defaults_and_setters() {
    let o = SandboxOptions::new("m").base_dir("/x");
    assert_eq!(o.server_id, 1);
    assert!(o.log_bin);
    assert_eq!(o.binlog_format, "ROW");
    assert!(o.extra_options.is_empty());
    assert_eq!(o.startup_timeout, Duration::from_secs(60));
    assert_eq!(o.base_dir, PathBuf::from("/x"));
    let o = o
        .server_id(7)
        .log_bin(false)
        .extra_option("--a=1")
        .extra_option("--b=2");
    assert_eq!((o.server_id, o.log_bin), (7, false));
    assert_eq!(o.extra_options, ["--a=1", "--b=2"]);
    let o = o.extra_options(["--c"]);
    assert_eq!(o.extra_options, ["--c"]);
}

#[test]
fn names() {
    assert!(validate_name("master-1_a.b").is_ok());
    for bad in ["", ".", "..", ".hidden", "a/b", "a b", "ä", &"x".repeat(65)] {
        assert!(
            matches!(validate_name(bad), Err(SandboxError::InvalidName { .. })),
            "{bad:?}"
        );
    }
}

fn args(log_bin: bool, as_root: bool, extra: &[String]) -> Vec<String> {
    server_args(&ServerArgs {
        dir: Path::new("/s/m"),
        datadir: Path::new("/s/m/data"),
        socket: Path::new("/s/m/mysqld.sock"),
        error_log: Path::new("/s/m/error.log"),
        port: 3307,
        server_id: 7,
        log_bin,
        binlog_format: "ROW",
        as_root,
        extra,
    })
}

#[test]
fn server_command_line() {
    let extra = vec!["--innodb-buffer-pool-size=256M".to_string()];
    let a = args(true, true, &extra);
    assert_eq!(a[0], "--no-defaults");
    for want in [
        "--datadir=/s/m/data",
        "--port=3307",
        "--bind-address=127.0.0.1",
        "--socket=/s/m/mysqld.sock",
        "--server-id=7",
        "--tmpdir=/s/m/tmp",
        "--log-bin=/s/m/binlog/mariadb-bin",
        "--user=root",
    ] {
        assert!(a.iter().any(|x| x == want), "{want} missing from {a:?}");
    }
    // Extra options come last, so they override the defaults.
    let default = a.iter().position(|x| x == "--innodb-buffer-pool-size=128M");
    assert!(default.unwrap() < a.len() - 1);
    assert_eq!(a.last().unwrap(), "--innodb-buffer-pool-size=256M");

    let a = args(false, false, &[]);
    assert!(!a.iter().any(|x| x.starts_with("--log-bin")));
    assert!(!a.iter().any(|x| x.starts_with("--user")));
}

#[test]
fn cmdline_check() {
    let d = Path::new("/s/m/data");
    assert!(cmdline_serves_datadir(
        b"/usr/sbin/mariadbd\0--no-defaults\0--datadir=/s/m/data\0",
        d
    ));
    assert!(!cmdline_serves_datadir(
        b"/usr/sbin/mariadbd\0--datadir=/s/other/data\0",
        d
    ));
    assert!(!cmdline_serves_datadir(
        b"/bin/sleep\0--datadir=/s/m/data\0",
        d
    ));
    assert!(!cmdline_serves_datadir(b"", d));
    assert!(!pid_serves_datadir(0, d));
    assert!(!pid_serves_datadir(std::process::id(), d));
}

#[test]
fn tails_and_port_errors() {
    let text: String = (1..=40).map(|i| format!("line {i}\n")).collect();
    let tail = last_lines(&text, 30);
    assert!(tail.starts_with("line 11\n"));
    assert!(tail.ends_with("line 40"));
    assert_eq!(last_lines("a\nb\n", 30), "a\nb");
    assert!(is_addr_in_use(
        "[ERROR] Can't start server: Bind on TCP/IP port. Got error: 98: Address already in use"
    ));
    assert!(!is_addr_in_use("[ERROR] mariadbd: unknown option '--x'"));
    let install = format!(
        "Installing\nERROR: 1051  Unknown table 'mysql.tmp_user_sys'\n{}",
        "advice\n".repeat(40)
    );
    let summary = install_output_summary(&install);
    assert!(summary.starts_with("ERROR: 1051"), "{summary}");
    assert!(summary.ends_with("advice"), "{summary}");
    assert_eq!(install_output_summary("a\nb"), "a\nb");
}

#[test]
fn base_dir_choice() {
    let s = |v: &str| Some(OsString::from(v));
    assert_eq!(base_dir_from(s("/sb"), s("/home/u")), PathBuf::from("/sb"));
    assert_eq!(
        base_dir_from(s(""), s("/home/u")),
        PathBuf::from("/home/u/.amsu/sandboxes")
    );
    assert_eq!(
        base_dir_from(None, None),
        std::env::temp_dir().join("amsu-sandboxes")
    );
}

#[test]
fn missing_binary_says_how_to_install() {
    let e = find_binary(&["no-such-mariadbd"], &[PathBuf::from("/nonexistent")]).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("apt-get install mariadb-server"), "{msg}");
    assert!(msg.contains("no-such-mariadbd"), "{msg}");
}

#[test]
fn manifest_round_trip() {
    let dir = std::env::temp_dir().join(format!("amsu-sandbox-unit-{}", std::process::id()));
    fs::create_dir_all(dir.join("m")).unwrap();
    let info = SandboxInfo {
        name: "m".into(),
        dir: dir.join("m"),
        port: 3307,
        socket: dir.join("m/mysqld.sock"),
        pid: 0,
        datadir: dir.join("m/data"),
        error_log: dir.join("m/error.log"),
        server_id: 7,
        log_bin: true,
        binlog_format: "ROW".into(),
        version: "10.11.19-MariaDB".into(),
        running: true,
    };
    write_manifest(&info).unwrap();
    fs::create_dir_all(dir.join("not-a-sandbox")).unwrap();
    let listed = list(&dir).unwrap();
    // PID 0 is never running, whatever the manifest says.
    assert_eq!(
        listed,
        vec![SandboxInfo {
            running: false,
            ..info
        }]
    );
    assert!(list(dir.join("missing")).unwrap().is_empty());
    fs::remove_dir_all(&dir).unwrap();
}
