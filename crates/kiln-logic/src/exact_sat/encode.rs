//! The CNF of "a circuit with exactly `k` gates" (see the module notes of
//! [`super`]) and the decoding of its models into circuits.

use crate::circuit::{Circuit, GateExpr, Op, Signal};
use crate::search::{neg_expr, neg_form, targets_of, Basis, NegForm};
use crate::table::Table;

use super::restrict::bound_restriction;
use super::SatError;

/// Tables with more care rows than this are left to other engines: the
/// encoding grows linearly in rows and a solver call would not finish.
pub(super) const MAX_ROWS: usize = 1 << 12;
/// Largest instance built, in clauses. Building is not interruptible, so
/// this also bounds how far past its deadline a call can run (about a
/// second); instances this large are far beyond what solves in minutes.
pub(super) const MAX_CLAUSES: usize = 1_000_000;

/// A literal while building clauses: input values on a row are constants.
#[derive(Clone, Copy)]
pub(super) enum L {
    Const(bool),
    Var(i32),
}

impl L {
    pub(super) fn not(self) -> L {
        match self {
            L::Const(b) => L::Const(!b),
            L::Var(v) => L::Var(-v),
        }
    }
    /// The literal "this equals `value`".
    pub(super) fn is(self, value: bool) -> L {
        if value {
            self
        } else {
            self.not()
        }
    }
}

/// The CNF for one size `k`, with the variable layout needed to decode it.
pub(super) struct Encoding {
    /// Inputs (signals `0..inputs`; gate `i` is signal `inputs + i`).
    pub(super) inputs: usize,
    pub(super) k: usize,
    pub(super) normal: bool,
    pub(super) cnf: Cnf,
    /// Per gate: `(j, l, var)` for each candidate fanin pair, in
    /// co-lexicographic order of `(l, j)`.
    pub(super) sel: Vec<Vec<(usize, usize, i32)>>,
    /// Per gate: variable of operator bit `2p + q`, 0 where fixed to 0.
    pub(super) op: Vec<[i32; 4]>,
    /// Per target, per gate: "the target is this gate".
    pub(super) out: Vec<Vec<i32>>,
    /// Per target: polarity variable (true = the output is the gate's complement).
    pub(super) pol: Vec<i32>,
    /// Selection variables of the first gate that a unit clause rules out.
    pub(super) first_excluded: Vec<i32>,
}

/// Clauses in DIMACS numbering (variables from 1, negative = negated).
#[derive(Default)]
pub(super) struct Cnf {
    pub(super) num_vars: i32,
    /// Literals, each clause terminated by 0.
    pub(super) lits: Vec<i32>,
    pub(super) num_clauses: usize,
}

/// What the encoding needs to know about the table, computed once for all sizes.
pub(super) struct Problem<'a> {
    pub(super) table: &'a Table,
    pub(super) n: usize,
    /// Input patterns of the simulated rows (care rows, minus the all-zero
    /// row in normal form).
    pub(super) rows: Vec<u64>,
    /// Per target, its value on each simulated row.
    pub(super) target_rows: Vec<Vec<bool>>,
    /// Per target, its value on the all-zero row when that row is present
    /// and the encoding is normal (fixes the polarity).
    pub(super) zero_value: Vec<Option<bool>>,
    pub(super) targets: Vec<Vec<u64>>,
    pub(super) essential: u64,
    pub(super) normal: bool,
    /// Allowed operator truth tables (bit `2p + q`), over all four bits.
    pub(super) allowed: [bool; 16],
    /// Op and argument order realising each allowed binary truth table.
    pub(super) code_op: [Option<(Op, bool)>; 16],
    pub(super) neg: Option<NegForm>,
}

/// Truth tables of the two negations of a fanin pair: `NOT a`, `NOT b`.
pub(super) const NOT_A: u8 = 0b0011;
pub(super) const NOT_B: u8 = 0b0101;

