//! `facematch`: the command-line client of a facematch gateway — scan files, folders and URLs,
//! look up matches and image status — and `facematch logs`, the listener of the `logs`
//! exchange.

mod cmd;
mod exit;
mod http;
mod inputs;
mod output;
mod ready_file;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::exit::Outcome;

const EXIT_CODES: &str = "\
Exit codes:
  0  every item succeeded
  1  some items failed (refused by the gateway, unreadable, failed to process, unknown hash);
     the others were still done
  2  usage error, or the gateway could not be reached
     (`logs` keeps retrying the broker until Ctrl-C, then exits 0)";

/// Find the other images that contain the same person.
#[derive(Debug, Parser)]
#[command(name = "facematch", version, after_help = EXIT_CODES)]
struct Cli {
    #[command(flatten)]
    gateway: http::GatewayArgs,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Scan image files, folders (recursively) and http(s) URLs.
    #[command(after_help = EXIT_CODES)]
    Scan(cmd::scan::ScanArgs),
    /// Print the names of every other image that shares a face with HASH.
    #[command(after_help = EXIT_CODES)]
    Match(cmd::matches::MatchArgs),
    /// Print what the gateway knows about one image.
    #[command(after_help = EXIT_CODES)]
    Status(cmd::status::StatusArgs),
    /// Print the system's log lines (the `logs` exchange) to stderr until Ctrl-C.
    #[command(after_help = EXIT_CODES)]
    Logs(cmd::logs::LogsArgs),
    /// Erase images (hashes, files hashed locally, or scanned URLs) from the key's collection.
    #[command(after_help = EXIT_CODES)]
    Forget(cmd::forget::ForgetArgs),
    /// Make, list and revoke API keys (needs an admin key), or generate one locally.
    #[command(after_help = EXIT_CODES)]
    Keys(cmd::keys::KeysArgs),
    /// Create, list and delete collections (needs an admin key).
    #[command(after_help = EXIT_CODES)]
    Collections(cmd::collections::CollectionsArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Scan(args) => cmd::scan::run(&cli.gateway, args).await,
        Command::Match(args) => cmd::matches::run(&cli.gateway, args).await,
        Command::Status(args) => cmd::status::run(&cli.gateway, args).await,
        Command::Logs(args) => cmd::logs::run(args).await,
        Command::Keys(args) => cmd::keys::run(&cli.gateway, args).await,
        Command::Forget(args) => cmd::forget::run(&cli.gateway, args).await,
        Command::Collections(args) => cmd::collections::run(&cli.gateway, args).await,
    };
    match result {
        Ok(outcome) => outcome.exit_code(),
        Err(e) => {
            eprintln!("facematch: {e:#}");
            Outcome::Fatal.exit_code()
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }
}
