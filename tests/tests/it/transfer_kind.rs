//! A failed backup or restore says in its JSON `error` line that the image store refused
//! it (`cause`: `authentication`) — for S3 (Garage) and FTP (pure-ftpd), from the typed
//! transfer error, with no secret in the output.

use amsu_tests::ftpd::FtpServer;
use amsu_tests::garage::Garage;
use amsu_tests::servers::{amsu_output, create_bank, pair, Output};

/// The `error` object of the JSON `error` line of `out`.
fn error_line(out: &Output) -> serde_json::Value {
    let line = out
        .stdout
        .lines()
        .find(|l| l.contains("\"event\":\"error\""))
        .unwrap_or_else(|| panic!("no error line: {}", out.text()));
    serde_json::from_str::<serde_json::Value>(line).unwrap()["error"].clone()
}

/// A credentials file holding the right key id with a wrong secret.
fn wrong_secret(g: &Garage, dir: &std::path::Path) -> String {
    let p = dir.join("wrong-credentials");
    std::fs::write(
        &p,
        format!(
            "[default]\naws_access_key_id = {}\naws_secret_access_key = not-{}\n",
            g.key_id,
            g.secret.expose()
        ),
    )
    .unwrap();
    p.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_s3_and_ftp_credentials_are_an_authentication_error() {
    let g = Garage::single();
    let p = pair(|o| o, |o| o).await;
    create_bank(&p.master.addr(), "bank", 500).await;
    let dir = tempfile::tempdir().unwrap();
    let url = g.url("kind/img");
    let endpoint = g.endpoint(0);
    let good = g.credentials_file().display().to_string();
    let bad = wrong_secret(&g, dir.path());
    let home = p.dir.path().join("home");
    let home = home.to_str().unwrap();
    let env = [("AMSU_HOME", home)];
    let s3 = |creds: &str| -> Vec<String> {
        [
            "--s3-endpoint",
            &endpoint,
            "--s3-region",
            &g.region,
            "--s3-path-style",
            "--s3-credentials-file",
            creds,
            "--json",
        ]
        .map(String::from)
        .to_vec()
    };
    let run = |mut args: Vec<String>, extra: Vec<String>| {
        args.extend(extra);
        async move {
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            amsu_output(&a, &env).await
        }
    };
    let master = p.master.url();
    let backup = |out: &str| {
        ["backup", "--master", &master, "--out", out]
            .map(String::from)
            .to_vec()
    };

    // A backup to S3 with a wrong secret: refused by the store.
    let out = run(backup(&url), s3(&bad)).await;
    assert_eq!(out.code, Some(1), "{}", out.text());
    let e = error_line(&out);
    assert_eq!(e["cause"], "authentication", "{}", out.text());
    assert!(!out.text().contains(g.secret.expose()), "{}", out.text());

    // A good image, then a restore from it with a wrong secret.
    let out = run(backup(&url), s3(&good)).await;
    assert_eq!(out.code, Some(0), "{}", out.text());
    let replica = p.replica.url();
    let restore = ["restore", "--image", &url, "--replica", &replica]
        .map(String::from)
        .to_vec();
    let out = run(restore, s3(&bad)).await;
    assert_ne!(out.code, Some(0), "{}", out.text());
    let e = error_line(&out);
    assert_eq!(e["cause"], "authentication", "{}", out.text());
    assert!(!out.text().contains(g.secret.expose()), "{}", out.text());

    // FTP: a wrong password.
    let ftp = FtpServer::plain();
    let pw = dir.path().join("ftp-password");
    std::fs::write(&pw, "not-the-password\n").unwrap();
    let out = run(
        backup(&format!("{}img", ftp.url())),
        ["--ftp-password-file", pw.to_str().unwrap(), "--json"]
            .map(String::from)
            .to_vec(),
    )
    .await;
    assert_ne!(out.code, Some(0), "{}", out.text());
    let e = error_line(&out);
    assert_eq!(e["cause"], "authentication", "{}", out.text());
}
