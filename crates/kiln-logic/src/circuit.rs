//! Boolean circuits: a straight-line list of gates over named inputs.
//!
//! Gates may only read inputs, constants and *earlier* gates, so the gate
//! list is always a topological order and a circuit can never contain a
//! cycle. Gate names are not stored: gate `i` is printed as `Z{i+1}` (or
//! another prefix if the inputs already use `Z…` names), which is what
//! "renaming gates Z1..Zn in topological order" amounts to.

use std::collections::HashMap;
use std::fmt;

use thiserror::Error;

use crate::table::{words_for, Table};

/// Where a gate argument or an output gets its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Signal {
    /// A constant 0 or 1.
    Const(bool),
    /// Input column `i` of the circuit.
    Input(usize),
    /// The output of gate `i`.
    Gate(usize),
}

/// Gate operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    /// a ∧ b
    And,
    /// a ∨ b
    Or,
    /// a ⊕ b
    Xor,
    /// ¬(a ∧ b)
    Nand,
    /// ¬(a ∨ b)
    Nor,
    /// ¬(a ⊕ b)
    Xnor,
    /// ¬a ∨ b
    Implies,
    /// a ∧ ¬b
    Nimplies,
    /// ¬a (one argument)
    Not,
    /// Pass-through of its single argument; removed by [`Circuit::simplify`].
    Buf,
    /// Constant 0 (no arguments); removed by [`Circuit::simplify`].
    Const0,
    /// Constant 1 (no arguments); removed by [`Circuit::simplify`].
    Const1,
}

/// The eight binary operations, in the order search tries them.
pub const BINARY_OPS: [Op; 8] = [Op::Xor, Op::And, Op::Or, Op::Nand, Op::Nor, Op::Xnor, Op::Implies, Op::Nimplies];

