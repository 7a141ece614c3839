//! Exact synthesis: the smallest circuit over a gate basis that matches a
//! table, by iterative deepening over gate count.
//!
//! For a fixed size `k` a depth-first search appends gates one at a time.
//! Each candidate gate is evaluated bit-parallel over the table rows, and
//! the tree is pruned with facts that hold for every *minimal* circuit:
//!
//! * no gate computes the same function (on the rows present; absent rows
//!   are don't-cares) as an input, a constant or an earlier gate;
//! * every gate is read by a later gate or is an output, and every input the
//!   outputs essentially depend on is read; with `r` gates left and `u`
//!   output functions still missing, the `r` gates offer `2r` reads, at
//!   least `r - u` of them are themselves unused, so
//!   `unused gates + unread essential inputs <= r + u`;
//! * when `r == u`, every remaining gate must be one of the missing outputs;
//! * two adjacent gates that do not depend on each other could be swapped,
//!   so only the order with the lexicographically larger `(b, a, function)`
//!   key second is explored (bubble-sorting any circuit this way strictly
//!   decreases its key sequence, so a canonical order always exists).
//!
//! Tables of at most 64 present rows run on a faster engine (one `u64` per
//! signal, fixed arrays, see `Fast`) that adds, for the full basis, the
//! restriction to *normal* circuits (every gate 0 on the first row; exact
//! because negations can be absorbed into readers), a lookup for the last
//! gate, and a filter on the second-to-last one. Sizes start from a lower
//! bound counting the reads that essential inputs need.
//!
//! Having exhausted every size below `k`, a circuit of size `k` is proven
//! minimal. Past `max_gates` or the timeout, a Shannon-expansion circuit is
//! returned instead with `optimal: false`.
//!
//! [`search`] runs this enumeration for a slice of the time budget and then
//! hands the first size it has not refuted to the SAT engine
//! ([`crate::exact_sat`]), which is several times faster on the larger
//! sizes; [`search_with`] picks one engine explicitly, and
//! [`SearchResult::engine`] says which one ran last.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::circuit::{apply_tt_word, Circuit, GateExpr, Op, Signal, BINARY_OPS};
use crate::exact_sat::{self, SatParams};
use crate::table::{Row, Table};

/// The set of operations the search may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Basis {
    ops: Vec<Op>,
}

impl Basis {
    /// All eight binary operations (every non-trivial two-input function,
    /// counting argument swaps of IMPLIES and NIMPLIES). No NOT: a lone
    /// negation is written `x NAND x`.
    pub fn all() -> Basis {
        Basis { ops: BINARY_OPS.to_vec() }
    }

    /// Builds a basis from explicit operations (binary ops and NOT only).
    pub fn new(ops: &[Op]) -> Result<Basis, String> {
        let mut out: Vec<Op> = Vec::new();
        for &op in ops {
            if !(BINARY_OPS.contains(&op) || op == Op::Not) {
                return Err(format!("{} cannot be part of a basis", op.name()));
            }
            if !out.contains(&op) {
                out.push(op);
            }
        }
        if out.is_empty() {
            return Err("the basis is empty".into());
        }
        Ok(Basis { ops: out })
    }

    /// Parses a comma-separated list such as `AND,OR,NAND` (case-insensitive).
    pub fn parse(spec: &str) -> Result<Basis, String> {
        let mut ops = Vec::new();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let op = Op::from_name(part)
                .ok_or_else(|| format!("unknown gate '{part}' in basis (use AND, OR, XOR, NAND, NOR, XNOR, IMPLIES, NIMPLIES, NOT)"))?;
            ops.push(op);
        }
        Basis::new(&ops)
    }

    /// The operations.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// Whether `op` is in the basis.
    pub fn contains(&self, op: Op) -> bool {
        self.ops.contains(&op)
    }
}

impl Default for Basis {
    fn default() -> Self {
        Basis::all()
    }
}

impl fmt::Display for Basis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.ops.iter().map(|o| o.name()).collect();
        f.write_str(&names.join(","))
    }
}

/// Limits and basis for [`search`].
#[derive(Debug, Clone)]
pub struct SearchOptions {
    /// Gate operations allowed.
    pub basis: Basis,
    /// Largest gate count the exact search tries.
    pub max_gates: usize,
    /// Wall-clock budget for the exact search (`None` = unlimited).
    pub timeout: Option<Duration>,
}

impl Default for SearchOptions {
    fn default() -> Self {
        SearchOptions {
            basis: Basis::all(),
            max_gates: 12,
            timeout: Some(Duration::from_secs(10)),
        }
    }
}

/// Outcome of [`search`] or [`minimise`].
#[derive(Debug, Clone)]
pub struct SearchResult {
    /// The circuit found (matches every row of the table).
    pub circuit: Circuit,
    /// Whether no smaller circuit over the basis exists.
    pub optimal: bool,
    /// Gate count of `circuit`.
    pub gates: usize,
    /// Wall-clock time spent.
    pub seconds: f64,
    /// Search nodes (gate placements) explored.
    pub nodes: u64,
    /// Every size below this was proven impossible.
    pub lower_bound: usize,
    /// The engine that ran last: the one that found `circuit` when it is
    /// optimal (sizes refuted earlier may come from the other engine), else
    /// the one whose limits ran out.
    pub engine: Engine,
}

/// An exact-synthesis algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Engine {
    /// Depth-first enumeration of gate lists (this module).
    Enumeration,
    /// A SAT solver over the SSV encoding ([`crate::exact_sat`]).
    Sat,
}

impl Engine {
    /// Lower-case name, as in the CLI's JSON output: `enumeration` or `sat`.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Enumeration => "enumeration",
            Engine::Sat => "sat",
        }
    }
}

/// Which engines [`search_with`] may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EngineChoice {
    /// Enumeration first, for a small slice of the time budget (it settles
    /// tables of up to four inputs in milliseconds), then SAT from the first
    /// size not yet refuted (it is several times faster from about seven
    /// gates up; see BENCHMARKS.md). Enumeration alone where the SAT
    /// encoding does not apply.
    #[default]
    Auto,
    /// Enumeration only.
    Enumeration,
    /// SAT only, or enumeration where the SAT encoding does not apply
    /// (one-input tables, more than 4096 rows).
    Sat,
}

impl EngineChoice {
    /// Parses `auto`, `sat`, `enum` or `enumeration` (case-insensitive).
    pub fn parse(s: &str) -> Result<EngineChoice, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(EngineChoice::Auto),
            "sat" => Ok(EngineChoice::Sat),
            "enum" | "enumeration" => Ok(EngineChoice::Enumeration),
            other => Err(format!("unknown engine '{other}' (use auto, sat or enum)")),
        }
    }
}

