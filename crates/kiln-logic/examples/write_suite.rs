//! Writes the 29 standard functions of issue #9 (the side-by-side with ABC)
//! as kiln tables and as ABC inputs.
//!
//! `cargo run --release -p kiln-logic --example write_suite -- OUTDIR`
//!
//! For every function `NAME` it writes
//! * `NAME.csv`: the table `kiln learn` reads (header, then the care rows;
//!   rows left out are don't-cares), outputs last;
//! * `NAME.pla`: the complete function for ABC (`.type fr`, one minterm per
//!   row). A function with don't-cares gets two fillings instead,
//!   `NAME.dc0.pla` (don't-cares 0) and `NAME.dc1.pla` (don't-cares 1);
//! * `NAME.care.names`: one BLIF `.names` block over the inputs and the
//!   outputs whose output `kiln_check_bad` is 1 exactly where some output
//!   differs from the table on a care row (a miter against the table that
//!   respects the don't-cares);
//!
//! and `suite.tsv`, one line per function: name, inputs, outputs, input
//! names, output names, ABC input files (comma-separated).
//!
//! Built-in tables come from `kiln_logic::library`; the rest are defined
//! here. Random functions are drawn from fixed seeds with kiln's SplitMix64.

use std::fmt::Write as _;
use std::path::Path;

use kiln_logic::library;
use kiln_logic::{Row, SplitMix64, Table};

