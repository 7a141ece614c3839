//! And-Inverter Graphs (AIGs): the common currency of logic synthesis tools.
//!
//! An AIG has one node kind, the two-input AND, and puts negation on the
//! edges. Nodes are numbered as in AIGER and ABC: variable 0 is the constant
//! false, variables `1..=I` are the primary inputs, and the AND nodes follow
//! in topological order. A *literal* is `2 * var + complement`, so literal 0
//! is false, 1 is true, and `lit ^ 1` negates.
//!
//! [`Aig::and`] hashes structurally (one node per ordered fanin pair) and
//! folds the trivial cases (`x∧0 = 0`, `x∧1 = x`, `x∧x = x`, `x∧¬x = 0`),
//! which is what ABC's `strash` does; so after [`Aig::cleanup`],
//! [`Aig::num_ands`] is the number ABC's `&ps` reports for the same graph.
//!
//! Literals are `u32`, as in AIGER, so a graph holds at most [`MAX_VAR`]
//! variables; every operation that would grow past that returns
//! [`AigError::TooLarge`] instead of wrapping.

use std::collections::HashMap;

use thiserror::Error;

use crate::circuit::{Circuit, CircuitError, Op, Signal};

/// A literal: `2 * variable + complement`.
pub type Lit = u32;

/// The constant-false literal.
pub const FALSE: Lit = 0;
/// The constant-true literal.
pub const TRUE: Lit = 1;
/// The largest variable index: `2 * MAX_VAR + 1` is the largest `u32`.
pub const MAX_VAR: u32 = (u32::MAX - 1) / 2;

/// The literal of `var`, complemented if `complement`.
///
/// Returns `None` when `var` exceeds [`MAX_VAR`] (the literal would not fit).
pub fn make_lit(var: u32, complement: bool) -> Option<Lit> {
    if var > MAX_VAR {
        return None;
    }
    Some(2 * var + complement as u32)
}

/// The variable a literal refers to.
pub const fn lit_var(lit: Lit) -> u32 {
    lit >> 1
}

/// Whether a literal is complemented.
pub const fn lit_is_complement(lit: Lit) -> bool {
    lit & 1 == 1
}

/// The negation of a literal.
pub const fn lit_not(lit: Lit) -> Lit {
    lit ^ 1
}

/// Errors from building or evaluating an AIG.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum AigError {
    /// A literal names a variable the graph does not have.
    #[error("literal {lit} refers to variable {}, but the graph's largest variable is {max_var}", lit_var(*lit))]
    BadLiteral {
        /// The offending literal.
        lit: Lit,
        /// The largest variable currently defined.
        max_var: u32,
    },
    /// The graph would need more variables than a 32-bit literal can address.
    #[error("the graph would exceed {MAX_VAR} variables, the most a 32-bit literal can address")]
    TooLarge,
    /// Inputs must come before AND nodes so that variable numbers follow the
    /// AIGER order (constant, inputs, ANDs).
    #[error("input '{0}' added after AND nodes; inputs must be added first")]
    InputAfterAnd(String),
    /// [`Aig::simulate`] got the wrong number of input columns.
    #[error("expected {expected} input columns, got {found}")]
    InputCount {
        /// Number of inputs of the graph.
        expected: usize,
        /// Number of columns given.
        found: usize,
    },
    /// [`Aig::simulate`] got a column shorter than `words`.
    #[error("input column {index} has {found} words, expected {expected}")]
    ShortColumn {
        /// Input index.
        index: usize,
        /// Words requested.
        expected: usize,
        /// Words present.
        found: usize,
    },
    /// A circuit handed to [`Aig::from_circuit`] refers to a missing signal.
    #[error("circuit signal {0} does not exist")]
    BadSignal(String),
    /// Building the circuit in [`Aig::to_circuit`] failed.
    #[error(transparent)]
    Circuit(#[from] CircuitError),
}

/// An And-Inverter Graph with named inputs and outputs.
///
/// Input names are stored sparsely: a file may declare two billion inputs in
/// a few bytes (binary AIGER spends no bytes on inputs), and a reader must
/// not allocate per input on the strength of a header. Unnamed inputs report
/// the default name `i<index>` from [`Aig::input_name`].
#[derive(Debug, Clone, Default)]
pub struct Aig {
    num_inputs: u32,
    input_names: HashMap<u32, String>,
    /// Fanins of AND node `k` (variable `num_inputs + 1 + k`), larger literal
    /// first, as AIGER's binary format stores them.
    ands: Vec<(Lit, Lit)>,
    outputs: Vec<(String, Lit)>,
    strash: HashMap<(Lit, Lit), Lit>,
}