/// Why a search could produce no circuit at all.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SearchError {
    /// The basis cannot express a needed function (e.g. only AND/OR for a
    /// non-monotone table) and the exact search found nothing.
    #[error("no circuit over basis {basis} with at most {max_gates} gates, and the basis cannot express {missing} for the fallback construction")]
    Inexpressible {
        /// The basis, comma-separated.
        basis: String,
        /// The bound that was searched.
        max_gates: usize,
        /// The function the basis lacks.
        missing: &'static str,
    },
}

const NEG: u8 = u8::MAX;

/// The two-input truth tables a basis computes, in the order its ops are listed: each op's own
/// table, then the table with its arguments swapped (f(0,1) and f(1,0), bits 1 and 2, exchanged),
/// each table once, with the op that computes it and whether the arguments are swapped. NOT is
/// left out; [`neg_form`] handles it.
pub(crate) fn basis_codes(basis: &Basis) -> Vec<(u8, Op, bool)> {
    let mut codes: Vec<(u8, Op, bool)> = Vec::new();
    for &op in basis.ops() {
        if op == Op::Not {
            continue;
        }
        let tt = op.truth_table();
        let swapped = (tt & 0b1001) | ((tt & 0b0010) << 1) | ((tt & 0b0100) >> 1);
        for (t, sw) in [(tt, false), (swapped, true)] {
            if !codes.iter().any(|c| c.0 == t) {
                codes.push((t, op, sw));
            }
        }
    }
    codes
}

/// [`basis_codes`] indexed by truth table.
pub(crate) fn basis_code_table(basis: &Basis) -> [Option<(Op, bool)>; 16] {
    let mut table = [None; 16];
    for (t, op, sw) in basis_codes(basis) {
        table[t as usize] = Some((op, sw));
    }
    table
}

/// How the basis writes a lone negation, if it can.
#[derive(Debug, Clone, Copy)]
pub(crate) enum NegForm {
    Not,
    Same(Op),
    WithConst(Op, bool, bool), // op, constant value, constant goes first
}

struct GeneralEngine<'a> {
    n: usize,
    w: usize,
    mask: Vec<u64>,
    /// Truth tables of all signals, `w` words each: inputs then gates.
    tts: Vec<u64>,
    /// Binary candidate functions (4-bit tables over `(a, b)` with `a < b`)
    /// and the op/argument order that realises each.
    cands: Vec<(u8, Op, bool)>,
    neg: Option<NegForm>,
    targets: Vec<Vec<u64>>,
    matched: Vec<u32>,
    essential: u64,
    uses: Vec<u32>,
    gates: Vec<(usize, usize, u8)>,
    budget: Budget,
    scratch: Vec<u64>,
    _table: &'a Table,
}

impl<'a> GeneralEngine<'a> {
    fn new(table: &'a Table, basis: &Basis, targets: Vec<Vec<u64>>, essential: u64) -> Self {
        let w = table.words();
        let mask = table.row_mask();
        let n = table.num_inputs();
        let mut tts = Vec::with_capacity((n + 16) * w);
        for i in 0..n {
            tts.extend(table.input_bits(i).iter().zip(&mask).map(|(a, m)| a & m));
        }
        let cands = basis_codes(basis);
        let neg = neg_form(basis);
        let t = targets.len();
        GeneralEngine {
            n,
            w,
            mask,
            tts,
            cands,
            neg,
            targets,
            matched: vec![0; t],
            essential,
            uses: vec![0; n],
            gates: Vec::new(),
            budget: Budget::default(),
            scratch: vec![0; w],
            _table: table,
        }
    }

    fn sig(&self, s: usize) -> &[u64] {
        &self.tts[s * self.w..(s + 1) * self.w]
    }

    /// Whether the scratch function equals an existing signal or a constant.
    fn redundant(&self, nsig: usize) -> bool {
        let f = &self.scratch;
        let zero = f.iter().all(|&x| x == 0);
        let one = f.iter().zip(&self.mask).all(|(x, m)| *x == *m);
        if zero || one {
            return true;
        }
        (0..nsig).any(|s| self.sig(s) == f.as_slice())
    }

    fn run(&mut self, k: usize) -> bool {
        debug_assert!(self.gates.is_empty());
        self.dfs(0, k)
    }

    fn dfs(&mut self, i: usize, k: usize) -> bool {
        if self.budget.visit(4095) {
            return false;
        }
        let nsig = self.n + i;
        let u = self.matched.iter().filter(|&&m| m == 0).count();
        // Unused gates that are not outputs, and unread essential inputs:
        // both still need a reader.
        let mut need: Vec<usize> = Vec::new();
        for s in 0..nsig {
            if self.uses[s] > 0 {
                continue;
            }
            if s < self.n {
                if self.essential >> s & 1 == 1 {
                    need.push(s);
                }
            } else if !self.targets.iter().any(|t| t.as_slice() == self.sig(s)) {
                need.push(s);
            }
        }
        if i == k {
            return u == 0 && need.is_empty();
        }
        let r = k - i;
        if u == 0 || u > r || need.len() > r + u {
            return false;
        }
        if r == u && u >= 2 {
            return self.finish_with_targets();
        }
        // With one gate and one output left, the gate must be that output
        // (and, by the read bound below, read everything that needs a reader).
        let must_be_target = r == u;
        let prev = if i > 0 { Some(self.gates[i - 1]) } else { None };
        let last_sig = nsig - 1;
        // After this gate the bound must still hold: whether or not the new
        // gate is an output, that requires it to read at least
        // `need - (r + u - 2)` of the signals that need a reader.
        let must_read = need.len().saturating_sub(r + u - 2);
        let in_need = |s: usize| need.contains(&s);
        for b in 0..nsig {
            if let Some(p) = prev {
                if b < p.1 && b != last_sig {
                    continue;
                }
            }
            for a in 0..=b {
                let is_neg = a == b;
                if is_neg && self.neg.is_none() {
                    continue;
                }
                if must_read > 0 {
                    let covered = in_need(a) as usize + (!is_neg && in_need(b)) as usize;
                    if covered < must_read {
                        continue;
                    }
                }
                let reads_prev = i > 0 && (a == last_sig || b == last_sig);
                let ncand = if is_neg { 1 } else { self.cands.len() };
                for ci in 0..ncand {
                    let code = if is_neg { NEG } else { ci as u8 };
                    if let (Some(p), false) = (prev, reads_prev) {
                        if (b, a, code) <= (p.1, p.0, p.2) {
                            continue;
                        }
                    }
                    self.eval_into_scratch(a, b, code);
                    if must_be_target && !(0..self.targets.len()).any(|t| self.matched[t] == 0 && self.targets[t] == self.scratch) {
                        continue;
                    }
                    if self.redundant(nsig) {
                        continue;
                    }
                    // Targets are deduplicated, so a gate matches at most one.
                    let hit = (0..self.targets.len()).find(|&t| self.targets[t] == self.scratch);
                    let hits = hit.as_slice();
                    self.place(a, b, code);
                    for &t in hits {
                        self.matched[t] += 1;
                    }
                    if self.dfs(i + 1, k) {
                        return true;
                    }
                    for &t in hits {
                        self.matched[t] -= 1;
                    }
                    self.unplace();
                    if self.budget.timed_out {
                        return false;
                    }
                }
            }
        }
        false
    }

