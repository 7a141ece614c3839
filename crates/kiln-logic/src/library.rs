//! Built-in benchmark tables.
//!
//! Inputs are named `X1..Xn` and the output `Y` unless the circuit has
//! conventional names (adders, multiplexers, comparators).

use crate::table::Table;

fn xs(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("X{i}")).collect()
}

fn table_n(n: usize, outputs: &[&str], f: impl Fn(&[bool]) -> Vec<bool>) -> Table {
    let names = xs(n);
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    Table::from_fn(&refs, outputs, f)
}

/// The two-input function with truth table `tt` (bit `2*a + b` holds
/// `f(a, b)`, same order as [`crate::gate_from_truth_table`]), inputs `X1`
/// (= a) and `X2` (= b).
pub fn two_input(tt: u8) -> Table {
    table_n(2, &["Y"], move |v| vec![tt >> (2 * v[0] as u8 + v[1] as u8) & 1 == 1])
}

/// The three-input function with 8-bit truth table `tt`: bit
/// `4*x1 + 2*x2 + x3` holds `f(x1, x2, x3)`. Covers all 256 functions.
pub fn three_input(tt: u8) -> Table {
    table_n(3, &["Y"], move |v| {
        vec![tt >> (4 * v[0] as u8 + 2 * v[1] as u8 + v[2] as u8) & 1 == 1]
    })
}

/// Any function of `n` inputs given by its truth table bits: bit `r` of
/// `tt` (with `r` read as `X1` most significant) is the output on row `r`.
/// `n` is at most 6 so the table fits a `u64`.
pub fn from_truth_table(n: usize, tt: u64) -> Table {
    assert!(n <= 6, "from_truth_table: at most 6 inputs");
    table_n(n, &["Y"], move |v| {
        let r = v.iter().fold(0usize, |acc, &b| acc << 1 | b as usize);
        vec![tt >> r & 1 == 1]
    })
}

/// Two-input XOR.
pub fn xor() -> Table {
    two_input(0b0110)
}

/// Odd parity of `n` inputs.
pub fn parity(n: usize) -> Table {
    table_n(n, &["Y"], |v| vec![v.iter().filter(|&&b| b).count() % 2 == 1])
}

/// Majority of `n` (odd) inputs.
pub fn majority(n: usize) -> Table {
    table_n(n, &["Y"], move |v| vec![2 * v.iter().filter(|&&b| b).count() > n])
}

/// 2:1 multiplexer: `Y = S ? B : A`.
pub fn mux2() -> Table {
    Table::from_fn(&["S", "A", "B"], &["Y"], |v| vec![if v[0] { v[2] } else { v[1] }])
}

/// 4:1 multiplexer: `Y = D[2*S1 + S0]`.
pub fn mux4() -> Table {
    Table::from_fn(&["S1", "S0", "D0", "D1", "D2", "D3"], &["Y"], |v| {
        let sel = 2 * v[0] as usize + v[1] as usize;
        vec![v[2 + sel]]
    })
}

/// Full adder: `A + B + Cin = 2*Cout + S`.
pub fn full_adder() -> Table {
    Table::from_fn(&["A", "B", "Cin"], &["S", "Cout"], |v| {
        let s = v.iter().filter(|&&b| b).count();
        vec![s % 2 == 1, s >= 2]
    })
}

/// 2-bit adder: `(A1 A0) + (B1 B0) = (C S1 S0)`.
pub fn adder2() -> Table {
    Table::from_fn(&["A1", "A0", "B1", "B0"], &["S1", "S0", "C"], |v| {
        let a = 2 * v[0] as u8 + v[1] as u8;
        let b = 2 * v[2] as u8 + v[3] as u8;
        let s = a + b;
        vec![s >> 1 & 1 == 1, s & 1 == 1, s >> 2 & 1 == 1]
    })
}

/// 2-bit comparator: `LT = A < B`, `EQ = A == B`, `GT = A > B`.
pub fn comparator2() -> Table {
    Table::from_fn(&["A1", "A0", "B1", "B0"], &["LT", "EQ", "GT"], |v| {
        let a = 2 * v[0] as u8 + v[1] as u8;
        let b = 2 * v[2] as u8 + v[3] as u8;
        vec![a < b, a == b, a > b]
    })
}

/// Every built-in table under a short name (the CLI's `--table` names).
pub fn builtin(name: &str) -> Option<Table> {
    let gate = |op: crate::circuit::Op| Some(two_input(op.truth_table()));
    use crate::circuit::Op;
    match name {
        "and" => gate(Op::And),
        "or" => gate(Op::Or),
        "xor" => gate(Op::Xor),
        "nand" => gate(Op::Nand),
        "nor" => gate(Op::Nor),
        "xnor" => gate(Op::Xnor),
        "implies" => gate(Op::Implies),
        "nimplies" => gate(Op::Nimplies),
        "majority3" => Some(majority(3)),
        "majority5" => Some(majority(5)),
        "mux2" => Some(mux2()),
        "mux4" => Some(mux4()),
        "full_adder" => Some(full_adder()),
        "adder2" => Some(adder2()),
        "comparator2" => Some(comparator2()),
        _ => {
            let n: usize = name.strip_prefix("parity")?.parse().ok()?;
            (2..=10).contains(&n).then(|| parity(n))
        }
    }
}

/// Names accepted by [`builtin`].
pub const BUILTIN_NAMES: &[&str] = &[
    "and",
    "or",
    "xor",
    "nand",
    "nor",
    "xnor",
    "implies",
    "nimplies",
    "parity2",
    "parity3",
    "parity4",
    "parity5",
    "parity6",
    "parity7",
    "parity8",
    "parity9",
    "parity10",
    "majority3",
    "majority5",
    "mux2",
    "mux4",
    "full_adder",
    "adder2",
    "comparator2",
];

/// Writes a table as CSV (header, then one `0`/`1` line per row, inputs
/// before outputs).
pub fn to_csv(table: &Table) -> String {
    let mut s = table
        .input_names()
        .iter()
        .chain(table.output_names())
        .cloned()
        .collect::<Vec<_>>()
        .join(",");
    s.push('\n');
    for row in table.rows() {
        let cells: Vec<String> = (0..table.num_inputs())
            .map(|i| (row.inputs >> i & 1).to_string())
            .chain((0..table.num_outputs()).map(|j| (row.outputs >> j & 1).to_string()))
            .collect();
        s.push_str(&cells.join(","));
        s.push('\n');
    }
    s
}