fn names(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Unsigned value of bits given most significant first.
fn value(bits: &[bool]) -> usize {
    bits.iter().fold(0, |acc, &b| acc << 1 | b as usize)
}

/// `bits`-bit unsigned adder without carry in: inputs `A(bits-1)..A0`,
/// `B(bits-1)..B0`, outputs `S(bits-1)..S0` and the carry `C`.
fn adder(bits: usize) -> Table {
    let mut ins: Vec<String> = names("A", bits).into_iter().rev().collect();
    ins.extend(names("B", bits).into_iter().rev());
    let mut outs: Vec<String> = names("S", bits).into_iter().rev().collect();
    outs.push("C".into());
    Table::from_fn(&refs(&ins), &refs(&outs), |v| {
        let s = value(&v[..bits]) + value(&v[bits..]);
        let mut o: Vec<bool> = (0..bits).rev().map(|k| s >> k & 1 == 1).collect();
        o.push(s >> bits & 1 == 1);
        o
    })
}

/// 2×2 multiplier: `(A1 A0) × (B1 B0) = (P3 P2 P1 P0)`.
fn multiplier2() -> Table {
    Table::from_fn(&["A1", "A0", "B1", "B0"], &["P3", "P2", "P1", "P0"], |v| {
        let p = value(&v[..2]) * value(&v[2..]);
        (0..4).rev().map(|k| p >> k & 1 == 1).collect()
    })
}

/// Number of ones among `n` inputs, as a 3-bit binary number `C2 C1 C0`.
fn popcount(n: usize) -> Table {
    let ins = names("X", n);
    Table::from_fn(&refs(&ins), &["C2", "C1", "C0"], |v| {
        let c = v.iter().filter(|&&b| b).count();
        (0..3).rev().map(|k| c >> k & 1 == 1).collect()
    })
}

/// 8:1 multiplexer: `Y = D[4*S2 + 2*S1 + S0]`.
fn mux8() -> Table {
    let mut ins: Vec<String> = vec!["S2".into(), "S1".into(), "S0".into()];
    ins.extend(names("D", 8));
    Table::from_fn(&refs(&ins), &["Y"], |v| vec![v[3 + value(&v[..3])]])
}

/// 3→8 decoder: `Yk = 1` exactly when `(A2 A1 A0) = k`.
fn decoder3() -> Table {
    let outs = names("Y", 8);
    Table::from_fn(&["A2", "A1", "A0"], &refs(&outs), |v| {
        let k = value(v);
        (0..8).map(|j| j == k).collect()
    })
}

/// 8→3 priority encoder: `(Y2 Y1 Y0)` = index of the highest `Dk` that is 1
/// (0 when none is), `V` = some input is 1.
fn priority8() -> Table {
    let ins = names("D", 8);
    Table::from_fn(&refs(&ins), &["Y2", "Y1", "Y0", "V"], |v| {
        let top = (0..8).rev().find(|&k| v[k]);
        let k = top.unwrap_or(0);
        vec![k >> 2 & 1 == 1, k >> 1 & 1 == 1, k & 1 == 1, top.is_some()]
    })
}

/// BCD to seven segments (`a`..`g`, 1 = lit; 6 with `a`, 7 without `f`, 9
/// with `d`); inputs 10–15 are don't-cares (left out of the table).
fn bcd7() -> Table {
    // Segments a..g of digits 0..9, bit 6 = a, bit 0 = g.
    const SEG: [u8; 10] = [0x7e, 0x30, 0x6d, 0x79, 0x33, 0x5b, 0x5f, 0x70, 0x7f, 0x7b];
    let full = Table::from_fn(&["B3", "B2", "B1", "B0"], &["a", "b", "c", "d", "e", "f", "g"], |v| {
        let d = value(v);
        let s = if d < 10 { SEG[d] } else { 0 };
        (0..7).map(|k| s >> (6 - k) & 1 == 1).collect()
    });
    let rows: Vec<Row> = full
        .rows()
        .iter()
        .filter(|r| {
            let bits: Vec<bool> = (0..4).map(|i| r.inputs >> i & 1 == 1).collect();
            value(&bits) < 10
        })
        .copied()
        .collect();
    Table::from_rows("bcd7seg", full.input_names().to_vec(), full.output_names().to_vec(), rows)
}

/// Conway's Game of Life: the cell `C` with neighbours `N0..N7` is alive next.
fn life() -> Table {
    let mut ins: Vec<String> = vec!["C".into()];
    ins.extend(names("N", 8));
    Table::from_fn(&refs(&ins), &["Y"], |v| {
        let k = v[1..].iter().filter(|&&b| b).count();
        vec![k == 3 || (v[0] && k == 2)]
    })
}

/// The PRESENT block cipher's 4-bit S-box, `(X3 X2 X1 X0) -> (Y3 Y2 Y1 Y0)`.
fn present_sbox() -> Table {
    const S: [usize; 16] = [0xC, 0x5, 0x6, 0xB, 0x9, 0x0, 0xA, 0xD, 0x3, 0xE, 0xF, 0x8, 0x4, 0x7, 0x1, 0x2];
    Table::from_fn(&["X3", "X2", "X1", "X0"], &["Y3", "Y2", "Y1", "Y0"], |v| {
        let y = S[value(v)];
        (0..4).rev().map(|k| y >> k & 1 == 1).collect()
    })
}

/// A random `n`-input function from `seed` (SplitMix64's first draw, `2^n` bits).
fn random(n: usize, seed: u64) -> Table {
    let bits = 1u32 << n;
    let raw = SplitMix64::new(seed).next_u64();
    let tt = if bits == 64 { raw } else { raw & ((1u64 << bits) - 1) };
    library::from_truth_table(n, tt)
}

/// The suite, in the order of the issue.
fn suite() -> Vec<(String, Table)> {
    let mut s: Vec<(String, Table)> = vec![
        ("full_adder".into(), library::full_adder()),
        ("adder2".into(), library::adder2()),
        ("adder3".into(), adder(3)),
        ("mult2x2".into(), multiplier2()),
        ("comparator2".into(), library::comparator2()),
        ("popcount4".into(), popcount(4)),
        ("popcount5".into(), popcount(5)),
        ("majority5".into(), library::majority(5)),
        ("majority7".into(), library::majority(7)),
        ("parity5".into(), library::parity(5)),
        ("parity6".into(), library::parity(6)),
        ("parity8".into(), library::parity(8)),
        ("mux4".into(), library::mux4()),
        ("mux8".into(), mux8()),
        ("decoder3to8".into(), decoder3()),
        ("priority8to3".into(), priority8()),
        ("bcd7seg".into(), bcd7()),
        ("life".into(), life()),
        ("present_sbox".into(), present_sbox()),
    ];
    for (n, seeds) in [(4usize, 1..=4u64), (5, 1..=3), (6, 1..=3)] {
        for k in seeds {
            let seed = 1000 * n as u64 + k;
            s.push((format!("rand{n}_{k}"), random(n, seed)));
        }
    }
    s
}

/// Input bits of `row` as `0`/`1` characters in column order.
fn input_chars(t: &Table, row: &Row) -> String {
    (0..t.num_inputs())
        .map(|i| if row.inputs >> i & 1 == 1 { '1' } else { '0' })
        .collect()
}

/// The complete function as an Espresso PLA (one minterm per row); rows
/// missing from `t` get `fill` on every output.
fn pla(t: &Table, fill: bool) -> String {
    let (n, m) = (t.num_inputs(), t.num_outputs());
    let mut s = String::new();
    let _ = writeln!(s, ".i {n}\n.o {m}");
    let _ = writeln!(s, ".ilb {}", t.input_names().join(" "));
    let _ = writeln!(s, ".ob {}", t.output_names().join(" "));
    let _ = writeln!(s, ".p {}\n.type fr", 1usize << n);
    for r in 0..(1u64 << n) {
        // Row r assigns column i the bit (r >> (n-1-i)) & 1, as Table::from_fn does.
        let inputs: u64 = (0..n).map(|i| (r >> (n - 1 - i) & 1) << i).sum();
        let outputs = match t.rows().iter().find(|row| row.inputs == inputs) {
            Some(row) => row.outputs,
            None if fill => !0,
            None => 0,
        };
        let row = Row {
            inputs,
            outputs,
            line: None,
        };
        let outs: String = (0..m).map(|j| if outputs >> j & 1 == 1 { '1' } else { '0' }).collect();
        let _ = writeln!(s, "{} {outs}", input_chars(t, &row));
    }
    s.push_str(".e\n");
    s
}

/// `.names` block whose output `kiln_check_bad` is 1 where an output column
/// differs from the table on one of its rows.
fn care_names(t: &Table) -> String {
    let m = t.num_outputs();
    let mut s = format!(
        ".names {} {} kiln_check_bad\n",
        t.input_names().join(" "),
        t.output_names().join(" ")
    );
    for row in t.rows() {
        let ins = input_chars(t, row);
        for j in 0..m {
            let outs: String = (0..m)
                .map(|k| match (k == j, row.outputs >> k & 1 == 1) {
                    (false, _) => '-',
                    (true, true) => '0',
                    (true, false) => '1',
                })
                .collect();
            let _ = writeln!(s, "{ins}{outs} 1");
        }
    }
    s
}

fn main() {
    let Some(dir) = std::env::args().nth(1) else {
        eprintln!("usage: write_suite OUTDIR");
        std::process::exit(2);
    };
    let dir = Path::new(&dir);
    std::fs::create_dir_all(dir).expect("create OUTDIR");
    let write = |file: String, text: &str| {
        std::fs::write(dir.join(&file), text).unwrap_or_else(|e| panic!("write {file}: {e}"));
    };
    let mut index = String::new();
    for (name, t) in suite() {
        write(format!("{name}.csv"), &library::to_csv(&t));
        let plas = if t.is_complete() {
            write(format!("{name}.pla"), &pla(&t, false));
            vec![format!("{name}.pla")]
        } else {
            write(format!("{name}.dc0.pla"), &pla(&t, false));
            write(format!("{name}.dc1.pla"), &pla(&t, true));
            vec![format!("{name}.dc0.pla"), format!("{name}.dc1.pla")]
        };
        write(format!("{name}.care.names"), &care_names(&t));
        let _ = writeln!(
            index,
            "{name}\t{}\t{}\t{}\t{}\t{}",
            t.num_inputs(),
            t.num_outputs(),
            t.input_names().join(","),
            t.output_names().join(","),
            plas.join(",")
        );
    }
    write("suite.tsv".into(), &index);
    println!("wrote {} functions to {}", index.lines().count(), dir.display());
}