    fn eval_into_scratch(&mut self, a: usize, b: usize, code: u8) {
        let w = self.w;
        let (sa, sb) = (a * w, b * w);
        if code == NEG {
            for x in 0..w {
                self.scratch[x] = !self.tts[sa + x] & self.mask[x];
            }
        } else {
            let tt = self.cands[code as usize].0;
            for x in 0..w {
                self.scratch[x] = apply_tt_word(tt, self.tts[sa + x], self.tts[sb + x]) & self.mask[x];
            }
        }
    }

    fn place(&mut self, a: usize, b: usize, code: u8) {
        self.tts.extend_from_slice(&self.scratch);
        self.uses.push(0);
        self.uses[a] += 1;
        if code != NEG {
            self.uses[b] += 1;
        }
        self.gates.push((a, b, code));
    }

    fn unplace(&mut self) {
        let (a, b, code) = self.gates.pop().expect("a gate to remove");
        self.uses[a] -= 1;
        if code != NEG {
            self.uses[b] -= 1;
        }
        self.uses.pop();
        self.tts.truncate(self.tts.len() - self.w);
    }

    /// Every remaining gate must be a missing output. Adding any output that
    /// is computable in one gate can only help the others, so a greedy
    /// closure decides whether a completion exists, with no branching.
    fn finish_with_targets(&mut self) -> bool {
        let placed_before = self.gates.len();
        let mut progress = true;
        while progress {
            progress = false;
            for t in 0..self.targets.len() {
                if self.matched[t] > 0 {
                    continue;
                }
                if let Some((a, b, code)) = self.find_gate_for(t) {
                    self.eval_into_scratch(a, b, code);
                    self.place(a, b, code);
                    self.matched[t] += 1;
                    progress = true;
                }
            }
        }
        if self.matched.iter().all(|&m| m > 0) {
            return true;
        }
        while self.gates.len() > placed_before {
            let g = self.n + self.gates.len() - 1;
            if let Some(t) = (0..self.targets.len()).find(|&t| self.targets[t] == self.sig(g)) {
                self.matched[t] -= 1;
            }
            self.unplace();
        }
        false
    }

    fn find_gate_for(&mut self, t: usize) -> Option<(usize, usize, u8)> {
        let nsig = self.n + self.gates.len();
        for b in 0..nsig {
            for a in 0..=b {
                if a == b && self.neg.is_none() {
                    continue;
                }
                let codes: Vec<u8> = if a == b { vec![NEG] } else { (0..self.cands.len() as u8).collect() };
                for code in codes {
                    self.budget.nodes += 1;
                    self.eval_into_scratch(a, b, code);
                    if self.scratch == self.targets[t] {
                        return Some((a, b, code));
                    }
                }
            }
        }
        None
    }

    /// Converts the gate stack into a circuit for `table`.
    fn circuit(&self, table: &Table) -> Circuit {
        let mut c = Circuit::for_table(table);
        let sig = |s: usize| {
            if s < self.n {
                Signal::Input(s)
            } else {
                Signal::Gate(s - self.n)
            }
        };
        for &(a, b, code) in &self.gates {
            let expr = if code == NEG {
                neg_expr(self.neg.expect("negation only used when available"), sig(a))
            } else {
                let (_, op, swapped) = self.cands[code as usize];
                let args = if swapped { vec![sig(b), sig(a)] } else { vec![sig(a), sig(b)] };
                GateExpr { op, args }
            };
            c.push(expr).expect("search gates only read earlier signals");
        }
        let nsig = self.n + self.gates.len();
        for (j, name) in table.output_names().iter().enumerate() {
            let want: Vec<u64> = table.output_bits(j).iter().zip(&self.mask).map(|(a, m)| a & m).collect();
            let s = if want.iter().all(|&x| x == 0) {
                Signal::Const(false)
            } else if want == self.mask {
                Signal::Const(true)
            } else {
                let s = (0..nsig)
                    .find(|&s| self.sig(s) == want.as_slice())
                    .expect("every output is matched by a solution");
                sig(s)
            };
            c.set_output(name, s).expect("valid");
        }
        c
    }
}

/// Search effort and the time limit, shared by both engines.
#[derive(Default)]
struct Budget {
    /// Search nodes (gate placements and last-gate lookups) explored.
    nodes: u64,
    deadline: Option<Instant>,
    timed_out: bool,
}

impl Budget {
    /// Counts a node and says whether the search must stop. Reading the clock costs more than a
    /// node, so it is read only when `nodes & clock_mask == 0`.
    fn visit(&mut self, clock_mask: u64) -> bool {
        self.nodes += 1;
        if self.nodes & clock_mask == 0 && self.deadline.is_some_and(|d| Instant::now() > d) {
            self.timed_out = true;
        }
        self.timed_out
    }
}

/// Most signals (inputs plus gates) the single-word engine holds.
const FAST_MAX: usize = 64;
/// "No gate" in [`Fast::lookup`].
const NO_CODE: u8 = u8::MAX - 1;

/// The engine for tables of at most 64 present rows: every signal is one
/// `u64`, all state lives in fixed arrays, and the last gate is found by a
/// table lookup instead of enumeration.
///
/// Over a basis closed under negating gate inputs and outputs (all binary
/// ops), it searches *normal* circuits only: every gate is 0 on the first
/// present row. Any circuit can be made normal without changing its size
/// (complement a gate and absorb the negation into its readers' ops), so
/// this is exact, and halves the choices for every gate. Targets are
/// normalised the same way and output polarities are restored at the end.
struct Fast {
    n: usize,
    mask: u64,
    sig: [u64; FAST_MAX],
    uses: [u8; FAST_MAX],
    /// Gate signal equals a (normalised) target.
    is_target: [bool; FAST_MAX],
    /// `(a, b, code)`; `a == b` with `code == NEG` is a negation.
    gates: Vec<(u8, u8, u8)>,
    /// Allowed non-degenerate two-input truth tables (bit `2a + b`).
    codes: Vec<u8>,
    /// Op and argument order realising each 4-bit truth table.
    code_op: [Option<(Op, bool)>; 16],
    /// `(care, value)` over the four `(a, b)` combinations → a code index
    /// agreeing with `value` on `care`, or [`NO_CODE`].
    lookup: [[u8; 16]; 16],
    neg: Option<NegForm>,
    neg_ok: bool,
    normal: bool,
    targets: Vec<u64>,
    /// Whether the table's output is the complement of the normalised target.
    flipped: Vec<bool>,
    matched: Vec<u32>,
    essential: u64,
    budget: Budget,
}