impl Op {
    /// Upper-case name as used in the grammar and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Op::And => "AND",
            Op::Or => "OR",
            Op::Xor => "XOR",
            Op::Nand => "NAND",
            Op::Nor => "NOR",
            Op::Xnor => "XNOR",
            Op::Implies => "IMPLIES",
            Op::Nimplies => "NIMPLIES",
            Op::Not => "NOT",
            Op::Buf => "BUF",
            Op::Const0 => "CONST0",
            Op::Const1 => "CONST1",
        }
    }

    /// Every operation.
    pub const ALL: [Op; 12] = [
        Op::And,
        Op::Or,
        Op::Xor,
        Op::Nand,
        Op::Nor,
        Op::Xnor,
        Op::Implies,
        Op::Nimplies,
        Op::Not,
        Op::Buf,
        Op::Const0,
        Op::Const1,
    ];

    /// Parses an operation name, case-insensitively.
    pub fn from_name(s: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|op| op.name().eq_ignore_ascii_case(s))
    }

    /// Number of arguments the operation takes.
    pub fn arity(self) -> usize {
        match self {
            Op::Const0 | Op::Const1 => 0,
            Op::Not | Op::Buf => 1,
            _ => 2,
        }
    }

    /// Whether swapping the two arguments leaves the result unchanged.
    pub fn is_commutative(self) -> bool {
        matches!(self, Op::And | Op::Or | Op::Xor | Op::Nand | Op::Nor | Op::Xnor)
    }

    /// Truth table of a binary op in the [`gate_from_truth_table`] bit order
    /// (bit `2a + b` holds `op(a, b)`); for unary ops `b` is ignored and for
    /// constants both are.
    pub fn truth_table(self) -> u8 {
        match self {
            Op::And => 0b1000,
            Op::Or => 0b1110,
            Op::Xor => 0b0110,
            Op::Nand => 0b0111,
            Op::Nor => 0b0001,
            Op::Xnor => 0b1001,
            Op::Implies => 0b1011,
            Op::Nimplies => 0b0100,
            Op::Not => 0b0011,
            Op::Buf => 0b1100,
            Op::Const0 => 0b0000,
            Op::Const1 => 0b1111,
        }
    }

    /// Applies the operation to 64 rows at once. Missing arguments are 0.
    #[inline]
    pub fn apply_word(self, a: u64, b: u64) -> u64 {
        match self {
            Op::And => a & b,
            Op::Or => a | b,
            Op::Xor => a ^ b,
            Op::Nand => !(a & b),
            Op::Nor => !(a | b),
            Op::Xnor => !(a ^ b),
            Op::Implies => !a | b,
            Op::Nimplies => a & !b,
            Op::Not => !a,
            Op::Buf => a,
            Op::Const0 => 0,
            Op::Const1 => !0,
        }
    }

    /// Applies the operation word by word: `out[w] = op(a[w], b[w])`. The
    /// operation is matched once, so each arm is a loop the compiler
    /// vectorises.
    pub fn apply_words(self, a: &[u64], b: &[u64], out: &mut [u64]) {
        fn each(a: &[u64], b: &[u64], out: &mut [u64], f: impl Fn(u64, u64) -> u64) {
            for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
                *o = f(x, y);
            }
        }
        match self {
            Op::And => each(a, b, out, |x, y| x & y),
            Op::Or => each(a, b, out, |x, y| x | y),
            Op::Xor => each(a, b, out, |x, y| x ^ y),
            Op::Nand => each(a, b, out, |x, y| !(x & y)),
            Op::Nor => each(a, b, out, |x, y| !(x | y)),
            Op::Xnor => each(a, b, out, |x, y| !(x ^ y)),
            Op::Implies => each(a, b, out, |x, y| !x | y),
            Op::Nimplies => each(a, b, out, |x, y| x & !y),
            Op::Not => each(a, b, out, |x, _| !x),
            Op::Buf => each(a, b, out, |x, _| x),
            Op::Const0 => out.fill(0),
            Op::Const1 => out.fill(!0),
        }
    }

    /// Applies the operation to single bits.
    pub fn apply(self, a: bool, b: bool) -> bool {
        self.apply_word(a as u64, b as u64) & 1 == 1
    }
}

/// Applies a 4-bit two-input truth table (bit `2a + b` = f(a, b)) to 64 rows.
#[inline]
pub fn apply_tt_word(tt: u8, a: u64, b: u64) -> u64 {
    let sel = |bit: u8, w: u64| if tt >> bit & 1 == 1 { w } else { 0 };
    sel(0, !a & !b) | sel(1, !a & b) | sel(2, a & !b) | sel(3, a & b)
}

/// One gate: an operation and its arguments (0, 1 or 2 depending on arity).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GateExpr {
    /// The operation.
    pub op: Op,
    /// The arguments, `op.arity()` of them.
    pub args: Vec<Signal>,
}

/// Maps a two-input boolean function to a single gate on `a` and `b`.
///
/// Bit order: bit `2*a + b` of `tt` is the function's value at `(a, b)`, i.e.
/// bit 0 = f(0,0), bit 1 = f(0,1), bit 2 = f(1,0), bit 3 = f(1,1). So AND is
/// `0b1000` (8), OR `0b1110` (14), XOR `0b0110` (6), `a` is `0b1100` (12) and
/// `b` is `0b1010` (10). Only the low four bits of `tt` are used.
///
/// The six degenerate functions come back as [`Op::Const0`], [`Op::Const1`],
/// [`Op::Buf`] or [`Op::Not`] gates, which [`Circuit::simplify`] folds away
/// (constants and pass-throughs) or keeps as a single NOT.
pub fn gate_from_truth_table(tt: u8, a: Signal, b: Signal) -> GateExpr {
    let g = |op: Op, args: Vec<Signal>| GateExpr { op, args };
    match tt & 0xF {
        0b0000 => g(Op::Const0, vec![]),
        0b0001 => g(Op::Nor, vec![a, b]),
        0b0010 => g(Op::Nimplies, vec![b, a]),
        0b0011 => g(Op::Not, vec![a]),
        0b0100 => g(Op::Nimplies, vec![a, b]),
        0b0101 => g(Op::Not, vec![b]),
        0b0110 => g(Op::Xor, vec![a, b]),
        0b0111 => g(Op::Nand, vec![a, b]),
        0b1000 => g(Op::And, vec![a, b]),
        0b1001 => g(Op::Xnor, vec![a, b]),
        0b1010 => g(Op::Buf, vec![b]),
        0b1011 => g(Op::Implies, vec![a, b]),
        0b1100 => g(Op::Buf, vec![a]),
        0b1101 => g(Op::Implies, vec![b, a]),
        0b1110 => g(Op::Or, vec![a, b]),
        _ => g(Op::Const1, vec![]),
    }
}

