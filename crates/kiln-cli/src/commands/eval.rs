//! `kiln eval`: the accuracy of a program on a sample file.

use crate::output::outln;
use std::path::PathBuf;

use clap::Args;
use kiln_logic::SampleSet;

use super::{output_list, program};

/// Options of `kiln eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The program: AIGER (.aig/.aag), BLIF, kiln's grammar or the JSON of `kiln learn --json` (told apart by content).
    pub program: PathBuf,
    /// The samples: Espresso PLA or CSV, plain or gzip.
    pub data: PathBuf,
    /// Comma-separated output columns of a CSV [default: the last column].
    #[arg(long, value_name = "Y,C")]
    pub outputs: Option<String>,
    /// Print one JSON object {"rows","correct","accuracy","and_nodes"} instead of text [default: off].
    #[arg(long, default_value_t = false)]
    pub json: bool,
}

/// Runs the subcommand; exit 0 whenever the program could be evaluated.
pub fn run(args: &EvalArgs) -> Result<u8, String> {
    let outputs = output_list(args.outputs.as_deref())?;
    let data = SampleSet::from_path(&args.data, Some(&outputs)).map_err(|e| e.to_string())?;
    let aig = program::load(&args.program, &data)?;
    let acc = program::accuracy(&aig, &data)?;
    let ands = aig.cleanup().num_ands();
    if args.json {
        outln!(
            "{}",
            serde_json::json!({"rows": data.len(), "correct": acc.correct, "accuracy": acc.fraction(), "and_nodes": ands})
        );
    } else {
        outln!(
            "{}: {} of {} right ({:.2}%) on {} rows, {} AND nodes",
            args.data.display(),
            acc.correct,
            acc.total,
            acc.fraction() * 100.0,
            data.len(),
            ands
        );
    }
    Ok(0)
}
