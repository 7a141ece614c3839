//! Binary arithmetic as circuits: carry-save adder trees that sum weighted
//! bits, a population count, and a comparison with a constant. Learners use
//! them to fire threshold units; resynthesis uses the counter to rebuild
//! symmetric functions.

use crate::circuit::{Circuit, CircuitError, Op, Signal};

/// The binary sum `Σ wᵢ·sᵢ` of `terms`, least significant bit first: each term's signal is placed
/// in the column of every 1 bit of its weight, and the columns are reduced by full and half
/// adders (a carry-save tree), carries moving to the next column.
pub fn weighted_sum(c: &mut Circuit, terms: &[(Signal, u64)]) -> Result<Vec<Signal>, CircuitError> {
    let mut columns: Vec<Vec<Signal>> = vec![Vec::new(); 64];
    for &(s, w) in terms {
        for (b, col) in columns.iter_mut().enumerate() {
            if w >> b & 1 == 1 {
                col.push(s);
            }
        }
    }
    while columns.len() > 1 && columns.last().is_some_and(Vec::is_empty) {
        columns.pop();
    }
    sum_columns(c, columns)
}

/// Reduces `columns` (column `w` holds bits of weight `2^w`) to one bit per column.
pub fn sum_columns(c: &mut Circuit, columns: Vec<Vec<Signal>>) -> Result<Vec<Signal>, CircuitError> {
    // Deques: each sum goes to the front of its column, which in a Vec moved the whole column
    // every time (a popcount of a million inputs did not finish in 100 s).
    let mut columns: Vec<std::collections::VecDeque<Signal>> = columns.into_iter().map(Into::into).collect();
    let mut out = Vec::new();
    let mut w = 0;
    while w < columns.len() {
        while columns[w].len() > 1 {
            let col = &mut columns[w];
            let (sum, carry) = if col.len() >= 3 {
                let (a, b, d) = (
                    col.pop_back().unwrap_or(Signal::Const(false)),
                    col.pop_back().unwrap_or(Signal::Const(false)),
                    col.pop_back().unwrap_or(Signal::Const(false)),
                );
                let ab = c.gate(Op::Xor, &[a, b])?;
                let sum = c.gate(Op::Xor, &[ab, d])?;
                let both = c.gate(Op::And, &[a, b])?;
                let via = c.gate(Op::And, &[ab, d])?;
                (sum, c.gate(Op::Or, &[both, via])?)
            } else {
                let (a, b) = (
                    col.pop_back().unwrap_or(Signal::Const(false)),
                    col.pop_back().unwrap_or(Signal::Const(false)),
                );
                (c.gate(Op::Xor, &[a, b])?, c.gate(Op::And, &[a, b])?)
            };
            // The sum goes to the front so the adders form a balanced tree rather than a chain.
            columns[w].push_front(sum);
            if columns.len() == w + 1 {
                columns.push(std::collections::VecDeque::new());
            }
            columns[w + 1].push_back(carry);
        }
        out.push(columns[w].front().copied().unwrap_or(Signal::Const(false)));
        w += 1;
    }
    Ok(out)
}

/// Whether the binary number `bits` (least significant first) is at least `t`: from the lowest
/// bit up, `ge = x_i ∧ ge` where `t` has a 1 and `x_i ∨ ge` where it has a 0.
pub fn at_least_value(c: &mut Circuit, bits: &[Signal], t: u64) -> Result<Signal, CircuitError> {
    if bits.len() < 64 && t >> bits.len() != 0 {
        return Ok(Signal::Const(false));
    }
    let mut ge = Signal::Const(true);
    for (i, &x) in bits.iter().enumerate() {
        let one = i < 64 && t >> i & 1 == 1;
        ge = match (one, ge) {
            (true, Signal::Const(true)) => x,
            (true, Signal::Const(false)) => Signal::Const(false),
            (false, Signal::Const(true)) => Signal::Const(true),
            (false, Signal::Const(false)) => x,
            (true, g) => c.gate(Op::And, &[x, g])?,
            (false, g) => c.gate(Op::Or, &[x, g])?,
        };
    }
    Ok(ge)
}

/// The binary count of the 1s among `xs`, least significant bit first.
pub fn popcount(c: &mut Circuit, xs: &[Signal]) -> Result<Vec<Signal>, CircuitError> {
    sum_columns(c, vec![xs.to_vec()])
}