/// Structural problems when building a circuit or pairing it with a table.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CircuitError {
    /// Wrong number of arguments for the operation.
    #[error("{op} takes {expected} argument(s), got {found}")]
    Arity {
        /// Operation name.
        op: &'static str,
        /// Expected count.
        expected: usize,
        /// Given count.
        found: usize,
    },
    /// An argument refers to a gate that is not earlier in the list, or to a
    /// missing input.
    #[error("gate {gate} reads {signal}, which does not exist yet")]
    BadSignal {
        /// 0-based gate index (or output position) being added.
        gate: usize,
        /// Debug form of the bad signal.
        signal: String,
    },
    /// A table column the circuit needs is missing from the circuit or table.
    #[error("{0}")]
    Mismatch(String),
}

/// Most bytes of gate values [`Circuit::eval_columns`] holds at once.
pub const EVAL_BLOCK_BYTES: usize = 64 << 20;

/// Display names of a circuit's signals (see [`Circuit::names`]).
pub struct SignalNames<'c> {
    circuit: &'c Circuit,
    prefix: String,
}

impl SignalNames<'_> {
    /// Name of gate `i`: the prefix and `i + 1`.
    pub fn gate(&self, i: usize) -> String {
        format!("{}{}", self.prefix, i + 1)
    }
    /// Name of a signal: input name, gate name, `0` or `1`.
    pub fn signal(&self, s: Signal) -> String {
        match s {
            Signal::Gate(g) => self.gate(g),
            // Constants and inputs do not need the prefix.
            other => self.circuit.signal_name(other),
        }
    }
}

/// A straight-line boolean circuit with named inputs and outputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Circuit {
    inputs: Vec<String>,
    gates: Vec<GateExpr>,
    outputs: Vec<(String, Signal)>,
    /// Each output name's position in `outputs`: a table can have tens of thousands of outputs,
    /// and a search of the list per definition made building their circuit quadratic.
    output_slots: HashMap<String, usize>,
}

impl Circuit {
    /// An empty circuit over the given input names.
    pub fn new(inputs: Vec<String>) -> Circuit {
        Circuit {
            inputs,
            gates: Vec::new(),
            outputs: Vec::new(),
            output_slots: HashMap::new(),
        }
    }

    /// An empty circuit over a table's inputs.
    pub fn for_table(table: &Table) -> Circuit {
        Circuit::new(table.input_names().to_vec())
    }

    /// Appends a gate and returns the signal carrying its value. Arguments
    /// must be constants, inputs, or gates already added.
    pub fn push(&mut self, expr: GateExpr) -> Result<Signal, CircuitError> {
        if expr.args.len() != expr.op.arity() {
            return Err(CircuitError::Arity {
                op: expr.op.name(),
                expected: expr.op.arity(),
                found: expr.args.len(),
            });
        }
        for &s in &expr.args {
            self.check_signal(s, self.gates.len())?;
        }
        self.gates.push(expr);
        Ok(Signal::Gate(self.gates.len() - 1))
    }

