//! Restriction bounds (gate elimination): see [`super::SatParams::restrictions`].

use std::time::{Duration, Instant};

use crate::table::Table;

use super::encode::{Encoding, Problem, L};
use super::{synthesize, SatParams};

/// The restriction bound of [`SatParams::restrictions`] for input `x`: with
/// `x` fixed to `c`, at most `most[c]` gates are eliminated. A gate is
/// eliminated when it reads `x` (it becomes a constant or a literal of its
/// other fanin), or when it reads a gate that `x = c` turns into a constant
/// (it becomes a function of its other fanin alone). Each such gate sets an
/// "eliminated" variable, counted by a sequential counter; the variables are
/// only implied, so a circuit that eliminates fewer gates is never excluded.
/// Propagating constants further (a gate whose operator ignores a constant
/// fanin is itself constant) was tried and changed nothing measurable.
pub(super) fn bound_restriction(e: &mut Encoding, x: usize, most: [Option<usize>; 2]) {
    let (n, k) = (e.inputs, e.k);
    // Per gate: "reads x as its first fanin", "… as its second".
    let mut reads: Vec<[Option<i32>; 2]> = vec![[None, None]; k];
    for (i, slot) in reads.iter_mut().enumerate() {
        for (side, first) in [(0, true), (1, false)] {
            let sels: Vec<i32> = e.sel[i]
                .iter()
                .filter(|&&(j, l, _)| if first { j == x } else { l == x })
                .map(|&(_, _, s)| s)
                .collect();
            if sels.is_empty() {
                continue;
            }
            let v = e.cnf.fresh();
            for s in sels {
                e.cnf.add(&[L::Var(-s), L::Var(v)]);
            }
            slot[side] = Some(v);
        }
    }
    // Operator bit `2p + q` of gate i (first fanin `p`, second `q`).
    let bit = |e: &Encoding, i: usize, b: usize| match e.op[i][b] {
        0 => L::Const(false),
        v => L::Var(v),
    };
    for (c, most) in most.into_iter().enumerate() {
        let Some(most) = most else { continue };
        // Gate i is a constant under x = c: it reads x where its operator
        // ignores the other fanin (bits 2c, 2c + 1 of the first operand's
        // row c; bits c, 2 + c of the second's column c).
        let mut constant: Vec<Option<i32>> = vec![None; k];
        for (i, slot) in constant.iter_mut().enumerate() {
            if reads[i] == [None, None] {
                continue;
            }
            let kv = e.cnf.fresh();
            for (side, (b0, b1)) in [(0, (2 * c, 2 * c + 1)), (1, (c, 2 + c))] {
                if let Some(v) = reads[i][side] {
                    let (u, w) = (bit(e, i, b0), bit(e, i, b1));
                    e.cnf.add(&[L::Var(-v), u.not(), w.not(), L::Var(kv)]);
                    e.cnf.add(&[L::Var(-v), u, w, L::Var(kv)]);
                }
            }
            *slot = Some(kv);
        }
        let mut eliminated = Vec::new();
        for (i, read) in reads.iter().enumerate() {
            let via: Vec<(i32, i32)> = e.sel[i]
                .iter()
                .flat_map(|&(j, l, s)| [j, l].into_iter().filter(|&g| g >= n).map(move |g| (s, g - n)))
                .filter_map(|(s, g)| constant[g].map(|kv| (s, kv)))
                .collect();
            if *read == [None, None] && via.is_empty() {
                continue;
            }
            let gone = e.cnf.fresh();
            for &v in read.iter().flatten() {
                e.cnf.add(&[L::Var(-v), L::Var(gone)]);
            }
            for (s, kv) in via {
                e.cnf.add(&[L::Var(-s), L::Var(-kv), L::Var(gone)]);
            }
            eliminated.push(gone);
        }
        at_most(e, &eliminated, most);
    }
}

/// At most `most` of the variables `vars` are true (Sinz's sequential
/// counter: `most` auxiliary variables per position).
fn at_most(e: &mut Encoding, vars: &[i32], most: usize) {
    if vars.len() <= most {
        return;
    }
    if most == 0 {
        for &v in vars {
            e.cnf.add(&[L::Var(-v)]);
        }
        return;
    }
    // cur[c]: at least c + 1 of vars[..=i] are true.
    let mut prev: Vec<i32> = Vec::new();
    for (i, &v) in vars.iter().enumerate() {
        let cur: Vec<i32> = (0..most).map(|_| e.cnf.fresh()).collect();
        e.cnf.add(&[L::Var(-v), L::Var(cur[0])]);
        for (c, &now) in cur.iter().enumerate() {
            if let Some(&p) = prev.get(c) {
                e.cnf.add(&[L::Var(-p), L::Var(now)]);
            }
            if let Some(&p) = prev.get(c.wrapping_sub(1)) {
                e.cnf.add(&[L::Var(-v), L::Var(-p), L::Var(now)]);
            }
        }
        if i > 0 {
            e.cnf.add(&[L::Var(-v), L::Var(-prev[most - 1])]);
        }
        prev = cur;
    }
}

/// Share of the time left that [`restriction_bounds`] may spend, and the
/// most it spends without a deadline: the smaller searches pay off only
/// when they are a small part of the whole.
const RESTRICTION_SHARE: u32 = 8;
const RESTRICTION_UNLIMITED: Duration = Duration::from_secs(8);

