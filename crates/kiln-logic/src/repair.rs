//! Repairing near-exact circuits by resubstitution.
//!
//! Gradient search often fires a circuit that is right on all but a few rows, and the network it
//! came from holds hundreds of gate outputs that are useful building blocks ("divisors", in
//! logic-synthesis terms). Repair looks for a small expression over those divisors that equals a
//! wrong output on every row of the table:
//!
//! 1. an existing signal (or its negation);
//! 2. one new gate over two existing signals, any of the 16 functions;
//! 3. an existing signal *patched* by a sub-expression that fixes the rows it gets wrong — OR adds
//!    missing ones, AND removes extra ones, XOR flips — where the patch is found by the same three
//!    steps, recursively, with one gate less to spend. The patch only has to be right on the rows
//!    that the patched signal does not already decide, so each level has fewer rows to care about.
//!
//! With [`repair`]'s `complete` switch, a wrong output is also rebuilt by decomposition on the
//! inputs (a Shannon/XOR tree with the divisors as leaves, and on complete tables a shared
//! decision diagram) and as a greedy sum of products over the divisors, which always succeeds: the
//! inputs alone separate any two rows with different input values. Whichever candidate leaves the
//! smallest circuit wins. The result is verified on every row before it is returned.

use std::collections::{HashMap, HashSet};

use crate::circuit::{gate_from_truth_table, Circuit, Op, Signal};
use crate::table::Table;

/// A repaired circuit and what it cost.
#[derive(Debug, Clone)]
pub struct Repaired {
    /// The circuit, simplified, exact on every row.
    pub circuit: Circuit,
    /// Gates added by the repair (before simplification).
    pub added_gates: usize,
    /// Rows (summed over outputs) that the circuit given to [`repair`] got wrong.
    pub fixed_rows: usize,
    /// The strongest method any output needed.
    pub method: RepairMethod,
}

/// How [`repair`] rebuilt a wrong output, from the most to the least reliant on the given circuit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RepairMethod {
    /// Nothing was wrong.
    None,
    /// A few gates over the circuit's own signals (resubstitution).
    Resubstitution,
    /// Splitting on the inputs (XOR and Shannon decomposition), with the circuit's signals as
    /// leaves.
    Decomposition,
    /// A sum of products over the circuit's signals.
    Cover,
}

impl RepairMethod {
    /// A short phrase for reports.
    pub fn describe(self) -> &'static str {
        match self {
            RepairMethod::None => "no repair",
            RepairMethod::Resubstitution => "resubstitution over the trained network's signals",
            RepairMethod::Decomposition => "XOR/Shannon decomposition on the inputs",
            RepairMethod::Cover => "a sum of products over the trained network's signals",
        }
    }
}

/// For each input `x`: the row whose inputs differ from row `r` only in `x` (if the table has it),
/// the input's bit vector and its divisor index.
struct RowIndex {
    partner: Vec<Vec<Option<usize>>>,
    /// Bit mask of every input, the variables decomposition may split on.
    all_inputs: u64,
    input_bits: Vec<Vec<u64>>,
    input_div: Vec<usize>,
}

impl RowIndex {
    fn new(table: &Table, divs: &Divisors) -> Option<RowIndex> {
        let by_inputs: HashMap<u64, usize> = table.rows().iter().enumerate().map(|(r, row)| (row.inputs, r)).collect();
        let n = table.num_inputs();
        let partner = (0..n)
            .map(|x| {
                table
                    .rows()
                    .iter()
                    .map(|row| by_inputs.get(&(row.inputs ^ (1u64 << x))).copied())
                    .collect()
            })
            .collect();
        let input_bits: Vec<Vec<u64>> = (0..n).map(|x| table.input_bits(x).to_vec()).collect();
        // An input may share its divisor with a constant or another input of equal value.
        let input_div = input_bits
            .iter()
            .map(|v| {
                let masked: Vec<u64> = v.iter().zip(table.row_mask()).map(|(a, m)| a & m).collect();
                divs.bits.iter().position(|d| *d == masked)
            })
            .collect::<Option<Vec<usize>>>()?;
        Some(RowIndex {
            partner,
            all_inputs: 1u64.checked_shl(n as u32).map_or(!0, |b| b - 1),
            input_bits,
            input_div,
        })
    }
}