impl PartialEq for Aig {
    /// Structural equality: same inputs (and names), same AND list, same
    /// outputs. The hash table is derived data and not compared.
    fn eq(&self, other: &Aig) -> bool {
        self.num_inputs == other.num_inputs
            && self.input_names == other.input_names
            && self.ands == other.ands
            && self.outputs == other.outputs
    }
}

impl Eq for Aig {}

impl Aig {
    /// An empty graph (only the constant).
    pub fn new() -> Aig {
        Aig::default()
    }

    /// A graph with the given named inputs and nothing else.
    pub fn with_inputs<S: AsRef<str>>(names: &[S]) -> Result<Aig, AigError> {
        let mut aig = Aig::new();
        for n in names {
            aig.add_input(n.as_ref())?;
        }
        Ok(aig)
    }

    /// Adds a named primary input and returns its (positive) literal.
    pub fn add_input(&mut self, name: &str) -> Result<Lit, AigError> {
        let lit = self.add_unnamed_inputs(1).map_err(|e| match e {
            AigError::InputAfterAnd(_) => AigError::InputAfterAnd(name.to_string()),
            other => other,
        })?;
        self.input_names.insert(self.num_inputs - 1, name.to_string());
        Ok(lit)
    }

    /// Adds `count` unnamed inputs in O(1) and returns the literal of the
    /// first one ([`FALSE`] when `count` is 0, which changes nothing).
    pub fn add_unnamed_inputs(&mut self, count: u32) -> Result<Lit, AigError> {
        if count == 0 {
            return Ok(FALSE);
        }
        if !self.ands.is_empty() {
            return Err(AigError::InputAfterAnd(format!("i{}", self.num_inputs)));
        }
        let total = self
            .num_inputs
            .checked_add(count)
            .filter(|&t| t <= MAX_VAR)
            .ok_or(AigError::TooLarge)?;
        // num_inputs + 1 <= total <= MAX_VAR, so the literal fits.
        let first = make_lit(self.num_inputs + 1, false).ok_or(AigError::TooLarge)?;
        self.num_inputs = total;
        Ok(first)
    }

    /// Sets the name of input `index` (no effect if there is no such input).
    pub fn set_input_name(&mut self, index: usize, name: &str) {
        if let Ok(i) = u32::try_from(index) {
            if i < self.num_inputs {
                self.input_names.insert(i, name.to_string());
            }
        }
    }

    /// Appends an output called `name` driven by `lit`.
    pub fn add_output(&mut self, name: &str, lit: Lit) -> Result<(), AigError> {
        self.check(lit)?;
        self.outputs.push((name.to_string(), lit));
        Ok(())
    }

    /// Renames output `index` (no effect if there is no such output).
    pub fn set_output_name(&mut self, index: usize, name: &str) {
        if let Some(o) = self.outputs.get_mut(index) {
            o.0 = name.to_string();
        }
    }

    /// Number of primary inputs.
    pub fn num_inputs(&self) -> usize {
        self.num_inputs as usize
    }

    /// Number of AND nodes (dangling ones included until [`Aig::cleanup`]).
    pub fn num_ands(&self) -> usize {
        self.ands.len()
    }

    /// The largest variable index (AIGER's `M`): inputs plus AND nodes.
    pub fn max_var(&self) -> u32 {
        // Cannot overflow: `and` and `add_unnamed_inputs` keep the total at
        // most MAX_VAR.
        self.num_inputs + self.ands.len() as u32
    }

    /// Literal of input `index`, if it exists.
    pub fn input_lit(&self, index: usize) -> Option<Lit> {
        let i = u32::try_from(index).ok().filter(|&i| i < self.num_inputs)?;
        make_lit(i + 1, false)
    }

    /// Name of input `index`: the one given, or `i<index>`.
    pub fn input_name(&self, index: usize) -> String {
        u32::try_from(index)
            .ok()
            .and_then(|i| self.input_names.get(&i))
            .cloned()
            .unwrap_or_else(|| format!("i{index}"))
    }

    /// The name explicitly given to input `index`, if any.
    pub fn explicit_input_name(&self, index: usize) -> Option<&str> {
        u32::try_from(index).ok().and_then(|i| self.input_names.get(&i)).map(String::as_str)
    }

    /// All input names in order (defaults for unnamed inputs). Allocates one
    /// string per input.
    pub fn input_names(&self) -> Vec<String> {
        (0..self.num_inputs()).map(|i| self.input_name(i)).collect()
    }

    /// Outputs as `(name, literal)` in order.
    pub fn outputs(&self) -> &[(String, Lit)] {
        &self.outputs
    }