/// The table with input `x` fixed to `c` and removed (care rows with `x = c`,
/// the other inputs shifted down).
fn restrict(table: &Table, x: usize, c: bool) -> Table {
    let names: Vec<String> = table
        .input_names()
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != x)
        .map(|(_, s)| s.clone())
        .collect();
    let low = (1u64 << x) - 1;
    let rows = table
        .rows()
        .iter()
        .filter(|r| (r.inputs >> x & 1 == 1) == c)
        .map(|r| crate::table::Row {
            inputs: (r.inputs & low) | (r.inputs >> (x + 1)) << x,
            outputs: r.outputs,
            line: None,
        })
        .collect();
    Table::from_rows(table.source(), names, table.output_names().to_vec(), rows)
}

/// Per input, a proven lower bound on the gates of the table with that
/// input fixed, the larger over both values (see
/// [`SatParams::restrictions`]); 0 where nothing is known. Inputs that a
/// symmetry of the table maps onto each other share one computation.
pub(super) fn restriction_bounds(
    table: &Table,
    p: &Problem,
    perms: &[Vec<usize>],
    params: &SatParams,
    deadline: Option<Instant>,
) -> Vec<[usize; 2]> {
    let n = p.n;
    let mut bounds = vec![[0; 2]; n];
    // Restricting a gate to a literal relies on every two-input function
    // being a gate.
    if !p.normal || n < 3 {
        return bounds;
    }
    let start = Instant::now();
    let budget = match deadline {
        Some(d) => d.saturating_duration_since(start) / RESTRICTION_SHARE,
        None => RESTRICTION_UNLIMITED,
    };
    let end = start + budget;
    // Orbits of the symmetry group: `perm` maps the table onto itself, so
    // `f` with `x` fixed and `f` with `perm[x]` fixed (to the same or the
    // opposite value) need the same gates.
    let mut orbit: Vec<usize> = (0..n).collect();
    pub(super) fn root(orbit: &mut [usize], mut x: usize) -> usize {
        while orbit[x] != x {
            orbit[x] = orbit[orbit[x]];
            x = orbit[x];
        }
        x
    }
    for perm in perms {
        for (x, &y) in perm.iter().enumerate() {
            let (a, b) = (root(&mut orbit, x), root(&mut orbit, y));
            if a != b {
                orbit[a.max(b)] = a.min(b);
            }
        }
    }
    let essential: Vec<usize> = (0..n).filter(|&x| p.essential >> x & 1 == 1).collect();
    let todo: Vec<usize> = essential.iter().copied().filter(|&x| root(&mut orbit, x) == x).collect();
    let mut searches_left = 2 * todo.len();
    'todo: for &x in &todo {
        for c in [false, true] {
            let now = Instant::now();
            // Each sub-search builds its own problem and symmetries before
            // it looks at its clock, and recurses on one input fewer: past
            // the slice, that work alone grew exponentially with the inputs
            // (an 8-input unit fired by `learn` took minutes).
            if now >= end {
                break 'todo;
            }
            let share = end.saturating_duration_since(now) / searches_left.max(1) as u32;
            searches_left -= 1;
            let sub = restrict(table, x, c);
            // The restricted circuit gives each output a signal and a
            // polarity of its own. Normal form counts the same only when no
            // output is a complemented input and no two outputs are
            // complements (on one gate they would need an inverter there);
            // otherwise nothing is bounded.
            let Ok(q) = Problem::new(&sub, &params.basis) else { continue };
            let mask = sub.row_mask();
            let complements = |a: &Vec<u64>, b: &Vec<u64>| a.iter().zip(b).zip(&mask).all(|((a, b), m)| (a ^ b) & m == *m);
            let paired = q
                .targets
                .iter()
                .enumerate()
                .any(|(i, a)| q.targets[..i].iter().any(|b| complements(a, b)));
            if !q.normal || paired {
                continue;
            }
            let sp = SatParams {
                timeout: Some(share),
                threads: 1,
                // A bound of `max_gates` or more already rules out every
                // size this search will try.
                max_gates: params.max_gates.saturating_sub(1),
                min_gates: 0,
                conflict_limit: None,
                // A circuit for the whole function bounds nothing here.
                known_upper_bound: None,
                ..params.clone()
            };
            if let Ok(r) = synthesize(&sub, &sp) {
                bounds[x][usize::from(c)] = r.lower_bound;
            }
        }
    }
    for &x in &essential {
        let r = root(&mut orbit, x);
        if r != x {
            // The symmetry may complement the input as well, which swaps the
            // two values: only the smaller bound holds for both.
            let m = bounds[r][0].min(bounds[r][1]);
            bounds[x] = [m, m];
        }
    }
    bounds
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exact_sat::encode::Cnf;
    use crate::exact_sat::solve::satisfiable;

    /// The sequential counter admits an assignment exactly when at most `most` of its variables
    /// are true: every assignment of 7 variables, every bound.
    #[test]
    fn at_most_counts_true_variables() {
        let count = 7;
        for most in 0..=count {
            let mut e = Encoding {
                inputs: 2,
                k: 0,
                normal: true,
                cnf: Cnf::default(),
                sel: Vec::new(),
                op: Vec::new(),
                out: Vec::new(),
                pol: Vec::new(),
                first_excluded: Vec::new(),
            };
            let vars: Vec<i32> = (0..count).map(|_| e.cnf.fresh()).collect();
            at_most(&mut e, &vars, most);
            for set in 0u32..1 << count {
                let cube: Vec<i32> = vars
                    .iter()
                    .enumerate()
                    .map(|(i, &v)| if set >> i & 1 == 1 { v } else { -v })
                    .collect();
                assert_eq!(
                    satisfiable(&e, &cube),
                    set.count_ones() as usize <= most,
                    "{set:#09b}, at most {most}"
                );
            }
        }
    }
}