/// An expression over divisors, to be appended to the circuit as gates.
#[derive(Debug, Clone)]
enum Expr {
    Div(usize),
    /// A two-input gate with truth table `tt` (bit `2a + b` = f(a, b)) over two sub-expressions.
    Gate(u8, Box<Expr>, Box<Expr>),
}

impl Expr {
    fn cost(&self) -> usize {
        match self {
            Expr::Div(_) => 0,
            Expr::Gate(_, a, b) => 1 + a.cost() + b.cost(),
        }
    }
    fn gate(tt: u8, a: Expr, b: Expr) -> Expr {
        Expr::Gate(tt, Box::new(a), Box::new(b))
    }
}

/// The two-input function `f` (truth table, bit `2a + b`) with `f(a, b) = t` on every row of
/// `care`, if there is one; value combinations that never occur are left 0.
fn pair_function(a: &[u64], b: &[u64], t: &[u64], care: &[u64]) -> Option<u8> {
    let (mut on, mut off) = (0u8, 0u8);
    for w in 0..t.len() {
        let (x, y, m) = (a[w], b[w], care[w]);
        for (k, rows) in [!x & !y & m, !x & y & m, x & !y & m, x & y & m].iter().enumerate() {
            if rows & t[w] != 0 {
                on |= 1 << k;
            }
            if rows & !t[w] != 0 {
                off |= 1 << k;
            }
        }
        // Most pairs fail in the first word, so checking as we go keeps the search fast.
        if on & off != 0 {
            return None;
        }
    }
    Some(on)
}

/// Truth table (bit `2a + b`) of `f`.
fn tt_of(f: impl Fn(bool, bool) -> bool) -> u8 {
    let mut tt = 0;
    for a in 0..2u8 {
        for b in 0..2u8 {
            if f(a == 1, b == 1) {
                tt |= 1 << (2 * a + b);
            }
        }
    }
    tt
}

/// Rows are bit vectors of `words` u64s; `care` marks the rows that exist.
struct Divisors {
    bits: Vec<Vec<u64>>,
    signals: Vec<Signal>,
    words: usize,
    /// The pair search is quadratic, so it looks at no more than this many divisors.
    pair_limit: usize,
    /// Pair searches left: the patch recursion branches, so its total work is capped.
    searches_left: std::cell::Cell<usize>,
}

fn count(v: impl Iterator<Item = u64>) -> usize {
    v.map(|w| w.count_ones() as usize).sum()
}

impl Divisors {
    /// Every signal of `c` evaluated on the table's rows, deduplicated by value.
    fn new(c: &Circuit, table: &Table) -> Divisors {
        Divisors::from_gate_columns(table, &c.gate_columns(table.input_columns(), table.words()))
    }

    /// The constants, the table's inputs and gates with values `gate_columns` (gate order),
    /// deduplicated by value.
    fn from_gate_columns(table: &Table, gate_columns: &[Vec<u64>]) -> Divisors {
        let words = table.words();
        let mask = table.row_mask();
        let mut bits: Vec<Vec<u64>> = Vec::new();
        let mut signals = Vec::new();
        let mut seen: HashSet<Vec<u64>> = HashSet::new();
        let mut add = |v: &[u64], s: Signal, bits: &mut Vec<Vec<u64>>, signals: &mut Vec<Signal>| {
            let v: Vec<u64> = v.iter().zip(&mask).map(|(a, m)| a & m).collect();
            if seen.insert(v.clone()) {
                bits.push(v);
                signals.push(s);
            }
        };
        add(&vec![0; words], Signal::Const(false), &mut bits, &mut signals);
        add(&mask, Signal::Const(true), &mut bits, &mut signals);
        for i in 0..table.num_inputs() {
            add(table.input_bits(i), Signal::Input(i), &mut bits, &mut signals);
        }
        for (gi, v) in gate_columns.iter().enumerate() {
            add(v, Signal::Gate(gi), &mut bits, &mut signals);
        }
        Divisors {
            bits,
            signals,
            words,
            pair_limit: 400,
            searches_left: std::cell::Cell::new(300),
        }
    }

