//! `kiln optimise`: resynthesis of any circuit (cut rewriting with the optimum 4-input NPN library,
//! resubstitution) to a fixpoint within a time budget; the function never changes.

use crate::output::{errln, out, outln};
use std::path::PathBuf;

use clap::Args;
use kiln_logic::optimise::{optimise, OptimiseParams};
use kiln_logic::{grammar, Aig, Circuit, SampleSet};

use super::learn::EmitArg;
use super::{output_list, program};

/// Options of `kiln optimise`.
#[derive(Debug, Args)]
pub struct OptimiseArgs {
    /// The program: AIGER (.aig/.aag), BLIF, kiln's grammar (needs --table) or the JSON of `kiln learn --json`.
    pub program: PathBuf,
    /// A CSV table or PLA whose columns name a grammar program's inputs and outputs; the result is checked against it [default: none].
    #[arg(long, value_name = "FILE")]
    pub table: Option<PathBuf>,
    /// Comma-separated output columns of a CSV table [default: the last column].
    #[arg(long, value_name = "Y,C")]
    pub outputs: Option<String>,
    /// Wall-clock budget in seconds.
    #[arg(long, allow_negative_numbers = true, value_name = "SECS", default_value_t = 30.0)]
    pub timeout: f64,
    /// Print the result as code or write it with -o [default: the program grammar].
    #[arg(long, value_enum)]
    pub emit: Option<EmitArg>,
    /// Write the result (--emit format) to this file.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Print one JSON object {"gates_before","gates_after","and_nodes_before","and_nodes_after","seconds",...} [default: off].
    #[arg(long, default_value_t = false)]
    pub json: bool,
}

/// Checks that `a` and `b` compute the same function: on every row for up to 20 inputs, else on
/// 2^16 random rows (a check, not a proof; the rewriting itself only ever substitutes equal
/// functions of a cut).
fn same_function(a: &Circuit, b: &Circuit) -> Result<bool, String> {
    let n = a.inputs().len();
    let (cols, words) = if n <= 20 {
        let rows = 1usize << n;
        let words = rows.div_ceil(64);
        let cols: Vec<Vec<u64>> = (0..n)
            .map(|i| {
                let mut v = vec![0u64; words];
                for r in 0..rows {
                    v[r / 64] |= ((r >> i) as u64 & 1) << (r % 64);
                }
                v
            })
            .collect();
        (cols, words)
    } else {
        let mut rng = kiln_logic::SplitMix64::new(0x0971_715e);
        let words = 1024;
        ((0..n).map(|_| (0..words).map(|_| rng.next_u64()).collect()).collect(), words)
    };
    Ok(a.eval_columns(&cols, words) == b.eval_columns(&cols, words))
}

/// Runs the subcommand; exit 0 when the optimised circuit was checked and printed or written.
pub fn run(args: &OptimiseArgs) -> Result<u8, String> {
    super::learn::check_timeout(Some(args.timeout))?;
    let timeout = super::seconds(args.timeout);
    if args.output.is_some() && args.emit.is_none() {
        return Err("-o: say what to write with --emit (aiger, aag, blif, rust, c, verilog, dot or svg)".into());
    }
    let inputs = [Some(args.program.as_path()), args.table.as_deref()];
    super::check_output_path("-o", args.output.as_deref(), &inputs, false)?;
    let outputs = output_list(args.outputs.as_deref())?;
    let table: Option<SampleSet> = match &args.table {
        Some(p) => Some(SampleSet::from_path(p, Some(&outputs)).map_err(|e| e.to_string())?),
        None => None,
    };
    let names = table.as_ref().map(|t| (t.input_names(), t.output_names()));
    let before = program::load_circuit(&args.program, names)?.simplify();
    let params = OptimiseParams {
        timeout: Some(timeout),
        ..OptimiseParams::default()
    };
    let (after, stats) = optimise(&before, &params);
    if !same_function(&before, &after)? {
        return Err("internal error: the optimised circuit computes another function".into());
    }
    let ands = |c: &Circuit| -> Result<usize, String> { Ok(Aig::from_circuit(c).map_err(|e| e.to_string())?.cleanup().num_ands()) };
    let check = match &table {
        Some(t) => {
            let acc = |c: &Circuit| t.accuracy(&c.eval_columns(&t.input_words(), t.words()));
            let (a, b) = (acc(&before), acc(&after));
            if a != b {
                return Err("internal error: the optimised circuit scores differently on --table".into());
            }
            Some(b)
        }
        None => None,
    };
    let samples = table.unwrap_or_else(|| SampleSet::new("<none>", after.inputs().to_vec(), Vec::new()));
    let name = super::learn::code_name(&args.program);
    let emitted = match args.emit {
        Some(lang) => super::learn_samples::emit_program(&after, lang, &name, args.output.as_deref(), &samples)?,
        None => None,
    };
    if args.json {
        let mut doc = serde_json::json!({
            "gates_before": before.num_gates(),
            "gates_after": after.num_gates(),
            "and_nodes_before": ands(&before)?,
            "and_nodes_after": ands(&after)?,
            "iterations": stats.iterations,
            "removed_by_rewrite": stats.removed_by_rewrite,
            "removed_by_resub": stats.removed_by_resub,
            "removed_by_restructure": stats.removed_by_restructure,
            "removed_by_windows": stats.removed_by_windows,
            "windows_replaced": stats.windows_replaced,
            "removed_by_exact": stats.removed_by_exact,
            "removed_by_local_search": stats.removed_by_local_search,
            "proven_minimum": stats.proven_minimum,
            "timed_out": stats.timed_out,
            "seconds": stats.seconds,
            "expression": grammar::to_expression(&after, "; "),
        });
        if let Some(a) = check {
            doc["table_accuracy"] = serde_json::json!(a.fraction());
        }
        outln!("{doc}");
        return Ok(0);
    }
    let summary = format!(
        "optimise: {} -> {} gates{}, {} -> {} AND nodes (same function), {:.2}s{}",
        before.num_gates(),
        after.num_gates(),
        if stats.proven_minimum { " (proven minimum by SAT)" } else { "" },
        ands(&before)?,
        ands(&after)?,
        stats.seconds,
        if stats.timed_out { ", stopped by --timeout" } else { "" }
    );
    match (emitted, args.emit) {
        (Some(code), _) => {
            out!("{code}");
            errln!("{summary}");
        }
        (None, Some(_)) => outln!("{summary}"),
        (None, None) => {
            outln!("{}", grammar::print(&after));
            outln!("{summary}");
        }
    }
    Ok(0)
}
