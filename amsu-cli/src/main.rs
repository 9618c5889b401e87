//! The `amsu` binary: parse, run, map the outcome to an exit code.

use clap::Parser;

#[tokio::main]
async fn main() {
    let cli = amsu_cli::Cli::parse();
    std::process::exit(amsu_cli::run(cli).await);
}