    fn find(&self, t: &[u64], care: &[u64]) -> Option<Expr> {
        for (d, v) in self.bits.iter().enumerate() {
            if (0..self.words).all(|w| (v[w] ^ t[w]) & care[w] == 0) {
                return Some(Expr::Div(d));
            }
            if (0..self.words).all(|w| (!v[w] ^ t[w]) & care[w] == 0) {
                return Some(Self::not(Expr::Div(d)));
            }
        }
        None
    }

    /// Divisors for the pair search: the inputs first (parity-like targets are made of signals that
    /// are uncorrelated with them one by one), then the rest by how well they agree or disagree
    /// with the target.
    fn pair_candidates(&self, t: &[u64], care: &[u64]) -> Vec<usize> {
        let n_care = count(care.iter().copied());
        let mut scored: Vec<(usize, usize)> = Vec::new();
        let mut out = Vec::new();
        for (d, s) in self.signals.iter().enumerate() {
            match s {
                Signal::Const(_) => {}
                Signal::Input(_) => out.push(d),
                Signal::Gate(_) => {
                    let agree = count((0..self.words).map(|w| !(self.bits[d][w] ^ t[w]) & care[w]));
                    scored.push((agree.max(n_care - agree), d));
                }
            }
        }
        scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        out.extend(scored.into_iter().map(|(_, d)| d));
        out.truncate(self.pair_limit);
        out
    }

    /// One gate over two divisors that equals `t` on `care`.
    fn find_pair(&self, t: &[u64], care: &[u64]) -> Option<Expr> {
        let left = self.searches_left.get();
        if left == 0 {
            return None;
        }
        self.searches_left.set(left - 1);
        let cands = self.pair_candidates(t, care);
        for (ii, &i) in cands.iter().enumerate() {
            for &j in &cands[ii + 1..] {
                if let Some(tt) = pair_function(&self.bits[i], &self.bits[j], t, care) {
                    return Some(Expr::gate(tt, Expr::Div(i), Expr::Div(j)));
                }
            }
        }
        None
    }

    /// An expression equal to `t` on `care` with at most `budget` new gates.
    fn solve(&self, t: &[u64], care: &[u64], budget: usize) -> Option<Expr> {
        if let Some(e) = self.find(t, care) {
            if e.cost() <= budget {
                return Some(e);
            }
        }
        if budget == 0 {
            return None;
        }
        if let Some(e) = self.find_pair(t, care) {
            return Some(e);
        }
        if budget < 2 || self.searches_left.get() == 0 {
            return None;
        }
        // Patches: base ∘ P, with the base taken as is or negated (the gate absorbs the negation).
        // A base under OR must be 0 wherever t is 0; P then only matters where the base is 0.
        // Under AND the base must be 1 wherever t is 1, and P matters where the base is 1. Under
        // XOR, P must flip exactly the rows the base gets wrong.
        let words = self.words;
        let mut tries: Vec<(usize, usize, bool, u8)> = Vec::new(); // (rows P must decide, divisor, negated, form)
        for (d, v) in self.bits.iter().enumerate() {
            // A constant base would leave the whole problem to the patch.
            if matches!(self.signals[d], Signal::Const(_)) {
                continue;
            }
            for neg in [false, true] {
                let val = |w: usize| if neg { !v[w] } else { v[w] };
                let false_pos = count((0..words).map(|w| val(w) & !t[w] & care[w]));
                let false_neg = count((0..words).map(|w| !val(w) & t[w] & care[w]));
                let zeros = count((0..words).map(|w| !val(w) & care[w]));
                let ones = count((0..words).map(|w| val(w) & care[w]));
                if false_pos == 0 && false_neg > 0 && ones > 0 {
                    tries.push((zeros, d, neg, 0));
                }
                if false_neg == 0 && false_pos > 0 && zeros > 0 {
                    tries.push((ones, d, neg, 1));
                }
                if !neg && false_pos + false_neg > 0 {
                    tries.push((false_pos + false_neg, d, neg, 2));
                }
            }
        }
        // The fewest rows left for the patch first, two candidates per form.
        tries.sort_by_key(|&(rows, d, neg, form)| (rows, form, d, neg));
        let mut per_form = [0usize; 3];
        for (_, d, neg, form) in tries {
            if per_form[form as usize] >= 2 {
                continue;
            }
            per_form[form as usize] += 1;
            let v = &self.bits[d];
            let val = |w: usize| if neg { !v[w] } else { v[w] };
            let (pt, pcare): (Vec<u64>, Vec<u64>) = match form {
                0 => (t.to_vec(), (0..words).map(|w| !val(w) & care[w]).collect()),
                1 => (t.to_vec(), (0..words).map(|w| val(w) & care[w]).collect()),
                _ => ((0..words).map(|w| t[w] ^ v[w]).collect(), care.to_vec()),
            };
            if let Some(p) = self.solve(&pt, &pcare, budget - 1) {
                let tt = match form {
                    0 => tt_of(|a, b| (a ^ neg) || b),
                    1 => tt_of(|a, b| (a ^ neg) && b),
                    _ => tt_of(|a, b| a ^ b),
                };
                return Some(Expr::gate(tt, Expr::Div(d), p));
            }
        }
        None
    }