impl<'a> Problem<'a> {
    pub(super) fn new(table: &'a Table, basis: &Basis) -> Result<Problem<'a>, SatError> {
        let n = table.num_inputs();
        if table.len() > MAX_ROWS {
            return Err(SatError::Unsupported("more than 4096 rows"));
        }
        let (targets, essential) = targets_of(table);
        let code_op = crate::search::basis_code_table(basis);
        let neg = neg_form(basis);
        let mut allowed = [false; 16];
        for (t, a) in allowed.iter_mut().enumerate() {
            *a = code_op[t].is_some();
        }
        let full = allowed.iter().filter(|&&a| a).count() == 10;
        if neg.is_some() {
            allowed[NOT_A as usize] = true;
            allowed[NOT_B as usize] = true;
        }
        if !targets.is_empty() && n < 2 {
            // One input: every gate would need two distinct fanins.
            return Err(SatError::Unsupported("fewer than two inputs"));
        }
        let mask = table.row_mask();
        let complement_of_input = (0..n).any(|i| {
            let c: Vec<u64> = table.input_bits(i).iter().zip(&mask).map(|(x, m)| !x & m).collect();
            targets.contains(&c)
        });
        let normal = full && !complement_of_input;
        let bit = |v: &[u64], p: usize| v[p / 64] >> (p % 64) & 1 == 1;
        let zero_pos = table.rows().iter().position(|r| r.inputs == 0);
        let mut rows = Vec::new();
        let mut target_rows = vec![Vec::new(); targets.len()];
        for (p, r) in table.rows().iter().enumerate() {
            if normal && Some(p) == zero_pos {
                continue;
            }
            rows.push(r.inputs);
            for (tr, t) in target_rows.iter_mut().zip(&targets) {
                tr.push(bit(t, p));
            }
        }
        let zero_value = targets
            .iter()
            .map(|t| if normal { zero_pos.map(|p| bit(t, p)) } else { None })
            .collect();
        Ok(Problem {
            table,
            n,
            rows,
            target_rows,
            zero_value,
            targets,
            essential,
            normal,
            allowed,
            code_op,
            neg,
        })
    }

    /// Builds the CNF for exactly `k` gates, breaking the input symmetries
    /// `perms`, and with `rebracket` the re-bracketing symmetry (see
    /// [`super::SatParams::rebracketing`]).
    pub(super) fn encode(
        &self,
        k: usize,
        perms: &[Vec<usize>],
        rebracket: bool,
        restrictions: &[(usize, [Option<usize>; 2])],
    ) -> Result<Encoding, SatError> {
        let n = self.n;
        let nt = self.targets.len();
        let t_rows = self.rows.len();
        // Clause estimate: simulation (8 per fanin pair and row) and
        // at-most-one (a pair of pairs) dominate. Summed gate by gate so an
        // absurd `k` stops early instead of overflowing.
        let mut estimate = 0usize;
        for i in 0..k {
            let g = n + i;
            let pairs = g * g.saturating_sub(1) / 2;
            estimate = estimate.saturating_add(pairs.saturating_mul(8 * t_rows + pairs / 2));
            if estimate > MAX_CLAUSES {
                return Err(SatError::Unsupported("instance too large"));
            }
        }
        let mut e = Encoding {
            inputs: n,
            k,
            normal: self.normal,
            cnf: Cnf::default(),
            sel: Vec::with_capacity(k),
            op: Vec::with_capacity(k),
            out: Vec::with_capacity(nt),
            pol: Vec::with_capacity(nt),
            first_excluded: Vec::new(),
        };
        let mut sim: Vec<Vec<i32>> = Vec::with_capacity(k);
        for i in 0..k {
            let g = n + i;
            let mut pairs = Vec::new();
            for l in 1..g {
                for j in 0..l {
                    pairs.push((j, l, e.cnf.fresh()));
                }
            }
            e.sel.push(pairs);
            let mut op = [0i32; 4];
            for (b, slot) in op.iter_mut().enumerate() {
                if !(self.normal && b == 0) {
                    *slot = e.cnf.fresh();
                }
            }
            e.op.push(op);
            sim.push((0..t_rows).map(|_| e.cnf.fresh()).collect());
        }
        for _ in 0..nt {
            let row: Vec<i32> = (0..k).map(|_| e.cnf.fresh()).collect();
            e.out.push(row);
            let p = if self.normal { e.cnf.fresh() } else { 0 };
            e.pol.push(p);
        }
        // Value of signal `s` on simulated row `t`.
        let val = |s: usize, t: usize| -> L {
            if s < n {
                L::Const(self.rows[t] >> s & 1 == 1)
            } else {
                L::Var(sim[s - n][t])
            }
        };
        let mut clause: Vec<L> = Vec::with_capacity(8);
        for i in 0..k {
            let sel = &e.sel[i];
            // Exactly one fanin pair.
            let alo: Vec<L> = sel.iter().map(|&(_, _, v)| L::Var(v)).collect();
            e.cnf.add(&alo);
            for a in 0..sel.len() {
                for b in a + 1..sel.len() {
                    e.cnf.add(&[L::Var(-sel[a].2), L::Var(-sel[b].2)]);
                }
            }
            // Operator in the basis: exclude every disallowed truth table.
            let op = e.op[i];
            for tt in 0..16u8 {
                if self.allowed[tt as usize] || (self.normal && tt & 1 == 1) {
                    continue;
                }
                clause.clear();
                for (b, &v) in op.iter().enumerate() {
                    if v != 0 {
                        // Clause is falsified exactly by this truth table.
                        clause.push(L::Var(v).is(tt >> b & 1 == 0));
                    }
                }
                e.cnf.add(&clause);
            }
            // Simulation: s[i][j,l] ∧ x_j = p ∧ x_l = q → x_i = f[i][p,q].
            let sel = &e.sel[i];
            for &(j, l, s) in sel {
                for t in 0..t_rows {
                    let (xj, xl, xi) = (val(j, t), val(l, t), val(n + i, t));
                    for p in [false, true] {
                        for q in [false, true] {
                            let fb = op[2 * p as usize + q as usize];
                            let head = [L::Var(-s), xj.is(!p), xl.is(!q)];
                            if fb == 0 {
                                clause.clear();
                                clause.extend_from_slice(&head);
                                clause.push(xi.is(false));
                                e.cnf.add(&clause);
                            } else {
                                for v in [false, true] {
                                    clause.clear();
                                    clause.extend_from_slice(&head);
                                    clause.push(xi.is(!v));
                                    clause.push(L::Var(fb).is(v));
                                    e.cnf.add(&clause);
                                }
                            }
                        }
                    }
                }
            }
        }
        // Outputs: each target is some gate, with its polarity.
        for h in 0..nt {
            let gs: Vec<L> = e.out[h].iter().map(|&v| L::Var(v)).collect();
            e.cnf.add(&gs);
            if nt == 1 {
                // Nothing reads the last gate, so it is the output; an
                // earlier gate equal to the output would duplicate it.
                for (i, &g) in e.out[h].iter().enumerate() {
                    e.cnf.add(&[L::Var(g).is(i + 1 == k)]);
                }
            }
            let pol = e.pol[h];
            if let Some(z) = self.zero_value[h] {
                e.cnf.add(&[L::Var(pol).is(z)]);
            }
            for (&g, gate_sim) in e.out[h].iter().zip(&sim) {
                for (&x, &want) in gate_sim.iter().zip(&self.target_rows[h]) {
                    let xi = L::Var(x);
                    if pol == 0 {
                        e.cnf.add(&[L::Var(-g), xi.is(want)]);
                    } else {
                        // x XOR pol == want.
                        e.cnf.add(&[L::Var(-g), xi.is(want), L::Var(pol)]);
                        e.cnf.add(&[L::Var(-g), xi.is(!want), L::Var(-pol)]);
                    }
                }
            }
        }
        // Two outputs on one gate share its polarity (there are no free
        // output inverters).
        if self.normal {
            for h1 in 0..nt {
                for h2 in h1 + 1..nt {
                    let (p1, p2) = (e.pol[h1], e.pol[h2]);
                    for i in 0..k {
                        let (a, b) = (e.out[h1][i], e.out[h2][i]);
                        e.cnf.add(&[L::Var(-a), L::Var(-b), L::Var(-p1), L::Var(p2)]);
                        e.cnf.add(&[L::Var(-a), L::Var(-b), L::Var(p1), L::Var(-p2)]);
                    }
                }
            }
        }
        // Every gate is read later or is an output.
        for i in 0..k {
            let g = n + i;
            clause.clear();
            for later in i + 1..k {
                for &(j, l, s) in &e.sel[later] {
                    if j == g || l == g {
                        clause.push(L::Var(s));
                    }
                }
            }
            for h in 0..nt {
                clause.push(L::Var(e.out[h][i]));
            }
            e.cnf.add(&clause);
        }
        // Every essential input is read.
        for x in 0..n {
            if self.essential >> x & 1 == 0 {
                continue;
            }
            clause.clear();
            for i in 0..k {
                for &(j, l, s) in &e.sel[i] {
                    if j == x || l == x {
                        clause.push(L::Var(s));
                    }
                }
            }
            e.cnf.add(&clause);
        }
        // Co-lexicographic order of consecutive fanin pairs. Pairs are
        // generated in that order, so the allowed predecessors of pair `b`
        // of gate `i + 1` form a prefix of gate `i`'s pairs.
        for i in 0..k.saturating_sub(1) {
            let (prev, next) = (&e.sel[i], &e.sel[i + 1]);
            for &(j2, l2, s2) in next {
                if l2 == n + i {
                    continue; // reads gate i: larger than all of gate i's pairs
                }
                clause.clear();
                clause.push(L::Var(-s2));
                for &(j1, l1, s1) in prev {
                    if (l1, j1) <= (l2, j2) {
                        clause.push(L::Var(s1));
                    }
                }
                e.cnf.add(&clause);
            }
        }
        // Lex-leader constraint of each input permutation τ: the sequence of
        // fanin pairs is no larger than its image under τ. `equal` is "the
        // first `i` pairs are fixed by τ"; while it holds, gate `i` may not
        // take a pair that τ maps to a smaller one.
        for perm in perms {
            let swap = |x: usize| if x < n { perm[x] } else { x };
            let mut equal: Option<i32> = None; // None: true
            for i in 0..k {
                let mut moved = Vec::new();
                for &(j, l, s) in &e.sel[i] {
                    let (tj, tl) = (swap(j), swap(l));
                    let image = (tj.max(tl), tj.min(tl));
                    if image == (l, j) {
                        continue;
                    }
                    moved.push(s);
                    if image < (l, j) {
                        clause.clear();
                        if let Some(eq) = equal {
                            clause.push(L::Var(-eq));
                        } else if i == 0 {
                            e.first_excluded.push(s);
                        }
                        clause.push(L::Var(-s));
                        e.cnf.add(&clause);
                    }
                }
                if i + 1 == k || moved.is_empty() && equal.is_none() {
                    continue;
                }
                // equal ∧ (gate i's pair is fixed) → next.
                let next = e.cnf.fresh();
                clause.clear();
                if let Some(eq) = equal {
                    clause.push(L::Var(-eq));
                }
                clause.push(L::Var(next));
                clause.extend(moved.iter().map(|&s| L::Var(s)));
                e.cnf.add(&clause);
                equal = Some(next);
            }
        }
        if self.normal && rebracket {
            self.no_smaller_rebracketing(&mut e);
        }
        for &(x, most) in restrictions {
            bound_restriction(&mut e, x, most);
        }
        // No operand re-application (normal form only: it relies on every
        // two-input function being available).
        if self.normal {
            for i in 0..k {
                for jg in 0..i {
                    let gj = n + jg;
                    let (fanins_j, sel_i) = (&e.sel[jg], &e.sel[i]);
                    for &(a, b, s_j) in fanins_j {
                        for &(x, y, s_i) in sel_i {
                            if y == gj && (x == a || x == b) {
                                e.cnf.add(&[L::Var(-s_j), L::Var(-s_i)]);
                            }
                        }
                    }
                }
            }
        }
        Ok(e)
    }
}

impl Cnf {
    pub(super) fn fresh(&mut self) -> i32 {
        self.num_vars += 1;
        self.num_vars
    }

