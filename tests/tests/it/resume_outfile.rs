//! Issue 17: an interrupted `outfile` copy resumes like a `logical` one. `amsu setup
//! --method outfile` (over a real pure-ftpd serving the master's `secure_file_priv`) is
//! killed (`kill -9`) early, in the middle and near the end of its copy while the master
//! takes writes; the rerun keeps the chunks of tables unchanged since their snapshot,
//! copies fewer rows than the whole data, and `verify` finds the replica equal. A table
//! changed after the kill is named and copied again.

use amsu_tests::ftpd::FtpServer;
use amsu_tests::servers::Pair;

use crate::resume_stream::{killed_then_resumed_with, refused_with, servers_with, ITEMS};

/// The servers of the logical tests, the master's `secure_file_priv` served by `ftp`.
async fn servers(ftp: &FtpServer) -> Pair {
    let served = ftp.served.display().to_string();
    servers_with(|o| o.extra_option(format!("--secure-file-priv={served}"))).await
}

/// The method's arguments (the FTP password in a file of the test's directory).
fn outfile_args(p: &Pair, ftp: &FtpServer) -> Vec<String> {
    let pw = p.dir.path().join("ftp-password");
    std::fs::write(&pw, format!("{}\n", ftp.password.expose())).unwrap();
    vec![
        "--method".into(),
        "outfile".into(),
        "--ftp".into(),
        ftp.url(),
        "--ftp-password-file".into(),
        pw.display().to_string(),
    ]
}

async fn killed_then_resumed(fraction: f64) {
    let ftp = FtpServer::plain();
    let p = servers(&ftp).await;
    let args = outfile_args(&p, &ftp);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    killed_then_resumed_with(&p, fraction, &args, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outfile_killed_early_resumes() {
    killed_then_resumed(0.05).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outfile_killed_in_the_middle_resumes() {
    killed_then_resumed(0.5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outfile_killed_at_the_last_chunks_resumes() {
    killed_then_resumed(0.9).await;
}

/// A row change on the big table after the kill: that table is copied again, the
/// others keep their chunks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outfile_changed_table_is_copied_again_others_kept() {
    let ftp = FtpServer::plain();
    let p = servers(&ftp).await;
    let args = outfile_args(&p, &ftp);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = refused_with(
        &p,
        &["UPDATE shop.items SET name = 'changed' WHERE id = 5"],
        "tables changed on the master since the interrupted copy are copied again: `shop`.`items`",
        &args,
    )
    .await;
    assert!(run.copied_rows() >= ITEMS, "shop.items copied again whole");
}