    /// A greedy sum of products equal to `t` on `care`: each product isolates one still-uncovered
    /// row of the on-set from every row of the off-set. Covers the smaller of the two sets (and
    /// negates at the end when that was the off-set).
    fn cover(&self, t: &[u64], care: &[u64]) -> Option<Expr> {
        let words = self.words;
        let on_n = count((0..words).map(|w| t[w] & care[w]));
        let off_n = count((0..words).map(|w| !t[w] & care[w]));
        if on_n.min(off_n) > COVER_MAX_PRODUCTS {
            return None;
        }
        let negate = off_n < on_n;
        let target: Vec<u64> = (0..words).map(|w| if negate { !t[w] } else { t[w] } & care[w]).collect();
        let off: Vec<u64> = (0..words).map(|w| !target[w] & care[w]).collect();
        let mut uncovered = target.clone();
        let mut products: Vec<Expr> = Vec::new();
        while let Some(r) = (0..words)
            .find(|&w| uncovered[w] != 0)
            .map(|w| w * 64 + uncovered[w].trailing_zeros() as usize)
        {
            let (rw, rb) = (r / 64, r % 64);
            let mut term: Option<Expr> = None;
            let mut term_bits = care.to_vec();
            while count((0..words).map(|w| term_bits[w] & off[w])) > 0 {
                // The literal (a divisor, negated if it is 0 on row r) that removes the most off-set
                // rows from the product, then keeps the most uncovered on-set rows.
                let mut best: Option<(usize, usize, usize, bool)> = None;
                for (d, v) in self.bits.iter().enumerate() {
                    let neg = (v[rw] >> rb) & 1 == 0;
                    let lit = |w: usize| if neg { !v[w] } else { v[w] };
                    let removed = count((0..words).map(|w| term_bits[w] & off[w] & !lit(w)));
                    if removed == 0 {
                        continue;
                    }
                    let kept = count((0..words).map(|w| term_bits[w] & uncovered[w] & lit(w)));
                    if best.is_none_or(|(br, bk, _, _)| (removed, kept) > (br, bk)) {
                        best = Some((removed, kept, d, neg));
                    }
                }
                let (_, _, d, neg) = best?;
                let v = &self.bits[d];
                for w in 0..words {
                    term_bits[w] &= if neg { !v[w] } else { v[w] };
                }
                term = Some(match term {
                    None if !neg => Expr::Div(d),
                    None => Self::not(Expr::Div(d)),
                    Some(e) => Expr::gate(tt_of(|a, b| a && (b ^ neg)), e, Expr::Div(d)),
                });
            }
            for w in 0..words {
                uncovered[w] &= !term_bits[w];
            }
            // A product with no literal is the constant 1 (the off-set is empty).
            products.push(term.unwrap_or(Expr::Div(self.const_index(true)?)));
        }
        // OR the products as a balanced tree: a chain of thousands would be as deep, and emitting
        // or dropping it recursively would overflow the stack.
        while products.len() > 1 {
            let mut next = Vec::with_capacity(products.len().div_ceil(2));
            let mut it = products.into_iter();
            while let Some(a) = it.next() {
                next.push(match it.next() {
                    Some(b) => Expr::gate(tt_of(|x, y| x || y), a, b),
                    None => a,
                });
            }
            products = next;
        }
        let sum = match products.pop() {
            Some(e) => e,
            None => Expr::Div(self.const_index(false)?),
        };
        Some(if negate { Self::not(sum) } else { sum })
    }