    /// Shorthand for [`Circuit::push`] with an op and argument list.
    pub fn gate(&mut self, op: Op, args: &[Signal]) -> Result<Signal, CircuitError> {
        self.push(GateExpr { op, args: args.to_vec() })
    }

    fn check_signal(&self, s: Signal, limit: usize) -> Result<(), CircuitError> {
        let ok = match s {
            Signal::Const(_) => true,
            Signal::Input(i) => i < self.inputs.len(),
            Signal::Gate(g) => g < limit,
        };
        if ok {
            Ok(())
        } else {
            Err(CircuitError::BadSignal {
                gate: limit,
                signal: format!("{s:?}"),
            })
        }
    }

    /// Copies `sub`'s gates into this circuit, reading `args[i]` wherever `sub`
    /// reads its input `i`; returns the signals of `sub`'s outputs, in order.
    /// Fails if `args` is shorter than `sub`'s inputs or names a signal this
    /// circuit lacks.
    pub fn append(&mut self, sub: &Circuit, args: &[Signal]) -> Result<Vec<Signal>, CircuitError> {
        let mut map: Vec<Signal> = Vec::with_capacity(sub.gates.len());
        let remap = |s: Signal, map: &[Signal]| -> Result<Signal, CircuitError> {
            match s {
                Signal::Input(i) => args.get(i).copied().ok_or_else(|| CircuitError::BadSignal {
                    gate: map.len(),
                    signal: format!("{s:?}"),
                }),
                Signal::Gate(g) => Ok(map[g]),
                c => Ok(c),
            }
        };
        for g in &sub.gates {
            let args = g.args.iter().map(|&a| remap(a, &map)).collect::<Result<Vec<_>, _>>()?;
            let s = self.push(GateExpr { op: g.op, args })?;
            map.push(s);
        }
        sub.outputs.iter().map(|(_, s)| remap(*s, &map)).collect()
    }

    /// Defines (or redefines) output `name` as `signal`.
    pub fn set_output(&mut self, name: &str, signal: Signal) -> Result<(), CircuitError> {
        self.check_signal(signal, self.gates.len())?;
        match self.output_slots.get(name) {
            Some(&i) => self.outputs[i].1 = signal,
            None => {
                self.output_slots.insert(name.to_string(), self.outputs.len());
                self.outputs.push((name.to_string(), signal));
            }
        }
        Ok(())
    }

    /// Input names.
    pub fn inputs(&self) -> &[String] {
        &self.inputs
    }
    /// Gates in topological order.
    pub fn gates(&self) -> &[GateExpr] {
        &self.gates
    }
    /// Outputs as `(name, signal)` in definition order.
    pub fn outputs(&self) -> &[(String, Signal)] {
        &self.outputs
    }
    /// Signal driving output `name`.
    pub fn output(&self, name: &str) -> Option<Signal> {
        self.output_slots.get(name).map(|&i| self.outputs[i].1)
    }
    /// Number of gates as stored (call [`Circuit::simplify`] first for the
    /// canonical gate count).
    pub fn num_gates(&self) -> usize {
        self.gates.len()
    }

