//! Checking a circuit against every row of a table.

use std::fmt;

use crate::circuit::{Circuit, CircuitError};
use crate::table::Table;

/// A row on which the circuit disagrees with the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// 0-based row index in the table.
    pub row: usize,
    /// 1-based line in the source file, when the table came from a file.
    pub line: Option<usize>,
    /// Input bits (bit `i` = input column `i`).
    pub inputs: u64,
    /// Expected output bits (bit `j` = table output `j`).
    pub expected: u64,
    /// Outputs the circuit produced.
    pub got: u64,
}

/// Outcome of [`verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// Number of rows checked.
    pub rows: usize,
    /// Every failing row, in table order.
    pub failures: Vec<Failure>,
    input_names: Vec<String>,
    output_names: Vec<String>,
}

impl Verification {
    /// Whether every row matched.
    pub fn ok(&self) -> bool {
        self.failures.is_empty()
    }

    /// Fraction of rows that matched (1.0 for an empty table).
    pub fn accuracy(&self) -> f64 {
        if self.rows == 0 {
            1.0
        } else {
            (self.rows - self.failures.len()) as f64 / self.rows as f64
        }
    }

    /// One human-readable line for a failure, e.g.
    /// `line 2: X1=0 X2=0 expected Y=0 got Y=1`.
    pub fn describe(&self, f: &Failure) -> String {
        let bits = |names: &[String], v: u64| {
            names
                .iter()
                .enumerate()
                .map(|(i, n)| format!("{n}={}", v >> i & 1))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let place = match f.line {
            Some(l) => format!("line {l}"),
            None => format!("row {}", f.row + 1),
        };
        format!(
            "{place}: {} expected {} got {}",
            bits(&self.input_names, f.inputs),
            bits(&self.output_names, f.expected),
            bits(&self.output_names, f.got)
        )
    }
}

impl fmt::Display for Verification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ok() {
            return write!(f, "ok: {} rows match", self.rows);
        }
        write!(f, "FAIL: {} of {} rows differ", self.failures.len(), self.rows)?;
        for fail in &self.failures {
            write!(f, "\n{}", self.describe(fail))?;
        }
        Ok(())
    }
}

/// Evaluates `circuit` on every row of `table` (bit-parallel) and lists the
/// rows where any output differs. Circuit inputs are matched to table input
/// columns by name; every table output must be a circuit output.
pub fn verify(circuit: &Circuit, table: &Table) -> Result<Verification, CircuitError> {
    let got = circuit.eval_table(table)?;
    let mask = table.row_mask();
    let mut bad = vec![0u64; mask.len()];
    for (j, col) in got.iter().enumerate() {
        for (w, b) in bad.iter_mut().enumerate() {
            *b |= (col[w] ^ table.output_bits(j)[w]) & mask[w];
        }
    }
    let mut failures = Vec::new();
    for (w, &word) in bad.iter().enumerate() {
        let mut word = word;
        while word != 0 {
            let r = w * 64 + word.trailing_zeros() as usize;
            word &= word - 1;
            let row = table.rows()[r];
            let got_bits = got
                .iter()
                .enumerate()
                .fold(0u64, |acc, (j, col)| acc | ((col[w] >> (r % 64) & 1) << j));
            failures.push(Failure {
                row: r,
                line: row.line,
                inputs: row.inputs,
                expected: row.outputs,
                got: got_bits,
            });
        }
    }
    Ok(Verification {
        rows: table.len(),
        failures,
        input_names: table.input_names().to_vec(),
        output_names: table.output_names().to_vec(),
    })
}
