//! Gate bases, the two-input truth tables a basis offers, and how a basis writes a lone negation.
//! Both exact engines ([`super::enumerate`] and [`crate::exact_sat`]) build on these.

use std::fmt;

use crate::circuit::{GateExpr, Op, Signal, BINARY_OPS};

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

/// The two-input truth tables a basis computes, in the order its ops are listed: each op's own
/// table, then the table with its arguments swapped (f(0,1) and f(1,0), bits 1 and 2, exchanged),
/// each table once, with the op that computes it and whether the arguments are swapped. NOT is
/// left out; [`neg_form`] handles it.
fn basis_codes(basis: &Basis) -> Vec<(u8, Op, bool)> {
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

/// For each 4-bit two-input truth table (bit `2a + b` = f(a, b)), the basis op that computes it
/// and whether its arguments go in swapped; `None` where the basis has no such op.
pub(crate) fn basis_code_table(basis: &Basis) -> [Option<(Op, bool)>; 16] {
    let mut table = [None; 16];
    for (t, op, sw) in basis_codes(basis) {
        table[t as usize] = Some((op, sw));
    }
    table
}

/// How a basis writes a lone negation, if it can.
#[derive(Debug, Clone, Copy)]
pub(crate) enum NegForm {
    /// `NOT x`.
    Not,
    /// `x OP x` (NAND, NOR).
    Same(Op),
    /// `x OP c` or `c OP x`: the op, the constant's value, and whether the constant goes first.
    WithConst(Op, bool, bool),
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

/// The gate that negates `x` in the form `form`.
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