    /// Fanins of every AND node in order; node `k` is variable
    /// `num_inputs + 1 + k`, and its first fanin is the larger literal.
    pub fn ands(&self) -> &[(Lit, Lit)] {
        &self.ands
    }

    /// Fanins of variable `var` if it is an AND node.
    pub fn and_fanins(&self, var: u32) -> Option<(Lit, Lit)> {
        let k = var.checked_sub(self.num_inputs)?.checked_sub(1)?;
        self.ands.get(k as usize).copied()
    }

    /// Whether variable `var` is a primary input.
    pub fn is_input(&self, var: u32) -> bool {
        var >= 1 && var <= self.num_inputs
    }

    fn check(&self, lit: Lit) -> Result<(), AigError> {
        if lit_var(lit) > self.max_var() {
            Err(AigError::BadLiteral {
                lit,
                max_var: self.max_var(),
            })
        } else {
            Ok(())
        }
    }

    /// `a ∧ b`, reusing an existing node or folding trivial cases.
    pub fn and(&mut self, a: Lit, b: Lit) -> Result<Lit, AigError> {
        self.check(a)?;
        self.check(b)?;
        // The four rules ABC's strash applies; anything else gets a node.
        if a == FALSE || b == FALSE || a == lit_not(b) {
            return Ok(FALSE);
        }
        if a == TRUE || a == b {
            return Ok(b);
        }
        if b == TRUE {
            return Ok(a);
        }
        let key = if a > b { (a, b) } else { (b, a) };
        if let Some(&lit) = self.strash.get(&key) {
            return Ok(lit);
        }
        let var = self.max_var().checked_add(1).filter(|&v| v <= MAX_VAR).ok_or(AigError::TooLarge)?;
        let lit = 2 * var;
        self.ands.push(key);
        self.strash.insert(key, lit);
        Ok(lit)
    }

    /// `a ∨ b` as `¬(¬a ∧ ¬b)`.
    pub fn or(&mut self, a: Lit, b: Lit) -> Result<Lit, AigError> {
        Ok(lit_not(self.and(lit_not(a), lit_not(b))?))
    }

    /// `a ⊕ b` as `¬(¬(a ∧ ¬b) ∧ ¬(¬a ∧ b))`: three AND nodes, the form ABC
    /// produces.
    pub fn xor(&mut self, a: Lit, b: Lit) -> Result<Lit, AigError> {
        let p = self.and(a, lit_not(b))?;
        let q = self.and(lit_not(a), b)?;
        self.or(p, q)
    }

    /// `s ? t : e` as `(s ∧ t) ∨ (¬s ∧ e)`: three AND nodes.
    pub fn mux(&mut self, s: Lit, t: Lit, e: Lit) -> Result<Lit, AigError> {
        let p = self.and(s, t)?;
        let q = self.and(lit_not(s), e)?;
        self.or(p, q)
    }

    /// `¬a` (no node; negation lives on edges).
    pub fn not(&self, a: Lit) -> Lit {
        lit_not(a)
    }

    /// AND of all literals as a balanced tree (true for none). Iterative, so
    /// long lists cannot overflow the stack.
    pub fn and_all(&mut self, lits: &[Lit]) -> Result<Lit, AigError> {
        let mut level: Vec<Lit> = lits.to_vec();
        if level.is_empty() {
            return Ok(TRUE);
        }
        while level.len() > 1 {
            let mut next = Vec::with_capacity(level.len().div_ceil(2));
            for pair in level.chunks(2) {
                next.push(match *pair {
                    [a, b] => self.and(a, b)?,
                    [a] => a,
                    // chunks(2) never yields this; TRUE is the empty AND.
                    _ => TRUE,
                });
            }
            level = next;
        }
        Ok(level[0])
    }

    /// OR of all literals as a balanced tree (false for none).
    pub fn or_all(&mut self, lits: &[Lit]) -> Result<Lit, AigError> {
        let neg: Vec<Lit> = lits.iter().map(|&l| lit_not(l)).collect();
        Ok(lit_not(self.and_all(&neg)?))
    }

