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
    let mut outputs = output_list(args.outputs.as_deref())?;
    let columns = Table::csv_column_names(&args.file).map_err(|e| e.to_string())?;
    if outputs.is_empty() {
        // Let the program say which columns it defines, so a two-output program works without
        // repeating its outputs on the command line; a column it reads before defining stays an
        // input (and assigning it is the grammar's error, not a contradiction in the table).
        let defined = grammar::defined_names(&args.expr).map_err(|e| format!("--expr: {e}"))?;
        let read = grammar::names_read_before_defined(&args.expr).map_err(|e| format!("--expr: {e}"))?;
        outputs = columns
            .iter()
            .filter(|c| defined.contains(c) && !read.contains(c))
            .cloned()
            .collect();
        if outputs.is_empty() {
            outputs.extend(columns.last().cloned());
        }
    }
    // The program is checked against the header before the rows are read: its errors come first,
    // and a table too large to hold is never loaded for a program that cannot run on it.
    let inputs: Vec<String> = columns.iter().filter(|c| !outputs.contains(c)).cloned().collect();
    // An --outputs name that is not a column is reported as that, not as whatever the
    // expression then fails on.
    if let Some(o) = outputs.iter().find(|o| !columns.contains(o)) {
        return Err(format!(
            "{}: unknown output column '{o}' (columns are: {})",
            args.file.display(),
            columns.join(", ")
        ));
    }
    grammar::parse(&args.expr, &inputs, &outputs).map_err(|e| format!("--expr: {e}"))?;
    let table = load_table(&args.file, &outputs)?;
    let circuit = grammar::parse(&args.expr, table.input_names(), table.output_names()).map_err(|e| format!("--expr: {e}"))?;
    let result = verify(&circuit, &table).map_err(|e| e.to_string())?;
    outln!("{result}");
    Ok(if result.ok() { 0 } else { 1 })
}