impl Fast {
    /// `None` when the table needs more than one word or too many signals.
    fn new(table: &Table, basis: &Basis, targets: &[Vec<u64>], essential: u64, max_gates: usize) -> Option<Fast> {
        let n = table.num_inputs();
        if table.words() != 1 || n + max_gates.max(8) > FAST_MAX {
            return None;
        }
        let mask = table.row_mask()[0];
        let mut sig = [0u64; FAST_MAX];
        for (i, s) in sig.iter_mut().enumerate().take(n) {
            *s = table.input_bits(i)[0] & mask;
        }
        let code_op = basis_code_table(basis);
        let codes: Vec<u8> = (0..16u8).filter(|&t| code_op[t as usize].is_some()).collect();
        let mut lookup = [[NO_CODE; 16]; 16];
        for (care, row) in lookup.iter_mut().enumerate() {
            for (val, slot) in row.iter_mut().enumerate() {
                if let Some(ci) = codes.iter().position(|&c| (c as usize ^ val) & care == 0) {
                    *slot = ci as u8;
                }
            }
        }
        let neg = neg_form(basis);
        let mut t: Vec<u64> = targets.iter().map(|v| v[0]).collect();
        let inputs = &sig[..n];
        // Normal circuits are exact when every non-degenerate two-input
        // function is available, no output is the complement of an input
        // (that one needs a gate only because it cannot be absorbed) and no
        // two outputs are complements of each other.
        let full = codes.len() == 10;
        let normal =
            full && mask & 1 == 1 && !t.iter().any(|&x| inputs.contains(&(x ^ mask))) && !t.iter().any(|&x| t.contains(&(x ^ mask)));
        let mut flipped = vec![false; t.len()];
        if normal {
            for (x, f) in t.iter_mut().zip(&mut flipped) {
                if *x & 1 == 1 {
                    *x ^= mask;
                    *f = true;
                }
            }
        }
        let m = t.len();
        Some(Fast {
            n,
            mask,
            sig,
            uses: [0; FAST_MAX],
            is_target: [false; FAST_MAX],
            gates: Vec::with_capacity(FAST_MAX),
            codes,
            code_op,
            lookup,
            neg,
            neg_ok: neg.is_some() && !normal,
            normal,
            targets: t,
            flipped,
            matched: vec![0; m],
            essential,
            budget: Budget::default(),
        })
    }

    fn run(&mut self, k: usize) -> bool {
        debug_assert!(self.gates.is_empty());
        if self.n + k > FAST_MAX {
            return false;
        }
        self.dfs(k)
    }

    /// Signals that still need a reader: unread essential inputs and unread
    /// gates that are not outputs.
    fn need_mask(&self, nsig: usize) -> u64 {
        let mut need = 0u64;
        for s in 0..nsig {
            if self.uses[s] == 0
                && (if s < self.n {
                    self.essential >> s & 1 == 1
                } else {
                    !self.is_target[s]
                })
            {
                need |= 1 << s;
            }
        }
        need
    }

    /// Whether `v` is a constant or an existing signal (or, for normal
    /// circuits, the complement of one: its readers could absorb that).
    #[inline]
    fn redundant(&self, v: u64, nsig: usize) -> bool {
        if v == 0 || v == self.mask {
            return true;
        }
        let sigs = &self.sig[..nsig];
        if self.normal {
            let c = v ^ self.mask;
            sigs.iter().any(|&s| s == v || s == c)
        } else {
            sigs.contains(&v)
        }
    }

    #[inline]
    fn place(&mut self, a: usize, b: usize, code: u8, v: u64) {
        let g = self.n + self.gates.len();
        self.sig[g] = v;
        self.uses[g] = 0;
        self.uses[a] += 1;
        if code != NEG {
            self.uses[b] += 1;
        }
        let hit = self.targets.iter().position(|&t| t == v);
        self.is_target[g] = hit.is_some();
        if let Some(t) = hit {
            self.matched[t] += 1;
        }
        self.gates.push((a as u8, b as u8, code));
    }

    #[inline]
    fn unplace(&mut self) {
        let (a, b, code) = self.gates.pop().expect("a gate to remove");
        let g = self.n + self.gates.len();
        self.uses[a as usize] -= 1;
        if code != NEG {
            self.uses[b as usize] -= 1;
        }
        if self.is_target[g] {
            let v = self.sig[g];
            if let Some(t) = self.targets.iter().position(|&t| t == v) {
                self.matched[t] -= 1;
            }
        }
    }

    fn dfs(&mut self, k: usize) -> bool {
        if self.budget.visit(1023) {
            return false;
        }
        let i = self.gates.len();
        let nsig = self.n + i;
        let u = self.matched.iter().filter(|&&m| m == 0).count();
        let need = self.need_mask(nsig);
        let nneed = need.count_ones() as usize;
        if i == k {
            return u == 0 && nneed == 0;
        }
        let r = k - i;
        if u == 0 || u > r || nneed > r + u {
            return false;
        }
        if r == u && u >= 2 {
            return self.finish_with_targets();
        }
        if r == 1 {
            return self.last_gate(need);
        }
        // After this gate the read bound must still hold, so it has to read
        // at least this many of the signals that need a reader.
        let must_read = nneed.saturating_sub(r + u - 2) as u64;
        let prev = self.gates.last().map(|&(a, b, c)| (b as usize, a as usize, c));
        let last_sig = nsig - 1;
        let mask = self.mask;
        // Two gates and one output left: the last gate is `F(z, y)` for
        // this gate `z` and an existing `y`, so on each half of the rows
        // split by `y` the target is constant or equals `z` or `!z`. Each
        // `y` is summarised once here; a gate failing this for every `y`
        // is dropped without descending.
        let filter = r == 2 && u == 1 && !self.neg_ok;
        let target = if filter {
            self.targets[self.matched.iter().position(|&m| m == 0).unwrap_or(0)]
        } else {
            0
        };
        let mut halves = [(0u64, 0u64); FAST_MAX];
        if filter {
            for (h, &y) in halves.iter_mut().zip(&self.sig[..nsig]) {
                let (y0, y1) = (!y & mask, y & mask);
                let free = |half: u64| target & half == 0 || target & half == half;
                // A half where the target is constant constrains nothing.
                *h = (if free(y0) { 0 } else { y0 }, if free(y1) { 0 } else { y1 });
            }
        }
        let fits = |h: (u64, u64), v: u64| {
            let (d0, d1) = ((v ^ target) & h.0, (v ^ target) & h.1);
            (d0 == 0 || d0 == h.0) && (d1 == 0 || d1 == h.1)
        };
        for b in 0..nsig {
            if let Some(p) = prev {
                if b < p.0 && b != last_sig {
                    continue;
                }
            }
            let vb = self.sig[b];
            for a in 0..=b {
                let is_neg = a == b;
                if is_neg && !self.neg_ok {
                    continue;
                }
                if must_read > 0 {
                    let covered = (need >> a & 1) + if is_neg { 0 } else { need >> b & 1 };
                    if covered < must_read {
                        continue;
                    }
                }
                let reads_prev = i > 0 && (a == last_sig || b == last_sig);
                let va = self.sig[a];
                let ncodes = if is_neg { 1 } else { self.codes.len() };
                for ci in 0..ncodes {
                    let code = if is_neg { NEG } else { ci as u8 };
                    if let (Some(p), false) = (prev, reads_prev) {
                        if (b, a, code) <= p {
                            continue;
                        }
                    }
                    let v = if is_neg {
                        !va & mask
                    } else {
                        apply_tt_word(self.codes[ci], va, vb) & mask
                    };
                    if self.normal && v & 1 != 0 {
                        continue;
                    }
                    if self.redundant(v, nsig) {
                        continue;
                    }
                    if filter {
                        let rem = need & !(1u64 << a | 1u64 << b);
                        let ok = match rem.count_ones() {
                            0 => halves[..nsig].iter().any(|&h| fits(h, v)),
                            1 => fits(halves[rem.trailing_zeros() as usize], v),
                            _ => false,
                        };
                        if !ok {
                            continue;
                        }
                    }
                    self.place(a, b, code, v);
                    if self.dfs(k) {
                        return true;
                    }
                    self.unplace();
                    if self.budget.timed_out {
                        return false;
                    }
                }
            }
        }
        false
    }