    /// Translates a gate circuit: one literal per gate, every [`Op`] spelled
    /// in ANDs and complemented edges (XOR and XNOR take three ANDs, the
    /// other binary gates one, NOT/BUF/constants none).
    pub fn from_circuit(c: &Circuit) -> Result<Aig, AigError> {
        let mut aig = Aig::with_inputs(c.inputs())?;
        let mut gate_lits: Vec<Lit> = Vec::with_capacity(c.num_gates());
        let lit_of = |aig: &Aig, gate_lits: &[Lit], s: Signal| -> Result<Lit, AigError> {
            match s {
                Signal::Const(b) => Ok(b as Lit),
                Signal::Input(i) => aig.input_lit(i).ok_or_else(|| AigError::BadSignal(format!("{s:?}"))),
                Signal::Gate(g) => gate_lits.get(g).copied().ok_or_else(|| AigError::BadSignal(format!("{s:?}"))),
            }
        };
        for g in c.gates() {
            let arg = |k: usize| -> Result<Lit, AigError> {
                let s = *g
                    .args
                    .get(k)
                    .ok_or_else(|| AigError::BadSignal(format!("argument {k} of {}", g.op.name())))?;
                lit_of(&aig, &gate_lits, s)
            };
            let lit = match g.op {
                Op::Const0 => FALSE,
                Op::Const1 => TRUE,
                Op::Buf => arg(0)?,
                Op::Not => lit_not(arg(0)?),
                op => {
                    let (a, b) = (arg(0)?, arg(1)?);
                    match op {
                        Op::And => aig.and(a, b)?,
                        Op::Nand => lit_not(aig.and(a, b)?),
                        Op::Or => aig.or(a, b)?,
                        Op::Nor => lit_not(aig.or(a, b)?),
                        Op::Xor => aig.xor(a, b)?,
                        Op::Xnor => lit_not(aig.xor(a, b)?),
                        // ¬a ∨ b = ¬(a ∧ ¬b)
                        Op::Implies => lit_not(aig.and(a, lit_not(b))?),
                        Op::Nimplies => aig.and(a, lit_not(b))?,
                        // Unary and nullary ops are handled above.
                        Op::Not | Op::Buf | Op::Const0 | Op::Const1 => FALSE,
                    }
                }
            };
            gate_lits.push(lit);
        }
        for (name, s) in c.outputs() {
            let lit = lit_of(&aig, &gate_lits, *s)?;
            aig.add_output(name, lit)?;
        }
        Ok(aig)
    }

    /// Translates to a gate circuit with one gate per AND node: the fanin
    /// polarities pick AND, NIMPLIES (`a ∧ ¬b`) or NOR (`¬a ∧ ¬b`), so no
    /// NOT gates are needed inside. A complemented output gets one NOT gate
    /// (shared between outputs reading the same node). Dangling nodes are
    /// kept; call [`Aig::cleanup`] first to drop them.
    ///
    /// Input and output names that the program grammar cannot spell (AIGER and BLIF allow any
    /// symbol, such as `x[0]`, `a-b` or `AND`) are renamed to grammar names, so the circuit prints
    /// to a program that parses back: other characters become `_`, a name that does not start
    /// with a letter or is an operator word gets an `n_` prefix, and clashes get `_2`, `_3`, ….
    pub fn to_circuit(&self) -> Result<Circuit, AigError> {
        let (inputs, outputs) = grammar_names(self.input_names(), self.outputs.iter().map(|(n, _)| n.clone()).collect());
        let mut c = Circuit::new(inputs);
        let n_in = self.num_inputs;
        let sig = |var: u32| -> Signal {
            if var == 0 {
                Signal::Const(false)
            } else if var <= n_in {
                Signal::Input((var - 1) as usize)
            } else {
                Signal::Gate((var - n_in - 1) as usize)
            }
        };
        for &(a, b) in &self.ands {
            let (sa, sb) = (sig(lit_var(a)), sig(lit_var(b)));
            match (lit_is_complement(a), lit_is_complement(b)) {
                (false, false) => c.gate(Op::And, &[sa, sb])?,
                (false, true) => c.gate(Op::Nimplies, &[sa, sb])?,
                (true, false) => c.gate(Op::Nimplies, &[sb, sa])?,
                (true, true) => c.gate(Op::Nor, &[sa, sb])?,
            };
        }
        let mut negated: HashMap<u32, Signal> = HashMap::new();
        for ((_, lit), name) in self.outputs.iter().zip(&outputs) {
            let var = lit_var(*lit);
            let s = if !lit_is_complement(*lit) {
                sig(var)
            } else if var == 0 {
                Signal::Const(true)
            } else if let Some(&s) = negated.get(&var) {
                s
            } else {
                let s = c.gate(Op::Not, &[sig(var)])?;
                negated.insert(var, s);
                s
            };
            c.set_output(name, s)?;
        }
        Ok(c)
    }

