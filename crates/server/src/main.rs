//! `strongroom`: the server and its admin command line in one binary.

mod allocator;
mod app;
mod cli;
mod config;
mod encryption;
mod http;
mod logging;
mod maintenance;

use std::process::ExitCode;

fn main() -> ExitCode {
    // Everything the server and its commands create (database, content,
    // audit log, keys, uploads in progress) is for its own account only,
    // whatever umask it was started with.
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    allocator::tune();
    allocator::keep_name();
    match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime.block_on(cli::run()),
        Err(e) => {
            eprintln!("strongroom: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}