    /// A gate on `a < b` computing `t` on every present row, if the basis has one.
    #[inline]
    fn pair_code(&self, a: usize, b: usize, t: u64) -> Option<u8> {
        let (va, vb, m) = (self.sig[a], self.sig[b], self.mask);
        let parts = [!va & !vb & m, !va & vb & m, va & !vb & m, va & vb & m];
        let (mut care, mut val) = (0usize, 0usize);
        for (c, &p) in parts.iter().enumerate() {
            if p == 0 {
                continue;
            }
            let on = t & p;
            if on == p {
                care |= 1 << c;
                val |= 1 << c;
            } else if on == 0 {
                care |= 1 << c;
            } else {
                return None;
            }
        }
        let ci = self.lookup[care][val];
        (ci != NO_CODE).then_some(ci)
    }

    /// One gate and one output left: the gate must compute the output and
    /// read every signal that still needs a reader (at most two).
    fn last_gate(&mut self, need: u64) -> bool {
        let Some(ti) = self.matched.iter().position(|&m| m == 0) else {
            return false;
        };
        let t = self.targets[ti];
        let nsig = self.n + self.gates.len();
        let try_pair = |s: &mut Self, a: usize, b: usize| -> bool {
            let (a, b) = if a < b { (a, b) } else { (b, a) };
            match s.pair_code(a, b, t) {
                Some(ci) => {
                    s.place(a, b, ci, t);
                    true
                }
                None => false,
            }
        };
        let try_neg = |s: &mut Self, a: usize| -> bool {
            if s.neg_ok && !s.sig[a] & s.mask == t {
                s.place(a, a, NEG, t);
                true
            } else {
                false
            }
        };
        match need.count_ones() {
            2 => {
                let x = need.trailing_zeros() as usize;
                let y = (need & (need - 1)).trailing_zeros() as usize;
                try_pair(self, x, y)
            }
            1 => {
                let x = need.trailing_zeros() as usize;
                (0..nsig).any(|y| y != x && try_pair(self, x, y)) || try_neg(self, x)
            }
            0 => (0..nsig).any(|b| (0..b).any(|a| try_pair(self, a, b)) || try_neg(self, b)),
            _ => false,
        }
    }

    /// Every remaining gate must be a missing output; adding any output
    /// computable in one gate can only help the others, so a greedy closure
    /// decides whether a completion exists.
    fn finish_with_targets(&mut self) -> bool {
        let placed_before = self.gates.len();
        let mut progress = true;
        while progress {
            progress = false;
            for ti in 0..self.targets.len() {
                if self.matched[ti] > 0 {
                    continue;
                }
                let t = self.targets[ti];
                let nsig = self.n + self.gates.len();
                self.budget.nodes += 1;
                let mut found = None;
                'outer: for b in 0..nsig {
                    if self.neg_ok && !self.sig[b] & self.mask == t {
                        found = Some((b, b, NEG));
                        break;
                    }
                    for a in 0..b {
                        if let Some(ci) = self.pair_code(a, b, t) {
                            found = Some((a, b, ci));
                            break 'outer;
                        }
                    }
                }
                if let Some((a, b, code)) = found {
                    self.place(a, b, code, t);
                    progress = true;
                }
            }
        }
        let nsig = self.n + self.gates.len();
        if self.matched.iter().all(|&m| m > 0) && self.need_mask(nsig) == 0 {
            return true;
        }
        while self.gates.len() > placed_before {
            self.unplace();
        }
        false
    }

    /// Converts the gate stack into a circuit for `table`, restoring output
    /// polarities of normal circuits.
    fn circuit(&self, table: &Table) -> Circuit {
        let ng = self.gates.len();
        let nsig = self.n + ng;
        // Gates whose complement the table wants.
        let mut flip = [false; FAST_MAX];
        for (f, &v) in flip.iter_mut().zip(&self.sig).take(nsig).skip(self.n) {
            if let Some(t) = self.targets.iter().position(|&t| t == v) {
                *f = self.flipped[t];
            }
        }
        let value = |s: usize| if flip[s] { self.sig[s] ^ self.mask } else { self.sig[s] };
        let sig = |s: usize| {
            if s < self.n {
                Signal::Input(s)
            } else {
                Signal::Gate(s - self.n)
            }
        };
        let mut c = Circuit::for_table(table);
        for (j, &(a, b, code)) in self.gates.iter().enumerate() {
            let (a, b) = (a as usize, b as usize);
            let expr = if code == NEG {
                neg_expr(self.neg.expect("negation only used when available"), sig(a))
            } else {
                let mut tt = self.codes[code as usize];
                if flip[a] {
                    tt = (tt >> 2 & 0b11) | (tt & 0b11) << 2;
                }
                if flip[b] {
                    tt = (tt >> 1 & 0b101) | (tt & 0b101) << 1;
                }
                if flip[self.n + j] {
                    tt ^= 0xF;
                }
                let (op, swapped) = self.code_op[tt as usize].expect("normal circuits use a full basis");
                let args = if swapped { vec![sig(b), sig(a)] } else { vec![sig(a), sig(b)] };
                GateExpr { op, args }
            };
            c.push(expr).expect("search gates only read earlier signals");
        }
        for (j, name) in table.output_names().iter().enumerate() {
            let want = table.output_bits(j)[0] & self.mask;
            let s = if want == 0 {
                Signal::Const(false)
            } else if want == self.mask {
                Signal::Const(true)
            } else {
                sig((0..nsig)
                    .find(|&s| value(s) == want)
                    .expect("every output is matched by a solution"))
            };
            c.set_output(name, s).expect("valid");
        }
        c
    }
}

