//! The `socp` command-line tool.

use clap::Parser;

/// socp: a federated, end-to-end encrypted chat network speaking SOCP v1.3.
///
/// Only the subcommands listed here exist yet; the server, client, demo and
/// bench arrive with their issues.
#[derive(Parser, Debug)]
#[command(name = "socp", version, about)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
}