    /// Prefix for gate names: `Z`, unless an input or output already looks
    /// like `Z<digits>`, in which case the first clash-free alternative.
    pub fn gate_prefix(&self) -> String {
        let clashes = |p: &str| {
            self.inputs.iter().chain(self.outputs.iter().map(|(n, _)| n)).any(|n| {
                n.strip_prefix(p)
                    .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|c| c.is_ascii_digit()))
            })
        };
        let mut p = String::from("Z");
        while clashes(&p) {
            p.push('_');
        }
        p
    }

    /// Display name of gate `i` (`Z1` for gate 0, …). Each call looks for the gate prefix among
    /// every input and output name; to name many signals, use [`Circuit::names`].
    pub fn gate_name(&self, i: usize) -> String {
        self.names().gate(i)
    }

    /// Display name of a signal: input name, gate name, `0` or `1`. See [`Circuit::gate_name`].
    pub fn signal_name(&self, s: Signal) -> String {
        match s {
            Signal::Gate(g) => self.gate_name(g),
            Signal::Const(b) => (b as u8).to_string(),
            Signal::Input(i) => self.inputs[i].clone(),
        }
    }

    /// The namer of this circuit's signals, with the gate prefix found once: naming every gate
    /// one call at a time costs gates × names.
    pub fn names(&self) -> SignalNames<'_> {
        SignalNames {
            circuit: self,
            prefix: self.gate_prefix(),
        }
    }

    /// Evaluates on one assignment (`inputs[i]` = value of input `i`);
    /// returns output values in output order.
    pub fn eval_row(&self, inputs: &[bool]) -> Vec<bool> {
        let cols: Vec<Vec<u64>> = inputs.iter().map(|&b| vec![b as u64]).collect();
        self.eval_columns(&cols, 1).into_iter().map(|w| w[0] & 1 == 1).collect()
    }

    /// Bit-parallel evaluation: `inputs[i]` is the bit vector of input `i`
    /// over rows (`words` u64 words each). Returns one bit vector per output
    /// in output order. Bits past the last row are unspecified.
    ///
    /// Gate values are held for one block of words at a time, at most
    /// [`EVAL_BLOCK_BYTES`] of them: a circuit of 100,000 gates over the
    /// million rows of a 20-input table would otherwise hold 13 GB.
    pub fn eval_columns(&self, inputs: &[Vec<u64>], words: usize) -> Vec<Vec<u64>> {
        self.eval_columns_within(inputs, words, EVAL_BLOCK_BYTES)
    }

    /// [`Circuit::eval_columns`] holding at most `block_bytes` of signal
    /// values (at least one word of each) at once.
    fn eval_columns_within(&self, inputs: &[Vec<u64>], words: usize, block_bytes: usize) -> Vec<Vec<u64>> {
        // Every signal's block of words in one buffer: the constants, the
        // inputs, then the gates.
        let leaves = 2 + inputs.len();
        let signals = leaves + self.gates.len();
        let block = (block_bytes / 8 / signals).clamp(1, words.max(1));
        let at = |s: Signal| match s {
            Signal::Const(b) => usize::from(b),
            Signal::Input(i) => {
                assert!(i < inputs.len(), "input {i} read, {} given", inputs.len());
                2 + i
            }
            Signal::Gate(g) => leaves + g,
        };
        let plan: Vec<(Op, usize, usize)> = self
            .gates
            .iter()
            .map(|g| (g.op, g.args.first().map_or(0, |&s| at(s)), g.args.get(1).map_or(0, |&s| at(s))))
            .collect();
        let mut vals = vec![0u64; signals * block];
        vals[block..2 * block].fill(!0);
        let mut outs: Vec<Vec<u64>> = vec![Vec::with_capacity(words); self.outputs.len()];
        for start in (0..words).step_by(block) {
            let len = block.min(words - start);
            for (i, col) in inputs.iter().enumerate() {
                vals[(2 + i) * block..][..len].copy_from_slice(&col[start..start + len]);
            }
            for (g, &(op, a, b)) in plan.iter().enumerate() {
                // Arguments come before the gate, so they lie in `done`.
                let (done, rest) = vals.split_at_mut((leaves + g) * block);
                op.apply_words(&done[a * block..][..len], &done[b * block..][..len], &mut rest[..len]);
            }
            for (out, &(_, s)) in outs.iter_mut().zip(&self.outputs) {
                out.extend_from_slice(&vals[at(s) * block..][..len]);
            }
        }
        outs
    }

    /// Bit-parallel values of every gate, in gate order (inputs as in
    /// [`Circuit::eval_columns`]). Bits past the last row are unspecified.
    pub fn gate_columns(&self, inputs: &[Vec<u64>], words: usize) -> Vec<Vec<u64>> {
        let (zeros, ones) = (vec![0u64; words], vec![!0u64; words]);
        let mut vals: Vec<Vec<u64>> = Vec::with_capacity(self.gates.len());
        for g in &self.gates {
            let column = |s: Option<&Signal>| -> &[u64] {
                match s {
                    None | Some(Signal::Const(false)) => &zeros,
                    Some(Signal::Const(true)) => &ones,
                    Some(&Signal::Input(i)) => &inputs[i][..words],
                    Some(&Signal::Gate(k)) => &vals[k],
                }
            };
            let mut out = vec![0u64; words];
            g.op.apply_words(column(g.args.first()), column(g.args.get(1)), &mut out);
            vals.push(out);
        }
        vals
    }

    /// Evaluates on every row of `table`, matching inputs by name. Returns
    /// one bit vector per *table* output (in table output order).
    pub fn eval_table(&self, table: &Table) -> Result<Vec<Vec<u64>>, CircuitError> {
        let mut cols = Vec::with_capacity(self.inputs.len());
        for name in &self.inputs {
            let i = table
                .input_index(name)
                .ok_or_else(|| CircuitError::Mismatch(format!("circuit input '{name}' is not an input column of {}", table.source())))?;
            cols.push(table.input_bits(i).to_vec());
        }
        let words = words_for(table.len());
        let all = self.eval_columns(&cols, words);
        table
            .output_names()
            .iter()
            .map(|name| {
                self.outputs
                    .iter()
                    .position(|(n, _)| n == name)
                    .map(|k| all[k].clone())
                    .ok_or_else(|| CircuitError::Mismatch(format!("the program does not define output '{name}'")))
            })
            .collect()
    }

    /// Returns an equivalent circuit with constants and pass-throughs folded
    /// away, duplicate gates merged (commutative arguments compared as a
    /// set), double negations removed, and gates nothing reads dropped.
    /// Gate order (hence naming) stays topological.
    ///
    /// A gate that reduces to the negation of one signal is kept as a
    /// gate. When the negation came from a constant argument (`XOR(x, 1)`)
    /// it becomes `NOT x`; a repeated argument (`NAND(x, x)`) is left as
    /// written, because that is how a basis without NOT spells negation.
    pub fn simplify(&self) -> Circuit {
        let mut out = Circuit::new(self.inputs.clone());
        let mut map: Vec<Signal> = Vec::with_capacity(self.gates.len());
        let mut seen: HashMap<GateExpr, Signal> = HashMap::new();
        for g in &self.gates {
            let args: Vec<Signal> = g.args.iter().map(|&s| resolve(&map, s)).collect();
            let sig = out.fold_gate(g.op, args, &mut seen);
            map.push(sig);
        }
        out.outputs = self.outputs.iter().map(|(name, s)| (name.clone(), resolve(&map, *s))).collect();
        out.output_slots = self.output_slots.clone();
        out.remove_dead()
    }

    fn fold_gate(&mut self, op: Op, args: Vec<Signal>, seen: &mut HashMap<GateExpr, Signal>) -> Signal {
        let not_of = |this: &mut Circuit, x: Signal, seen: &mut HashMap<GateExpr, Signal>| -> Signal {
            match x {
                Signal::Const(b) => Signal::Const(!b),
                Signal::Gate(g) if this.gates[g].op == Op::Not => this.gates[g].args[0],
                _ => this.intern(Op::Not, vec![x], seen),
            }
        };
        match op {
            Op::Const0 => Signal::Const(false),
            Op::Const1 => Signal::Const(true),
            Op::Buf => args[0],
            Op::Not => not_of(self, args[0], seen),
            _ => {
                let (a, b) = (args[0], args[1]);
                let tt = op.truth_table();
                // Restrict the truth table with the known argument values and
                // see whether what is left is constant, identity or negation.
                let unary = |x: Signal, t0: bool, t1: bool| -> (Signal, Option<bool>) {
                    match (t0, t1) {
                        (false, false) => (Signal::Const(false), None),
                        (true, true) => (Signal::Const(true), None),
                        (false, true) => (x, None),
                        (true, false) => (x, Some(true)),
                    }
                };
                let bit = |a: bool, b: bool| tt >> (2 * a as u8 + b as u8) & 1 == 1;
                let reduced = match (a, b) {
                    (Signal::Const(ca), Signal::Const(cb)) => Some((Signal::Const(bit(ca, cb)), None)),
                    (Signal::Const(ca), x) => Some(unary(x, bit(ca, false), bit(ca, true))),
                    (x, Signal::Const(cb)) => Some(unary(x, bit(false, cb), bit(true, cb))),
                    (x, y) if x == y => {
                        let (s, neg) = unary(x, bit(false, false), bit(true, true));
                        if neg.is_some() {
                            // NAND(x,x)-style negation: keep the gate as written.
                            None
                        } else {
                            Some((s, None))
                        }
                    }
                    _ => None,
                };
                match reduced {
                    Some((s, None)) => s,
                    Some((s, Some(_))) => not_of(self, s, seen),
                    None => {
                        let args = if op.is_commutative() && b < a { vec![b, a] } else { vec![a, b] };
                        self.intern(op, args, seen)
                    }
                }
            }
        }
    }

    fn intern(&mut self, op: Op, args: Vec<Signal>, seen: &mut HashMap<GateExpr, Signal>) -> Signal {
        let key = GateExpr { op, args };
        if let Some(&s) = seen.get(&key) {
            return s;
        }
        self.gates.push(key.clone());
        let s = Signal::Gate(self.gates.len() - 1);
        seen.insert(key, s);
        s
    }

    /// Drops gates that no output depends on and renumbers the rest.
    pub fn remove_dead(&self) -> Circuit {
        let mut live = vec![false; self.gates.len()];
        for (_, s) in &self.outputs {
            if let Signal::Gate(g) = s {
                live[*g] = true;
            }
        }
        for i in (0..self.gates.len()).rev() {
            if live[i] {
                for s in &self.gates[i].args {
                    if let Signal::Gate(g) = s {
                        live[*g] = true;
                    }
                }
            }
        }
        let mut renum = vec![usize::MAX; self.gates.len()];
        let mut out = Circuit::new(self.inputs.clone());
        let remap = |renum: &Vec<usize>, s: Signal| match s {
            Signal::Gate(g) => Signal::Gate(renum[g]),
            other => other,
        };
        for (i, g) in self.gates.iter().enumerate() {
            if live[i] {
                renum[i] = out.gates.len();
                out.gates.push(GateExpr {
                    op: g.op,
                    args: g.args.iter().map(|&s| remap(&renum, s)).collect(),
                });
            }
        }
        out.outputs = self.outputs.iter().map(|(n, s)| (n.clone(), remap(&renum, *s))).collect();
        out.output_slots = self.output_slots.clone();
        out
    }
}