/// How `basis` writes a lone negation, if it can.
pub(crate) fn neg_form(basis: &Basis) -> Option<NegForm> {
    if basis.contains(Op::Not) {
        Some(NegForm::Not)
    } else if basis.contains(Op::Nand) {
        Some(NegForm::Same(Op::Nand))
    } else if basis.contains(Op::Nor) {
        Some(NegForm::Same(Op::Nor))
    } else if basis.contains(Op::Xor) {
        Some(NegForm::WithConst(Op::Xor, true, false))
    } else if basis.contains(Op::Xnor) {
        Some(NegForm::WithConst(Op::Xnor, false, false))
    } else if basis.contains(Op::Implies) {
        Some(NegForm::WithConst(Op::Implies, false, false))
    } else if basis.contains(Op::Nimplies) {
        Some(NegForm::WithConst(Op::Nimplies, true, true))
    } else {
        None
    }
}

pub(crate) fn neg_expr(form: NegForm, x: Signal) -> GateExpr {
    match form {
        NegForm::Not => GateExpr {
            op: Op::Not,
            args: vec![x],
        },
        NegForm::Same(op) => GateExpr { op, args: vec![x, x] },
        NegForm::WithConst(op, v, first) => GateExpr {
            op,
            args: if first {
                vec![Signal::Const(v), x]
            } else {
                vec![x, Signal::Const(v)]
            },
        },
    }
}

/// The fast engine where it applies, else the general multi-word one.
enum Exact<'a> {
    Fast(Box<Fast>),
    General(Box<GeneralEngine<'a>>),
}

impl<'a> Exact<'a> {
    fn new(table: &'a Table, basis: &Basis, targets: Vec<Vec<u64>>, essential: u64, max_gates: usize) -> Self {
        match Fast::new(table, basis, &targets, essential, max_gates) {
            Some(f) => Exact::Fast(Box::new(f)),
            None => Exact::General(Box::new(GeneralEngine::new(table, basis, targets, essential))),
        }
    }

    fn budget(&self) -> &Budget {
        match self {
            Exact::Fast(e) => &e.budget,
            Exact::General(e) => &e.budget,
        }
    }

    fn set_deadline(&mut self, d: Option<Instant>) {
        match self {
            Exact::Fast(e) => e.budget.deadline = d,
            Exact::General(e) => e.budget.deadline = d,
        }
    }

    fn run(&mut self, k: usize) -> bool {
        match self {
            Exact::Fast(e) => e.run(k),
            Exact::General(e) => e.run(k),
        }
    }

    fn timed_out(&self) -> bool {
        self.budget().timed_out
    }

    fn nodes(&self) -> u64 {
        self.budget().nodes
    }

    fn circuit(&self, table: &Table) -> Circuit {
        match self {
            Exact::Fast(e) => e.circuit(table),
            Exact::General(e) => e.circuit(table),
        }
    }
}

/// Sizes below this are impossible: each of the `u` targets is a distinct
/// gate, and the `2k` reads must cover every essential input and every
/// non-output gate (`2k >= ess + k - u`).
pub(crate) fn size_lower_bound(targets: &[Vec<u64>], essential: u64) -> usize {
    let u = targets.len();
    if u == 0 {
        return 0;
    }
    u.max((essential.count_ones() as usize).saturating_sub(u))
}

/// Output functions that need gates (not constant, not equal to an input),
/// deduplicated, plus the inputs they essentially depend on.
pub(crate) fn targets_of(table: &Table) -> (Vec<Vec<u64>>, u64) {
    let mask = table.row_mask();
    let masked = |v: &[u64]| -> Vec<u64> { v.iter().zip(&mask).map(|(a, m)| a & m).collect() };
    let inputs: Vec<Vec<u64>> = (0..table.num_inputs()).map(|i| masked(table.input_bits(i))).collect();
    let mut targets: Vec<Vec<u64>> = Vec::new();
    let mut target_outs: u64 = 0;
    for j in 0..table.num_outputs() {
        let t = masked(table.output_bits(j));
        let trivial = t.iter().all(|&x| x == 0) || t == mask || inputs.contains(&t);
        if !trivial {
            target_outs |= 1 << j;
            if !targets.contains(&t) {
                targets.push(t);
            }
        }
    }
    // Input i is essential when flipping it alone changes a target output on
    // two rows that are both present.
    let index: HashMap<u64, &Row> = table.rows().iter().map(|r| (r.inputs, r)).collect();
    let mut essential = 0u64;
    for row in table.rows() {
        for i in 0..table.num_inputs() {
            if let Some(other) = index.get(&(row.inputs ^ (1 << i))) {
                if (row.outputs ^ other.outputs) & target_outs != 0 {
                    essential |= 1 << i;
                }
            }
        }
    }
    (targets, essential)
}

/// Finds a minimum-size circuit for `table` over `opts.basis`, choosing
/// the engine automatically (see [`EngineChoice::Auto`]).
///
/// Sizes from a lower bound up to `max_gates` are tried in turn. If a
/// circuit is found it is optimal. Otherwise (bound or timeout reached) a
/// Shannon-expansion circuit is returned with `optimal: false` — or
/// `optimal: true` if it happens to have exactly one gate more than the
/// sizes already refuted.
pub fn search(table: &Table, opts: &SearchOptions) -> Result<SearchResult, SearchError> {
    search_with(table, opts, EngineChoice::Auto)
}

/// Share of the exact-search budget that [`EngineChoice::Auto`] gives
/// enumeration before switching to SAT, and the least it gives it. Tables
/// of up to four inputs (single output) finish in a few milliseconds by
/// enumeration, where building SAT instances costs more.
const AUTO_ENUM_SHARE: u32 = 20;
const AUTO_ENUM_MIN: Duration = Duration::from_millis(100);
/// Enumeration's slice under [`EngineChoice::Auto`] without a timeout.
const AUTO_ENUM_UNLIMITED: Duration = Duration::from_millis(500);

