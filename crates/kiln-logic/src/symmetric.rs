//! Symmetric functions rebuilt from a counter. A function whose outputs
//! depend only on how many inputs are 1 (population counts, majorities,
//! parities, "exactly k") is a function of the count's `⌈log₂(n+1)⌉` bits.
//! A carry-save adder tree computes those bits with about `5n/2` gates, and
//! an exact search over the few count bits finishes the outputs. Rewriting a
//! learned circuit rarely finds this structure on its own: the adder tree
//! shares full adders across every output, a global property that local
//! cut-by-cut moves cannot see (a 5-input population count: 17 gates
//! learned, 12 this way).

use std::time::Duration;

use crate::arith::popcount;
use crate::circuit::{Circuit, Signal};
use crate::exact_sat::{synthesize, SatParams};
use crate::search::{fallback, Basis};
use crate::table::{Row, Table};

/// Most inputs [`symmetric_circuit`] looks at (the table has `2^n` rows).
pub const SYMMETRIC_MAX_INPUTS: usize = 16;

/// For each output, its value at each count of ones `0..=n`, if every
/// output of the complete `table` depends only on that count; `None` when
/// the table is not complete, or some output is not symmetric.
pub fn symmetric_values(table: &Table) -> Option<Vec<Vec<bool>>> {
    let n = table.num_inputs();
    if n > SYMMETRIC_MAX_INPUTS || !table.is_complete() {
        return None;
    }
    let mut values: Vec<Vec<Option<bool>>> = vec![vec![None; n + 1]; table.num_outputs()];
    for row in table.rows() {
        let k = row.inputs.count_ones() as usize;
        for (j, v) in values.iter_mut().enumerate() {
            let bit = row.outputs >> j & 1 == 1;
            match v[k] {
                None => v[k] = Some(bit),
                Some(b) if b != bit => return None,
                Some(_) => {}
            }
        }
    }
    // A complete table has a row for every count.
    values.into_iter().map(|v| v.into_iter().collect::<Option<Vec<bool>>>()).collect()
}

/// A circuit for a symmetric `table` (see [`symmetric_values`]): a
/// population count of all inputs, then each output as a function of the
/// count's bits, found by SAT (counts above `n` are don't-cares) within
/// `timeout`, or by Shannon expansion if that runs out. `None` if the table
/// is not symmetric or has fewer than three inputs.
pub fn symmetric_circuit(table: &Table, timeout: Option<Duration>) -> Option<Circuit> {
    let n = table.num_inputs();
    if n < 3 {
        return None;
    }
    let values = symmetric_values(table)?;
    let mut c = Circuit::for_table(table);
    let inputs: Vec<Signal> = (0..n).map(Signal::Input).collect();
    let bits = popcount(&mut c, &inputs).ok()?;
    let count_names: Vec<String> = (0..bits.len()).map(|i| format!("c{i}")).collect();
    let rows: Vec<Row> = (0..=n)
        .map(|k| Row {
            inputs: k as u64,
            outputs: values.iter().enumerate().fold(0u64, |acc, (j, v)| acc | u64::from(v[k]) << j),
            line: None,
        })
        .collect();
    let counts = Table::from_rows("counts", count_names, table.output_names().to_vec(), rows);
    let params = SatParams {
        max_gates: 16,
        timeout,
        ..SatParams::default()
    };
    let finish = synthesize(&counts, &params)
        .ok()
        .and_then(|r| r.circuit)
        .or_else(|| fallback(&counts, &Basis::all(), usize::MAX).ok())?;
    let outs = c.append(&finish, &bits).ok()?;
    for ((name, _), s) in finish.outputs().iter().zip(outs) {
        c.set_output(name, s).ok()?;
    }
    Some(c.simplify())
}