fn resolve(map: &[Signal], s: Signal) -> Signal {
    match s {
        Signal::Gate(g) => map[g],
        other => other,
    }
}

impl fmt::Display for Circuit {
    /// Prints the circuit in the grammar of [`crate::grammar`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::grammar::print(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::SplitMix64;

    /// Outputs keep their first definition's place when redefined, are found by name through the
    /// index, and keep both through `remove_dead`.
    #[test]
    fn outputs_are_found_and_redefined_in_place() {
        let mut c = Circuit::new(vec!["a".into(), "b".into()]);
        let g = c.gate(Op::And, &[Signal::Input(0), Signal::Input(1)]).unwrap();
        let h = c.gate(Op::Xor, &[Signal::Input(0), Signal::Input(1)]).unwrap();
        for i in 0..1000 {
            c.set_output(&format!("y{i}"), if i % 2 == 0 { g } else { Signal::Input(0) })
                .unwrap();
        }
        c.set_output("y500", h).unwrap();
        c.set_output("y0", Signal::Const(true)).unwrap();
        assert_eq!(c.outputs().len(), 1000);
        assert_eq!(c.outputs()[0], ("y0".to_string(), Signal::Const(true)));
        assert_eq!(c.outputs()[500], ("y500".to_string(), h));
        assert_eq!(c.output("y500"), Some(h));
        assert_eq!(c.output("y2"), Some(g));
        assert_eq!(c.output("y1000"), None);
        let live = c.remove_dead();
        assert_eq!(live.outputs().len(), 1000);
        assert_eq!(live.output("y3"), Some(Signal::Input(0)));
        assert_eq!(live.output("y0"), Some(Signal::Const(true)));
        assert_eq!(
            live.outputs().iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
            c.outputs().iter().map(|(n, _)| n.clone()).collect::<Vec<_>>()
        );
    }