/// [`search`] with an explicit choice of engine.
pub fn search_with(table: &Table, opts: &SearchOptions, choice: EngineChoice) -> Result<SearchResult, SearchError> {
    let start = Instant::now();
    let (targets, essential) = targets_of(table);
    let multi = targets.len() > 1;
    let lb = size_lower_bound(&targets, essential);
    // A tenth of the budget (at most a second) is kept for resynthesising the
    // fallback when no size is proven, so the answer stays within --timeout.
    let polish = opts.timeout.map(|t| (t / 10).min(Duration::from_secs(1)));
    let exact_budget = opts.timeout.map(|t| t.saturating_sub(polish.unwrap_or_default()));
    // With several outputs, keep half the budget for solving them one by
    // one if the joint search runs out: that usually beats Shannon by far.
    let exact_end = exact_budget.and_then(|t| start.checked_add(if multi { t / 2 } else { t }));
    let sat_ok = choice != EngineChoice::Enumeration && exact_sat::supports(table, &opts.basis);
    let first = lb.min(opts.max_gates + 1);
    let mut refuted = first; // all sizes < refuted are impossible
    let mut nodes = 0;
    let mut engine = Engine::Enumeration;
    let found = |circuit: Circuit, k: usize, nodes: u64, engine: Engine| SearchResult {
        gates: circuit.num_gates(),
        circuit,
        optimal: true,
        seconds: start.elapsed().as_secs_f64(),
        nodes,
        lower_bound: k,
        engine,
    };
    let enum_end = match (choice, sat_ok) {
        (EngineChoice::Sat, true) => Some(start), // no enumeration
        (EngineChoice::Auto, true) => {
            let share = opts
                .timeout
                .map_or(AUTO_ENUM_UNLIMITED, |t| (t / AUTO_ENUM_SHARE).max(AUTO_ENUM_MIN));
            match start.checked_add(share) {
                Some(slice) => Some(exact_end.map_or(slice, |e| e.min(slice))),
                None => exact_end,
            }
        }
        _ => exact_end,
    };
    if enum_end.is_none_or(|e| e > start) {
        let mut eng = Exact::new(table, &opts.basis, targets, essential, opts.max_gates);
        eng.set_deadline(enum_end);
        for k in first..=opts.max_gates {
            if eng.run(k) {
                return Ok(found(eng.circuit(table), k, eng.nodes(), Engine::Enumeration));
            }
            if eng.timed_out() {
                break;
            }
            refuted = k + 1;
        }
        nodes += eng.nodes();
    }
    if sat_ok && refuted <= opts.max_gates {
        let params = SatParams {
            basis: opts.basis.clone(),
            max_gates: opts.max_gates,
            timeout: exact_end.map(|e| e.saturating_duration_since(Instant::now())),
            conflict_limit: None,
            threads: 1,
            min_gates: refuted,
        };
        // An error here (an instance too large, or a decoded circuit that
        // fails verification) leaves the enumeration's bound and the
        // fallback below; it never yields a wrong circuit.
        if let Ok(r) = exact_sat::synthesize(table, &params) {
            engine = Engine::Sat;
            nodes += r.stats.conflicts;
            if let Some(c) = r.circuit {
                return Ok(found(c, r.lower_bound, nodes, Engine::Sat));
            }
            refuted = refuted.max(r.lower_bound);
        }
    }
    let mut circuit = fallback(table, &opts.basis, opts.max_gates)?;
    if multi {
        let end = exact_budget.and_then(|t| start.checked_add(t));
        if let Some((c, n)) = per_output(table, opts, choice, end) {
            nodes += n;
            if c.num_gates() < circuit.num_gates() {
                circuit = c;
            }
        }
    }
    // The fallback is a Shannon expansion (or the outputs solved one by one);
    // resynthesis with the optimum four-input library and resubstitution
    // shrinks it, often by half (majority-5: 22 gates to 12). It never
    // changes the function, and a result outside the basis is translated
    // back into it, kept only when still smaller.
    if circuit.num_gates() > refuted {
        let left = opts
            .timeout
            .and_then(|t| start.checked_add(t))
            .map(|end| end.saturating_duration_since(Instant::now()));
        let params = crate::optimise::OptimiseParams {
            timeout: Some(left.unwrap_or(Duration::from_secs(10)).min(Duration::from_secs(10))),
            // The fallback already is the truth table's Shannon expansion.
            restructure: false,
            ..Default::default()
        };
        let (better, _) = crate::optimise::optimise(&circuit, &params);
        if let Ok(better) = into_basis(&better, &opts.basis, opts.max_gates) {
            if better.num_gates() < circuit.num_gates() && crate::verify::verify(&better, table).is_ok_and(|v| v.ok()) {
                circuit = better;
            }
        }
    }
    let gates = circuit.num_gates();
    Ok(SearchResult {
        optimal: gates == refuted,
        gates,
        circuit,
        seconds: start.elapsed().as_secs_f64(),
        nodes,
        lower_bound: refuted,
        engine,
    })
}

/// Solves each output on its own (sharing the time left equally) and merges
/// the circuits, reusing identical gates. `None` if some output fails.
fn per_output(table: &Table, opts: &SearchOptions, choice: EngineChoice, end: Option<Instant>) -> Option<(Circuit, u64)> {
    let m = table.num_outputs();
    let mut merged = Circuit::for_table(table);
    let mut seen: HashMap<GateExpr, Signal> = HashMap::new();
    let mut nodes = 0;
    for j in 0..m {
        let rows = table
            .rows()
            .iter()
            .map(|r| Row {
                outputs: r.outputs >> j & 1,
                ..*r
            })
            .collect();
        let name = table.output_names()[j].clone();
        let single = Table::from_rows(table.source(), table.input_names().to_vec(), vec![name.clone()], rows);
        let timeout = end.map(|e| e.saturating_duration_since(Instant::now()) / (m - j) as u32);
        let sub = SearchOptions { timeout, ..opts.clone() };
        let r = search_with(&single, &sub, choice).ok()?;
        nodes += r.nodes;
        let mut map: Vec<Signal> = Vec::new();
        let remap = |map: &Vec<Signal>, s: Signal| match s {
            Signal::Gate(g) => map[g],
            other => other,
        };
        for g in r.circuit.gates() {
            let key = GateExpr {
                op: g.op,
                args: g.args.iter().map(|&s| remap(&map, s)).collect(),
            };
            let s = match seen.get(&key) {
                Some(&s) => s,
                None => {
                    let s = merged.push(key.clone()).expect("valid");
                    seen.insert(key, s);
                    s
                }
            };
            map.push(s);
        }
        let out = remap(&map, r.circuit.outputs()[0].1);
        merged.set_output(&name, out).expect("valid");
    }
    Some((merged.remove_dead(), nodes))
}

