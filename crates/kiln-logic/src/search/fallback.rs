//! The constructions used when exact search gives up: a Shannon expansion of the table, and the
//! translation of any circuit into a restricted basis.

use std::collections::HashMap;

use super::enumerate::{EnumParams, Enumeration, Outcome};
use super::{targets_of, Basis, SearchError};
use crate::circuit::{Circuit, Op, Signal};
use crate::table::Table;

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
pub(crate) fn into_basis(c: &Circuit, basis: &Basis, max_gates: usize) -> Result<Circuit, SearchError> {
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
        let params = EnumParams {
            basis: basis.clone(),
            deadline: None,
        };
        let mut eng = Enumeration::new(&table, &targets, essential, &params);
        // Any complete basis writes a two-input function in a handful of
        // gates; failing that bound means the basis cannot express it.
        let found = (0..=6).any(|k| eng.run(k) == Outcome::Found);
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
            Some(t) => out.append(t, &args).expect("valid")[0],
        };
        map.push(s);
    }
    for (name, s) in c.outputs() {
        out.set_output(name, remap(&map, *s)).expect("valid");
    }
    Ok(out.remove_dead())
}
