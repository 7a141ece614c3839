//! `kiln search`: exact minimum-circuit synthesis.

use crate::output::outln;
use std::path::PathBuf;

use clap::Args;
use kiln_logic::{search_with, EngineChoice};
use kiln_pbe::json::ResultJson;
use kiln_pbe::{grammar, verify, Basis, SearchOptions};

use super::{load_table, output_list};

/// Options of `kiln search`.
#[derive(Debug, Args)]
pub struct SearchArgs {
    /// CSV table: a header of column names, then rows of 0/1.
    pub file: PathBuf,
    /// Comma-separated output columns [default: the last column].
    #[arg(long)]
    pub outputs: Option<String>,
    /// Comma-separated gates the circuit may use (NOT only if listed).
    #[arg(long, default_value = "AND,OR,XOR,NAND,NOR,XNOR,IMPLIES,NIMPLIES")]
    pub basis: String,
    /// Largest gate count the exhaustive search tries.
    #[arg(long, default_value_t = 12)]
    pub max_gates: usize,
    /// Time budget for the exhaustive search, in seconds.
    #[arg(long, allow_negative_numbers = true, default_value_t = 10.0)]
    pub timeout: f64,
    /// Exact engine: `enum` (enumeration), `sat` (SAT solver) or `auto`
    /// (enumeration for a slice of the time, then SAT).
    #[arg(long, default_value = "auto")]
    pub engine: String,
    /// Print one JSON document instead of text [default: off].
    #[arg(long, default_value_t = false)]
    pub json: bool,
}

/// Runs the subcommand; returns the exit code or a user-facing error.
pub fn run(args: &SearchArgs) -> Result<u8, String> {
    let outputs = output_list(args.outputs.as_deref())?;
    let table = load_table(&args.file, &outputs)?;
    let basis = Basis::parse(&args.basis).map_err(|e| format!("--basis: {e}"))?;
    let engine = EngineChoice::parse(&args.engine).map_err(|e| format!("--engine: {e}"))?;
    if !(args.timeout.is_finite() && args.timeout >= 0.0) {
        return Err(format!("--timeout: expected a number of seconds >= 0, got {}", args.timeout));
    }
    let opts = SearchOptions {
        basis,
        max_gates: args.max_gates,
        timeout: Some(super::seconds(args.timeout)),
    };
    let r = search_with(&table, &opts, engine).map_err(|e| e.to_string())?;
    // The search is trusted, but a wrong answer here would be silent, so the
    // result is checked row by row before it is shown.
    let check = verify(&r.circuit, &table).map_err(|e| e.to_string())?;
    if args.json {
        let mut doc = ResultJson::new(&r.circuit, table.output_names(), check.ok(), 0, r.nodes, r.seconds);
        doc.optimal = Some(r.optimal);
        doc.engine = Some(r.engine.name());
        doc.lower_bound = Some(r.lower_bound);
        outln!("{}", doc.to_json());
    } else {
        outln!("{}", grammar::print(&r.circuit));
        outln!("gates: {}", r.gates);
        if r.optimal {
            outln!("minimal: yes (no circuit with fewer gates exists over this basis)");
        } else {
            outln!(
                "minimal: not proven (every circuit with fewer than {} gates was ruled out)",
                r.lower_bound
            );
        }
        outln!("time: {:.3}s", r.seconds);
    }
    Ok(if check.ok() { 0 } else { 1 })
}
