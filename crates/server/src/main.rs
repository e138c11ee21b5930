//! `strongroom`: the server and its admin command line in one binary.

mod app;
mod cli;
mod config;
mod encryption;
mod http;
mod logging;
mod maintenance;

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    cli::run().await
}
