//! `kiln show`: a diagram of any circuit kiln reads (AIGER, BLIF, kiln's grammar or the JSON of
//! `kiln learn --json`), as SVG drawn by kiln itself or as Graphviz DOT.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use kiln_logic::diagram::{to_dot, to_svg_with, DiagramParams};
use kiln_logic::SampleSet;

use super::{output_list, program};
use crate::output::out;

/// Diagram formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiagramFormat {
    /// Standalone SVG, drawn by kiln.
    Svg,
    /// Graphviz DOT (render with `dot -Tsvg`).
    Dot,
}

/// Options of `kiln show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The program: AIGER (.aig/.aag), BLIF, kiln's grammar (needs --table) or the JSON of `kiln learn --json`.
    pub program: PathBuf,
    /// A CSV table or PLA whose columns name a grammar program's inputs and outputs [default: none].
    #[arg(long, value_name = "FILE")]
    pub table: Option<PathBuf>,
    /// Comma-separated output columns of a CSV table [default: the last column].
    #[arg(long, value_name = "Y,C")]
    pub outputs: Option<String>,
    /// Diagram format.
    #[arg(long, value_enum, default_value = "svg")]
    pub format: DiagramFormat,
    /// Circuits with more gates are drawn as a summary (one box per level and operator).
    #[arg(long, value_name = "N", default_value_t = DiagramParams::default().max_detailed_gates)]
    pub max_detailed_gates: usize,
    /// Write the diagram to this file instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Runs the subcommand.
pub fn run(args: &ShowArgs) -> Result<u8, String> {
    let inputs = [Some(args.program.as_path()), args.table.as_deref()];
    super::check_output_path("-o", args.output.as_deref(), &inputs, false)?;
    let outputs = output_list(args.outputs.as_deref())?;
    let table: Option<SampleSet> = match &args.table {
        Some(p) => Some(SampleSet::from_path(p, Some(&outputs)).map_err(|e| e.to_string())?),
        None => None,
    };
    let names = table.as_ref().map(|t| (t.input_names(), t.output_names()));
    let circuit = program::load_circuit(&args.program, names)?;
    let text = match args.format {
        DiagramFormat::Svg => to_svg_with(
            &circuit,
            &DiagramParams {
                max_detailed_gates: args.max_detailed_gates,
            },
        ),
        DiagramFormat::Dot => to_dot(&circuit),
    };
    match &args.output {
        Some(p) => {
            std::fs::write(p, text).map_err(|e| format!("{}: cannot write: {e}", p.display()))?;
        }
        None => out!("{text}"),
    }
    Ok(0)
}