    /// Bit-parallel simulation: `inputs[i]` holds `words` words of input
    /// `i`'s values (bit `r` of the vector is row `r`). Returns one column
    /// per output, in output order.
    pub fn simulate(&self, inputs: &[Vec<u64>], words: usize) -> Result<Vec<Vec<u64>>, AigError> {
        if inputs.len() != self.num_inputs() {
            return Err(AigError::InputCount {
                expected: self.num_inputs(),
                found: inputs.len(),
            });
        }
        if let Some((index, col)) = inputs.iter().enumerate().find(|(_, c)| c.len() < words) {
            return Err(AigError::ShortColumn {
                index,
                expected: words,
                found: col.len(),
            });
        }
        // Values are kept only for AND nodes; inputs are read in place so a
        // graph with many inputs costs nothing extra.
        let n_in = self.num_inputs;
        let len = self.ands.len().checked_mul(words).ok_or(AigError::TooLarge)?;
        let mut vals: Vec<u64> = vec![0; len];
        let fetch = |vals: &[u64], lit: Lit, w: usize| -> u64 {
            let var = lit_var(lit);
            let v = if var == 0 {
                0
            } else if var <= n_in {
                inputs[(var - 1) as usize][w]
            } else {
                vals[(var - n_in - 1) as usize * words + w]
            };
            if lit_is_complement(lit) {
                !v
            } else {
                v
            }
        };
        for (k, &(a, b)) in self.ands.iter().enumerate() {
            for w in 0..words {
                vals[k * words + w] = fetch(&vals, a, w) & fetch(&vals, b, w);
            }
        }
        Ok(self
            .outputs
            .iter()
            .map(|&(_, l)| (0..words).map(|w| fetch(&vals, l, w)).collect())
            .collect())
    }

    /// A copy without AND nodes that no output depends on. Inputs are all
    /// kept (they are the interface); the surviving nodes keep their
    /// relative order, so literals stay topologically sorted.
    pub fn cleanup(&self) -> Aig {
        let n_in = self.num_inputs;
        let mut live = vec![false; self.ands.len()];
        let node = |lit: Lit| -> Option<usize> { lit_var(lit).checked_sub(n_in + 1).map(|k| k as usize) };
        for &(_, l) in &self.outputs {
            if let Some(k) = node(l) {
                live[k] = true;
            }
        }
        // Fanins are always earlier nodes, so one backward pass marks the
        // whole transitive fanin without recursion.
        for k in (0..self.ands.len()).rev() {
            if live[k] {
                let (a, b) = self.ands[k];
                for l in [a, b] {
                    if let Some(j) = node(l) {
                        live[j] = true;
                    }
                }
            }
        }
        let mut new_var: Vec<u32> = vec![0; self.ands.len()];
        let mut out = Aig {
            num_inputs: n_in,
            input_names: self.input_names.clone(),
            ands: Vec::new(),
            outputs: Vec::new(),
            strash: HashMap::new(),
        };
        // Renumbering is monotone, so each pair keeps its larger-first order
        // and the hash keys stay canonical.
        let remap = |new_var: &[u32], l: Lit| -> Lit {
            match node(l) {
                Some(k) => 2 * new_var[k] + (l & 1),
                None => l,
            }
        };
        for (k, &(a, b)) in self.ands.iter().enumerate() {
            if live[k] {
                let key = (remap(&new_var, a), remap(&new_var, b));
                let var = n_in + 1 + out.ands.len() as u32;
                new_var[k] = var;
                out.ands.push(key);
                out.strash.insert(key, 2 * var);
            }
        }
        out.outputs = self.outputs.iter().map(|(n, l)| (n.clone(), remap(&new_var, *l))).collect();
        out
    }
}

/// Grammar names for `inputs` and `outputs` (see [`Aig::to_circuit`]): good names are kept, the
/// rest are spelled in the grammar's alphabet without clashing with any other name.
fn grammar_names(inputs: Vec<String>, outputs: Vec<String>) -> (Vec<String>, Vec<String>) {
    use crate::grammar::{name_problem, MAX_NAME_LEN};
    let ok = |n: &str| name_problem(n).is_none();
    let mut used: std::collections::HashSet<String> = inputs.iter().chain(&outputs).filter(|n| ok(n)).cloned().collect();
    let mut fix = |names: Vec<String>| -> Vec<String> {
        names
            .into_iter()
            .map(|n| {
                if ok(&n) {
                    return n;
                }
                let mut s: String = n
                    .chars()
                    .take(MAX_NAME_LEN - 16)
                    .map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' })
                    .collect();
                if !ok(&s) {
                    s = format!("n_{s}");
                }
                let mut out = s.clone();
                let mut k = 2;
                while used.contains(&out) {
                    out = format!("{s}_{k}");
                    k += 1;
                }
                used.insert(out.clone());
                out
            })
            .collect()
    };
    let inputs = fix(inputs);
    let outputs = fix(outputs);
    (inputs, outputs)
}
