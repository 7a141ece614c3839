//! `kiln verify`: check a program against a table.

use crate::output::outln;
use std::path::PathBuf;

use clap::Args;
use kiln_pbe::{grammar, verify, Table};

use super::{load_table, output_list};

/// Options of `kiln verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// CSV table: a header of column names, then rows of 0/1.
    pub file: PathBuf,
    /// The program, e.g. "Y = (X1 OR X2) AND (X1 NAND X2)"; statements are
    /// separated by ';' or new lines.
    #[arg(long)]
    pub expr: String,
    /// Comma-separated output columns [default: the table columns the
    /// program assigns, else the last column].
    #[arg(long)]
    pub outputs: Option<String>,
}

/// Runs the subcommand: 0 when every row matches, 1 when some row differs.
pub fn run(args: &VerifyArgs) -> Result<u8, String> {
    let mut outputs = output_list(args.outputs.as_deref());
    if outputs.is_empty() {
        // Let the program say which columns it defines, so a two-output
        // program works without repeating its outputs on the command line.
        let defined = grammar::defined_names(&args.expr).map_err(|e| format!("--expr: {e}"))?;
        let header = Table::from_csv_path(&args.file, None).map_err(|e| e.to_string())?;
        let columns: Vec<String> = header.input_names().iter().chain(header.output_names()).cloned().collect();
        outputs = defined.into_iter().filter(|n| columns.contains(n)).collect();
    }
    let table = load_table(&args.file, &outputs)?;
    let circuit = grammar::parse(&args.expr, table.input_names(), table.output_names()).map_err(|e| format!("--expr: {e}"))?;
    let result = verify(&circuit, &table).map_err(|e| e.to_string())?;
    outln!("{result}");
    Ok(if result.ok() { 0 } else { 1 })
}