    /// An expression equal to `t` on `care`, by splitting on the inputs in `vars`: an input that
    /// never changes `t` is dropped; an input that always flips it is split off by XOR; otherwise
    /// the input that flips `t` most often is split by Shannon expansion (a multiplexer). Leaves
    /// are existing signals or single gates over two of them; a leaf left with no input to split
    /// (possible in partial tables) is covered by a sum of products. Always succeeds, since every
    /// step is an identity on the rows in `care`.
    fn decompose(&self, t: &[u64], care: &[u64], vars: u64, rows: &RowIndex) -> Option<Expr> {
        let words = self.words;
        if let Some(e) = self.find(t, care) {
            return Some(e);
        }
        if let Some(e) = self.find_pair(t, care) {
            return Some(e);
        }
        let bit = |v: &[u64], r: usize| (v[r / 64] >> (r % 64)) & 1 == 1;
        let mut best: Option<(f64, usize)> = None;
        for x in (0..64).filter(|x| vars >> x & 1 == 1) {
            let (mut same, mut flip) = (0usize, 0usize);
            for (r, &p) in rows.partner[x].iter().enumerate() {
                if let Some(p) = p {
                    if r < p && bit(care, r) && bit(care, p) {
                        if bit(t, r) == bit(t, p) {
                            same += 1;
                        } else {
                            flip += 1;
                        }
                    }
                }
            }
            let rest = vars & !(1u64 << x);
            let xs = &rows.input_bits[x];
            if flip == 0 {
                return self.decompose(t, care, rest, rows);
            }
            if same == 0 {
                let tx: Vec<u64> = (0..words).map(|w| t[w] ^ xs[w]).collect();
                let e = self.decompose(&tx, care, rest, rows)?;
                return Some(Expr::gate(tt_of(|a, b| a ^ b), Expr::Div(rows.input_div[x]), e));
            }
            let influence = flip as f64 / (same + flip) as f64;
            if best.is_none_or(|(b, _)| influence > b) {
                best = Some((influence, x));
            }
        }
        let Some((_, x)) = best else {
            return self.cover(t, care);
        };
        let rest = vars & !(1u64 << x);
        let xs = &rows.input_bits[x];
        let hi: Vec<u64> = (0..words).map(|w| care[w] & xs[w]).collect();
        let lo: Vec<u64> = (0..words).map(|w| care[w] & !xs[w]).collect();
        let t1 = self.decompose(t, &hi, rest, rows)?;
        let t0 = self.decompose(t, &lo, rest, rows)?;
        let xd = Expr::Div(rows.input_div[x]);
        let and1 = Expr::gate(tt_of(|a, b| a && b), xd.clone(), t1);
        let and0 = Expr::gate(tt_of(|a, b| !a && b), xd, t0);
        Some(Expr::gate(tt_of(|a, b| a || b), and1, and0))
    }

    /// NOT reads only its first argument; the second is the constant 0, which emits nothing.
    fn not(e: Expr) -> Expr {
        Expr::gate(0b0011, e, Expr::Div(0))
    }

    fn const_index(&self, value: bool) -> Option<usize> {
        self.signals.iter().position(|&s| s == Signal::Const(value))
    }
}

/// Appends `e` to `c` and returns the signal carrying its value.
fn emit(e: &Expr, c: &mut Circuit, divs: &Divisors) -> Option<Signal> {
    match e {
        Expr::Div(d) => Some(divs.signals[*d]),
        Expr::Gate(tt, a, b) => {
            let sa = emit(a, c, divs)?;
            let sb = emit(b, c, divs)?;
            let g = gate_from_truth_table(*tt, sa, sb);
            // Constant and pass-through gates are not worth a gate.
            match g.op {
                Op::Buf => Some(g.args[0]),
                Op::Const0 => Some(Signal::Const(false)),
                Op::Const1 => Some(Signal::Const(true)),
                _ => c.push(g).ok(),
            }
        }
    }
}