    /// Evaluation in blocks of 1, 3, 7 and all 17 words gives what gate-by-gate evaluation of each
    /// row gives, for random
    /// circuits over every operation, constants and one-argument gates included, with the last
    /// block short.
    #[test]
    fn blocked_evaluation_matches_row_by_row() {
        let mut rng = SplitMix64::new(0xb10c);
        let ops = Op::ALL;
        for _ in 0..20 {
            let n = 1 + (rng.next_u64() % 6) as usize;
            let mut c = Circuit::new((0..n).map(|i| format!("x{i}")).collect());
            let mut signals: Vec<Signal> = (0..n)
                .map(Signal::Input)
                .chain([Signal::Const(false), Signal::Const(true)])
                .collect();
            for _ in 0..40 {
                let op = ops[(rng.next_u64() % ops.len() as u64) as usize];
                let mut pick = || signals[(rng.next_u64() % signals.len() as u64) as usize];
                let args = match op {
                    Op::Not | Op::Buf => vec![pick()],
                    Op::Const0 | Op::Const1 => vec![],
                    _ => vec![pick(), pick()],
                };
                signals.push(c.push(GateExpr { op, args }).unwrap());
            }
            for k in 0..3 {
                let s = signals[signals.len() - 1 - k];
                c.set_output(&format!("y{k}"), s).unwrap();
            }
            let words = 17;
            let inputs: Vec<Vec<u64>> = (0..n).map(|_| (0..words).map(|_| rng.next_u64()).collect()).collect();
            let signals_held = 2 + n + c.num_gates();
            for block_words in [1, 3, 7, words] {
                let got = c.eval_columns_within(&inputs, words, block_words * 8 * signals_held);
                for w in 0..words {
                    for bit in 0..64 {
                        // The reference: one row, one gate at a time, through `Op::apply`.
                        let row: Vec<bool> = inputs.iter().map(|col| col[w] >> bit & 1 == 1).collect();
                        let mut vals: Vec<bool> = Vec::new();
                        let get = |vals: &[bool], s: Signal| match s {
                            Signal::Const(b) => b,
                            Signal::Input(i) => row[i],
                            Signal::Gate(g) => vals[g],
                        };
                        for g in c.gates() {
                            let a = g.args.first().is_some_and(|&s| get(&vals, s));
                            let b = g.args.get(1).is_some_and(|&s| get(&vals, s));
                            vals.push(g.op.apply(a, b));
                        }
                        for (k, (out, &(_, s))) in got.iter().zip(c.outputs()).enumerate() {
                            assert_eq!(
                                out[w] >> bit & 1 == 1,
                                get(&vals, s),
                                "block {block_words}, word {w}, bit {bit}, output {k}"
                            );
                        }
                    }
                }
            }
        }
    }
}
