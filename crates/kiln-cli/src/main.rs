//! The `kiln` command-line tool.
//!
//! Each subcommand lives in its own module under `commands/` and returns an
//! exit code; errors that are the user's (bad file, bad expression) are
//! printed as one `error:` line and exit with status 2, never a panic.

mod commands;
mod output;
mod report;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use output::errln;

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
    /// Learn a circuit from examples by gradient descent and fire it into gates: exact on a truth table, or generalising from samples (PLA, wide CSV, --valid).
    Learn(commands::learn::LearnArgs),
    /// Walk through the lecture: units learn gates, XOR by composition, verification, gradient vs discrete search.
    Demo(commands::demo::DemoArgs),
    /// Resynthesise a circuit (cut rewriting with optimum 4-input subcircuits, resubstitution, SAT-based window and whole-function resynthesis) without changing its function.
    Optimise(commands::optimise::OptimiseArgs),
    /// Accuracy of a program (AIGER, BLIF, grammar or JSON) on a PLA or CSV sample file.
    Eval(commands::eval::EvalArgs),
    /// Draw a circuit (AIGER, BLIF, grammar or JSON) as SVG or Graphviz DOT: inputs left, outputs right, gates by level.
    Show(commands::show::ShowArgs),
    /// Write the self-contained HTML report of a run saved with `kiln learn FILE --json` (truth table or samples).
    Report(commands::report::ReportArgs),
    /// Benchmark gradient search against discrete search on the built-in tables.
    #[command(name = "bench-pbe")]
    BenchPbe(commands::bench::BenchArgs),
    /// Run the IWLS 2020 learning-from-examples suite: learn each exNN within the AND budget, write exNN.aig, report accuracy.
    #[command(name = "bench-iwls")]
    BenchIwls(commands::bench_iwls::BenchIwlsArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    let result = match cli.command {
        Commands::Search(args) => commands::search::run(&args),
        Commands::Verify(args) => commands::verify::run(&args),
        Commands::Learn(args) => commands::learn::run(&args),
        Commands::Demo(args) => commands::demo::run(&args),
        Commands::Eval(args) => commands::eval::run(&args),
        Commands::Show(args) => commands::show::run(&args),
        Commands::Optimise(args) => commands::optimise::run(&args),
        Commands::Report(args) => commands::report::run(&args),
        Commands::BenchPbe(args) => commands::bench::run(&args),
        Commands::BenchIwls(args) => commands::bench_iwls::run(&args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(msg) => {
            errln!("error: {msg}");
            ExitCode::from(2)
        }
    }
}

/// Help and version go to stdout as usual; a usage mistake becomes one
/// `error:` line on stderr (clap's first paragraph, joined) and status 2.
fn usage_error(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = e.print();
        return ExitCode::from(if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
            2
        } else {
            0
        });
    }
    let text = e.render().to_string();
    let first: Vec<&str> = text.lines().take_while(|l| !l.trim().is_empty()).map(str::trim).collect();
    let line = first.join(" ");
    let line = line.strip_prefix("error: ").unwrap_or(&line);
    errln!("error: {line}");
    ExitCode::from(2)
}