/// Makes `circuit` exact on `table` by rebuilding each wrong output from the circuit's own signals,
/// spending at most `max_new_gates` gates per output on the resubstitution steps; with `complete`,
/// an output is also rebuilt by decomposition and as a sum of products (always possible on a
/// table of at most [`COMPLETE_MAX_ROWS`] rows), keeping the smallest circuit. Returns
/// `None` when the circuit's inputs are not the table's inputs in order, or when it cannot be made
/// exact within the limits. An already exact circuit comes back unchanged (simplified).
pub fn repair(circuit: &Circuit, table: &Table, max_new_gates: usize, complete: bool) -> Option<Repaired> {
    repair_until(circuit, table, max_new_gates, complete, None)
}

/// [`repair`] within a deadline: once it has passed, the searches (resubstitution, decomposition,
/// sum of products) are skipped and only the decision diagram, linear in the rows, still rebuilds
/// a wrong output of a complete table; without `complete` nothing is rebuilt and the result is
/// `None` unless the circuit was exact.
pub fn repair_until(
    circuit: &Circuit,
    table: &Table,
    max_new_gates: usize,
    complete: bool,
    deadline: Option<std::time::Instant>,
) -> Option<Repaired> {
    let late = || deadline.is_some_and(|d| std::time::Instant::now() >= d);
    if circuit.inputs() != table.input_names() {
        return None;
    }
    // The rebuilding steps grow faster than linearly in the rows (a random 16-input function
    // takes seconds, 17 inputs a minute); past this size only resubstitution runs.
    let complete = complete && table.len() <= COMPLETE_MAX_ROWS;
    let outs = circuit.eval_table(table).ok()?;
    let care = table.row_mask();
    let words = table.words();
    let divs = Divisors::new(circuit, table);
    let mut c = circuit.clone();
    let start_gates = c.num_gates();
    let mut fixed_rows = 0;
    let mut method = RepairMethod::None;
    // Built on first use: only a complete repair of a wrong output needs it.
    let mut rows: Option<RowIndex> = None;
    for (j, name) in table.output_names().iter().enumerate() {
        let t = table.output_bits(j);
        let wrong = count((0..words).map(|w| (outs[j][w] ^ t[w]) & care[w]));
        if wrong == 0 {
            continue;
        }
        fixed_rows += wrong;
        divs.searches_left.set(300);
        let mut found: Vec<(RepairMethod, Expr)> = Vec::new();
        if late() && !complete {
            return None;
        }
        if !late() {
            if let Some(e) = divs.solve(t, &care, max_new_gates) {
                found.push((RepairMethod::Resubstitution, e));
            }
        }
        if complete && !late() {
            // Decomposition and cover always succeed on a consistent table; resubstitution with a
            // generous budget may still be smaller. Keep the smallest (the first on ties).
            divs.searches_left.set(2000);
            if rows.is_none() {
                rows = Some(RowIndex::new(table, &divs)?);
            }
            let rows = rows.as_ref()?;
            found.extend(
                divs.decompose(t, &care, rows.all_inputs, rows)
                    .map(|e| (RepairMethod::Decomposition, e)),
            );
            found.extend(divs.cover(t, &care).map(|e| (RepairMethod::Cover, e)));
        }
        let mut trials: Vec<(RepairMethod, Circuit)> = Vec::with_capacity(found.len() + 1);
        for (how, e) in found {
            let mut trial = c.clone();
            let s = emit(&e, &mut trial, &divs)?;
            trial.set_output(name, s).ok()?;
            trials.push((how, trial));
        }
        if complete {
            let mut trial = c.clone();
            if let Some(s) = decision_diagram(&mut trial, table, j) {
                trial.set_output(name, s).ok()?;
                trials.push((RepairMethod::Decomposition, trial));
            }
        }
        // Judge each candidate by the size of the whole simplified circuit: a rebuilt output may
        // leave the old one's gates unread, and reusing trained gates costs nothing.
        let (how, trial) = trials.into_iter().min_by_key(|(_, trial)| trial.simplify().num_gates())?;
        method = method.max(how);
        c = trial;
    }
    let added_gates = c.num_gates() - start_gates;
    let circuit = c.simplify();
    let exact = crate::verify::verify(&circuit, table).map(|v| v.ok()).unwrap_or(false);
    exact.then_some(Repaired {
        circuit,
        added_gates,
        fixed_rows,
        method,
    })
}