    /// Adds a clause, dropping false constants; a true constant satisfies it.
    pub(super) fn add(&mut self, clause: &[L]) {
        let start = self.lits.len();
        for &l in clause {
            match l {
                L::Const(true) => {
                    self.lits.truncate(start);
                    return;
                }
                L::Const(false) => {}
                L::Var(v) => self.lits.push(v),
            }
        }
        self.lits.push(0);
        self.num_clauses += 1;
    }

    pub(super) fn clauses(&self) -> impl Iterator<Item = &[i32]> {
        self.lits.split(|&x| x == 0).take(self.num_clauses)
    }

    /// The instance in DIMACS CNF form.
    pub(super) fn dimacs(&self) -> String {
        let mut s = format!("p cnf {} {}\n", self.num_vars, self.num_clauses);
        for c in self.clauses() {
            for l in c {
                s.push_str(&l.to_string());
                s.push(' ');
            }
            s.push_str("0\n");
        }
        s
    }
}

impl Problem<'_> {
    /// Turns a model into a circuit (not yet verified).
    pub(super) fn decode(&self, e: &Encoding, model: &[bool]) -> Result<Circuit, SatError> {
        let n = self.n;
        let is = |v: i32| v > 0 && model.get((v - 1) as usize).copied().unwrap_or(false);
        let mut fanins = Vec::with_capacity(e.k);
        let mut tts = Vec::with_capacity(e.k);
        for i in 0..e.k {
            let Some(&(j, l, _)) = e.sel[i].iter().find(|&&(_, _, s)| is(s)) else {
                return Err(SatError::Unverified(e.k));
            };
            fanins.push((j, l));
            let tt = (0..4).fold(0u8, |acc, b| acc | (is(e.op[i][b]) as u8) << b);
            tts.push(tt);
        }
        // Output of each target: gate and polarity.
        let mut target_gate = Vec::with_capacity(self.targets.len());
        let mut flip = vec![false; n + e.k];
        for h in 0..self.targets.len() {
            let Some(i) = (0..e.k).find(|&i| is(e.out[h][i])) else {
                return Err(SatError::Unverified(e.k));
            };
            let p = e.normal && is(e.pol[h]);
            target_gate.push(n + i);
            flip[n + i] = p;
        }
        let sig = |s: usize| if s < n { Signal::Input(s) } else { Signal::Gate(s - n) };
        let mut c = Circuit::for_table(self.table);
        for i in 0..e.k {
            let (j, l) = fanins[i];
            let mut tt = tts[i];
            // Gates that are complemented outputs compute the complement
            // instead, and their readers absorb the change.
            if flip[j] {
                tt = (tt >> 2 & 0b11) | (tt & 0b11) << 2;
            }
            if flip[l] {
                tt = (tt >> 1 & 0b0101) | (tt & 0b0101) << 1;
            }
            if flip[n + i] {
                tt ^= 0xF;
            }
            let expr = match (tt, self.neg) {
                (NOT_A, Some(form)) => neg_expr(form, sig(j)),
                (NOT_B, Some(form)) => neg_expr(form, sig(l)),
                _ => match self.code_op[tt as usize] {
                    Some((op, false)) => GateExpr {
                        op,
                        args: vec![sig(j), sig(l)],
                    },
                    Some((op, true)) => GateExpr {
                        op,
                        args: vec![sig(l), sig(j)],
                    },
                    None => return Err(SatError::Unverified(e.k)),
                },
            };
            c.push(expr).map_err(|_| SatError::Unverified(e.k))?;
        }
        let mask = self.table.row_mask();
        for (o, name) in self.table.output_names().iter().enumerate() {
            let want: Vec<u64> = self.table.output_bits(o).iter().zip(&mask).map(|(a, m)| a & m).collect();
            let s = if want.iter().all(|&x| x == 0) {
                Signal::Const(false)
            } else if want == mask {
                Signal::Const(true)
            } else if let Some(h) = self.targets.iter().position(|t| *t == want) {
                sig(target_gate[h])
            } else {
                let input = (0..n).find(|&i| {
                    self.table
                        .input_bits(i)
                        .iter()
                        .zip(&mask)
                        .map(|(a, m)| a & m)
                        .eq(want.iter().copied())
                });
                match input {
                    Some(i) => Signal::Input(i),
                    None => return Err(SatError::Unverified(e.k)),
                }
            };
            c.set_output(name, s).map_err(|_| SatError::Unverified(e.k))?;
        }
        Ok(c)
    }
}