/// Tries to shrink `circuit` (which must match `table`): runs the exact
/// search with at most `gates - 1` gates and returns the smaller circuit if
/// one exists, else the (simplified) original. `optimal` is true when the
/// search proved nothing smaller exists.
pub fn minimise(circuit: &Circuit, table: &Table, opts: &SearchOptions) -> Result<SearchResult, SearchError> {
    let start = Instant::now();
    let given = circuit.simplify();
    let g = given.num_gates();
    if g == 0 {
        return Ok(SearchResult {
            circuit: given,
            optimal: true,
            gates: 0,
            seconds: start.elapsed().as_secs_f64(),
            nodes: 0,
            lower_bound: 0,
            engine: Engine::Enumeration,
        });
    }
    let (targets, essential) = targets_of(table);
    let lb = size_lower_bound(&targets, essential);
    let mut eng = Exact::new(table, &opts.basis, targets, essential, opts.max_gates);
    eng.set_deadline(opts.timeout.and_then(|t| start.checked_add(t)));
    let bound = (g - 1).min(opts.max_gates);
    let first = lb.min(g);
    let mut refuted = first;
    for k in first..=bound {
        if eng.run(k) {
            let c = eng.circuit(table);
            return Ok(SearchResult {
                gates: c.num_gates(),
                circuit: c,
                optimal: true,
                seconds: start.elapsed().as_secs_f64(),
                nodes: eng.nodes(),
                lower_bound: k,
                engine: Engine::Enumeration,
            });
        }
        if eng.timed_out() {
            break;
        }
        refuted = k + 1;
    }
    Ok(SearchResult {
        circuit: given,
        optimal: refuted == g,
        gates: g,
        seconds: start.elapsed().as_secs_f64(),
        nodes: eng.nodes(),
        lower_bound: refuted,
        engine: Engine::Enumeration,
    })
}

/// Shannon expansion over inputs in column order, with shared sub-results,
/// built from AND/OR/NOT and then rewritten into `basis`. Absent rows are
/// don't-cares: a cofactor with no rows is treated as whatever is cheaper.
pub fn fallback(table: &Table, basis: &Basis, max_gates: usize) -> Result<Circuit, SearchError> {
    let mut c = Circuit::for_table(table);
    let mut memo: ShannonMemo = HashMap::new();
    let n = table.num_inputs();
    let mut outs = Vec::new();
    for j in 0..table.num_outputs() {
        let rows: Vec<(u64, bool)> = table.rows().iter().map(|r| (r.inputs, r.outputs >> j & 1 == 1)).collect();
        outs.push(shannon(&mut c, &mut memo, rows, 0, n));
    }
    for (j, name) in table.output_names().iter().enumerate() {
        c.set_output(name, outs[j]).expect("valid");
    }
    let c = c.simplify();
    into_basis(&c, basis, max_gates)
}

/// Shared sub-results of the Shannon expansion: (first variable, rows) → signal.
type ShannonMemo = HashMap<(usize, Vec<(u64, bool)>), Signal>;

fn shannon(c: &mut Circuit, memo: &mut ShannonMemo, rows: Vec<(u64, bool)>, var: usize, n: usize) -> Signal {
    if rows.iter().all(|r| r.1) {
        return Signal::Const(true);
    }
    if rows.iter().all(|r| !r.1) {
        return Signal::Const(false);
    }
    for j in var..n {
        if rows.iter().all(|r| (r.0 >> j & 1 == 1) == r.1) {
            return Signal::Input(j);
        }
    }
    let key = (var, rows);
    if let Some(&s) = memo.get(&key) {
        return s;
    }
    let (var, rows) = key;
    let (ones, zeros): (Vec<_>, Vec<_>) = rows.iter().partition(|r| r.0 >> var & 1 == 1);
    let s = if ones.is_empty() {
        shannon(c, memo, zeros, var + 1, n)
    } else if zeros.is_empty() {
        shannon(c, memo, ones, var + 1, n)
    } else {
        let f1 = shannon(c, memo, ones, var + 1, n);
        let f0 = shannon(c, memo, zeros, var + 1, n);
        if f0 == f1 {
            f0
        } else {
            let x = Signal::Input(var);
            let hi = c.gate(Op::And, &[x, f1]).expect("valid");
            let nx = c.gate(Op::Not, &[x]).expect("valid");
            let lo = c.gate(Op::And, &[nx, f0]).expect("valid");
            c.gate(Op::Or, &[hi, lo]).expect("valid")
        }
    };
    memo.insert((var, rows), s);
    s
}

/// Rewrites every gate of `c` whose op is not in `basis` using a minimum
/// template found by exact search on that op's own small truth table.
fn into_basis(c: &Circuit, basis: &Basis, max_gates: usize) -> Result<Circuit, SearchError> {
    if c.gates().iter().all(|g| basis.contains(g.op)) {
        return Ok(c.clone());
    }
    let mut templates: HashMap<Op, Circuit> = HashMap::new();
    for g in c.gates() {
        if basis.contains(g.op) || templates.contains_key(&g.op) {
            continue;
        }
        let table = if g.op == Op::Not {
            Table::from_fn(&["a"], &["y"], |v| vec![!v[0]])
        } else {
            let op = g.op;
            Table::from_fn(&["a", "b"], &["y"], move |v| vec![op.apply(v[0], v[1])])
        };
        let (targets, essential) = targets_of(&table);
        let mut eng = Exact::new(&table, basis, targets, essential, 6);
        // Any complete basis writes a two-input function in a handful of
        // gates; failing that bound means the basis cannot express it.
        let found = (0..=6).any(|k| eng.run(k));
        if !found {
            return Err(SearchError::Inexpressible {
                basis: basis.to_string(),
                max_gates,
                missing: g.op.name(),
            });
        }
        templates.insert(g.op, eng.circuit(&table));
    }
    let mut out = Circuit::new(c.inputs().to_vec());
    let mut map: Vec<Signal> = Vec::new();
    let remap = |map: &Vec<Signal>, s: Signal| match s {
        Signal::Gate(g) => map[g],
        other => other,
    };
    for g in c.gates() {
        let args: Vec<Signal> = g.args.iter().map(|&s| remap(&map, s)).collect();
        let s = match templates.get(&g.op) {
            None => out.gate(g.op, &args).expect("valid"),
            Some(t) => {
                let mut local: Vec<Signal> = Vec::new();
                for tg in t.gates() {
                    let targs: Vec<Signal> = tg
                        .args
                        .iter()
                        .map(|&s| match s {
                            Signal::Input(i) => args[i],
                            Signal::Gate(k) => local[k],
                            other => other,
                        })
                        .collect();
                    local.push(out.gate(tg.op, &targs).expect("valid"));
                }
                match t.outputs()[0].1 {
                    Signal::Input(i) => args[i],
                    Signal::Gate(k) => local[k],
                    other => other,
                }
            }
        };
        map.push(s);
    }
    for (name, s) in c.outputs() {
        out.set_output(name, remap(&map, *s)).expect("valid");
    }
    Ok(out.remove_dead())
}