/// `c` with gate `g` computed by `e` instead (whose arguments must come before `g`).
fn with_gate(c: &Circuit, g: usize, e: &crate::circuit::GateExpr) -> Option<Circuit> {
    let mut out = Circuit::new(c.inputs().to_vec());
    for (i, gate) in c.gates().iter().enumerate() {
        out.push(if i == g { e.clone() } else { gate.clone() }).ok()?;
    }
    for (name, s) in c.outputs() {
        out.set_output(name, *s).ok()?;
    }
    Some(out)
}

/// Whether two sets of output columns agree on every row (bits past the last row are ignored).
fn same_on_rows(a: &[Vec<u64>], b: &[Vec<u64>], care: &[u64]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.iter().zip(y).zip(care).all(|((p, q), m)| (p ^ q) & m == 0))
}

/// Tables with more rows than this get no rebuilding in [`repair`]'s complete mode (2^16: a
/// complete 16-input table).
pub const COMPLETE_MAX_ROWS: usize = 1 << 16;

/// The sum of products is skipped when it would need more products than this (the smaller of the
/// on- and off-set): its cost grows with the square of the rows, and on such tables the
/// decompositions are smaller anyway.
const COVER_MAX_PRODUCTS: usize = 4096;

/// Largest circuit [`shrink`] works on: each pass is quadratic in the number of signals.
pub const SHRINK_MAX_GATES: usize = 400;

/// Makes `circuit` smaller without changing what it computes on any row of a *complete* table:
/// each gate, from the last to the first, is replaced by an earlier signal, its negation, or one
/// gate over two earlier signals that agrees with it on every row, whenever that leaves fewer
/// gates after simplification (the gates only it read fall away). This is resubstitution as
/// logic synthesis tools use it for area, with the truth table as the care set.
///
/// A partial table (not all 2^n rows) or a circuit over other inputs comes back simplified but
/// otherwise unchanged: there the rows do not pin down the function, and resubstitution would
/// change the answers on rows the table does not have. So does a circuit larger than
/// [`SHRINK_MAX_GATES`].
pub fn shrink(circuit: &Circuit, table: &Table) -> Circuit {
    shrink_until(circuit, table, None)
}

/// [`shrink`] within a deadline: it stops at the first gate it reaches after `deadline` and
/// returns what it has, which computes the same function.
pub fn shrink_until(circuit: &Circuit, table: &Table, deadline: Option<std::time::Instant>) -> Circuit {
    let mut c = circuit.simplify();
    if !table.is_complete() || c.inputs() != table.input_names() || c.num_gates() > SHRINK_MAX_GATES {
        return c;
    }
    let Ok(reference) = c.eval_table(table) else {
        return c;
    };
    let care = table.row_mask();
    let words = table.words();
    'passes: loop {
        let gate_value: Vec<Vec<u64>> = c
            .gate_columns(table.input_columns(), words)
            .into_iter()
            .map(|v| v.iter().zip(&care).map(|(a, m)| a & m).collect())
            .collect();
        let divs = Divisors::from_gate_columns(table, &gate_value);
        // Divisors are deduplicated by value; for each gate, the divisors defined before it.
        let position = |s: Signal| match s {
            Signal::Const(_) | Signal::Input(_) => 0,
            Signal::Gate(k) => k + 1,
        };
        let size = c.num_gates();
        for g in (0..size).rev() {
            if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                return c;
            }
            let t = &gate_value[g];
            let earlier: Vec<usize> = (0..divs.bits.len()).filter(|&d| position(divs.signals[d]) <= g).collect();
            let mut candidates: Vec<crate::circuit::GateExpr> = Vec::new();
            for &d in &earlier {
                let v = &divs.bits[d];
                if (0..words).all(|w| v[w] == t[w]) {
                    candidates.push(crate::circuit::GateExpr {
                        op: Op::Buf,
                        args: vec![divs.signals[d]],
                    });
                } else if (0..words).all(|w| (!v[w] & care[w]) == t[w]) {
                    candidates.push(crate::circuit::GateExpr {
                        op: Op::Not,
                        args: vec![divs.signals[d]],
                    });
                }
            }
            'pairs: for (ii, &i) in earlier.iter().enumerate() {
                for &j in &earlier[ii + 1..] {
                    if candidates.len() >= 16 {
                        break 'pairs;
                    }
                    if let Some(tt) = pair_function(&divs.bits[i], &divs.bits[j], t, &care) {
                        candidates.push(gate_from_truth_table(tt, divs.signals[i], divs.signals[j]));
                    }
                }
            }
            for e in &candidates {
                if let Some(trial) = with_gate(&c, g, e).map(|t| t.simplify()) {
                    if trial.num_gates() < size && trial.eval_table(table).is_ok_and(|v| same_on_rows(&v, &reference, &care)) {
                        c = trial;
                        continue 'passes;
                    }
                }
            }
        }
        return c;
    }
}

