//! The `kiln` command-line tool.
//!
//! Each subcommand lives in its own module under `commands/` and returns an
//! exit code; errors that are the user's (bad file, bad expression) are
//! printed as one `error:` line and exit with status 2, never a panic.

mod commands;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Learn, search and verify boolean programs from example tables.
#[derive(Debug, Parser)]
#[command(name = "kiln", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Commands,
}

#[derive(Debug, Subcommand)]
enum Commands {
    /// Find a minimum-size circuit matching a CSV table by exhaustive search.
    Search(commands::search::SearchArgs),
    /// Check a program against every row of a CSV table.
    Verify(commands::verify::VerifyArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Commands::Search(args) => commands::search::run(&args),
        Commands::Verify(args) => commands::verify::run(&args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(msg) => {
            eprintln!("error: {msg}");
            ExitCode::from(2)
        }
    }
}