/// Output `j` of a complete table built from the inputs alone as a reduced, shared decision
/// diagram: split on the inputs in order of influence, skip an input the function ignores, use
/// one XOR where the function flips with the input, and reuse every sub-function (or its
/// negation) already built. Symmetric and arithmetic functions have small diagrams, where the
/// tree-shaped [`Divisors::decompose`] repeats itself. `None` for a partial table, more than 16
/// inputs, or a circuit over other inputs.
fn decision_diagram(c: &mut Circuit, table: &Table, j: usize) -> Option<Signal> {
    let n = table.num_inputs();
    if !table.is_complete() || n > 16 || c.inputs() != table.input_names() {
        return None;
    }
    let mut f = vec![false; 1 << n];
    for row in table.rows() {
        f[row.inputs as usize] = (row.outputs >> j) & 1 == 1;
    }
    let influence = |x: usize| (0..f.len()).filter(|&p| p >> x & 1 == 0 && f[p] != f[p | 1 << x]).count();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&x| (std::cmp::Reverse(influence(x)), x));
    // Local index: bit n-1-d holds input order[d], so the first split halves the table.
    let local: Vec<bool> = (0..1usize << n)
        .map(|l| {
            let p: usize = (0..n).map(|d| ((l >> (n - 1 - d)) & 1) << order[d]).sum();
            f[p]
        })
        .collect();
    let mut memo: HashMap<Vec<bool>, Signal> = HashMap::new();
    build_diagram(&local, 0, &order, c, &mut memo)
}

fn build_diagram(f: &[bool], depth: usize, order: &[usize], c: &mut Circuit, memo: &mut HashMap<Vec<bool>, Signal>) -> Option<Signal> {
    if f.iter().all(|&b| b == f[0]) {
        return Some(Signal::Const(f[0]));
    }
    if let Some(&s) = memo.get(f) {
        return Some(s);
    }
    let negated: Vec<bool> = f.iter().map(|b| !b).collect();
    if let Some(&s) = memo.get(&negated) {
        let out = c.push(gate_from_truth_table(0b0011, s, s)).ok()?;
        memo.insert(f.to_vec(), out);
        return Some(out);
    }
    let half = f.len() / 2;
    let (f0, f1) = (&f[..half], &f[half..]);
    let x = Signal::Input(order[depth]);
    let push = |c: &mut Circuit, tt: u8, a: Signal, b: Signal| c.push(gate_from_truth_table(tt, a, b)).ok();
    let out = if f0 == f1 {
        build_diagram(f0, depth + 1, order, c, memo)?
    } else if f0.iter().zip(f1).all(|(a, b)| a != b) {
        let g0 = build_diagram(f0, depth + 1, order, c, memo)?;
        match g0 {
            Signal::Const(false) => x,
            Signal::Const(true) => push(c, 0b0011, x, x)?,
            _ => push(c, 0b0110, x, g0)?,
        }
    } else {
        let g0 = build_diagram(f0, depth + 1, order, c, memo)?;
        let g1 = build_diagram(f1, depth + 1, order, c, memo)?;
        // Bit 2a + b of the truth table is f(a, b); a is the input x.
        match (g0, g1) {
            (Signal::Const(false), _) => push(c, 0b1000, x, g1)?,
            (Signal::Const(true), _) => push(c, 0b1011, x, g1)?,
            (_, Signal::Const(true)) => push(c, 0b1110, x, g0)?,
            (_, Signal::Const(false)) => push(c, 0b0010, x, g0)?,
            _ => {
                let hi = push(c, 0b1000, x, g1)?;
                let lo = push(c, 0b0010, x, g0)?;
                push(c, 0b1110, hi, lo)?
            }
        }
    };
    memo.insert(f.to_vec(), out);
    Some(out)
}
