//! Exact synthesis: the smallest circuit over a gate basis that matches a
//! table, by iterative deepening over gate count.
//!
//! Two engines try the sizes from a lower bound up: exhaustive enumeration
//! of gate lists (`search/enumerate.rs`, milliseconds for tables of up to
//! four inputs) and a SAT solver ([`crate::exact_sat`], several times faster
//! on the larger sizes). [`search`] runs the enumeration for a slice of the
//! time budget and then hands the first size it has not refuted to SAT;
//! [`search_with`] picks one engine explicitly, and
//! [`SearchResult::engine`] says which one ran last.
//!
//! Beside the SAT search, a local search ([`crate::local_search`]) shrinks
//! the resynthesised Shannon circuit; each smaller circuit it finds caps the
//! SAT search, so refuting the sizes below it proves it minimum.
//!
//! Having exhausted every size below `k`, a circuit of size `k` is proven
//! minimal. Past `max_gates` or the timeout, a Shannon-expansion circuit
//! ([`fallback()`]) is returned instead with `optimal: false`.
//!
//! [`Basis`] and the negation forms shared with the SAT engine live in
//! `search/basis.rs`, the fallback constructions in `search/fallback.rs`.

mod basis;
mod enumerate;
mod fallback;

use std::collections::HashMap;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use thiserror::Error;

pub use self::basis::Basis;
pub(crate) use self::basis::{basis_code_table, neg_expr, neg_form, NegForm};
use self::enumerate::{EnumParams, Enumeration, Outcome};
pub use self::fallback::fallback;
use self::fallback::into_basis;
use crate::circuit::{Circuit, GateExpr, Signal};
use crate::exact_sat::{self, SatParams};
use crate::local_search::{self, LocalSearchParams};
use crate::table::{Row, Table};

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
    /// The circuit given to [`minimise`] does not compute the table, so no size it reaches
    /// would mean anything.
    #[error("the circuit to minimise does not compute the table: {0}")]
    Mismatch(String),
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
    let first = lb.min(opts.max_gates.saturating_add(1));
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
        let params = EnumParams {
            basis: opts.basis.clone(),
            deadline: enum_end,
        };
        let mut eng = Enumeration::new(table, &targets, essential, &params);
        for k in first..=opts.max_gates {
            match eng.run(k) {
                Outcome::Found => return Ok(found(eng.circuit(table), k, eng.stats().nodes, Engine::Enumeration)),
                Outcome::Stopped => break,
                Outcome::Refuted => refuted = k + 1,
            }
        }
        nodes += eng.stats().nodes;
    }
    // A circuit in hand before the SAT search: the Shannon expansion,
    // resynthesised within the polish budget. The search then stops one gate
    // below it, and where it is already minimum (the 4:1 mux's 9 gates),
    // refuting the sizes below proves it without solving its own size, a
    // satisfiable instance that took the mux 30-80 s.
    let mut circuit = None;
    let mut sat_cap = opts.max_gates;
    // A basis that cannot write the expansion (AND and OR alone, without
    // NOT) leaves the search uncapped; the exact engines may still succeed.
    if sat_ok && refuted <= opts.max_gates {
        if let Ok(c) = fallback(table, &opts.basis, opts.max_gates) {
            let c = resynthesise(table, c, opts, polish.unwrap_or(Duration::from_secs(1)));
            sat_cap = sat_cap.min(c.num_gates().saturating_sub(1));
            circuit = Some(c);
        }
    }
    if sat_ok && refuted <= sat_cap {
        let known = Arc::new(AtomicUsize::new(circuit.as_ref().map_or(usize::MAX, Circuit::num_gates)));
        let params = SatParams {
            basis: opts.basis.clone(),
            max_gates: sat_cap,
            timeout: exact_end.map(|e| e.saturating_duration_since(Instant::now())),
            conflict_limit: None,
            // The idle cores share each size's cubes or, where symmetries
            // leave too few, race as a portfolio: a proof's time varies by
            // orders of magnitude with the solver and its settings
            // (majority-5 at 9 gates: CaDiCaL's two presets 58 s and 243 s).
            threads: exact_sat::portfolio_threads(),
            min_gates: refuted,
            known_upper_bound: Some(known.clone()),
            ..SatParams::default()
        };
        // Beside SAT, a local search shrinks the circuit in hand: SAT proves
        // sizes impossible well but finds large circuits slowly (random
        // 5-input functions: no 10- or 11-gate circuit in 120 s, where local
        // search finds 9 or 10 gates in seconds). Each smaller circuit it
        // finds caps the SAT search, which then ends, proving it minimum,
        // once the sizes below are refuted. It runs for as long as SAT does.
        let job = circuit.as_ref().filter(|c| c.num_gates() > refuted).map(|c| (table, c));
        let lp = LocalSearchParams {
            basis: opts.basis.clone(),
            timeout: params.timeout,
            lower_bound: refuted,
            ..LocalSearchParams::default()
        };
        let (sat, shrunk) = local_search::beside(job, lp, &known, || exact_sat::synthesize(table, &params));
        if shrunk.is_some() {
            circuit = shrunk;
        }
        // An error here (an instance too large, or a decoded circuit that
        // fails verification) leaves the enumeration's bound and the
        // fallback below; it never yields a wrong circuit.
        if let Ok(r) = sat {
            engine = Engine::Sat;
            nodes += r.stats.conflicts;
            if let Some(c) = r.circuit {
                return Ok(found(c, r.lower_bound, nodes, Engine::Sat));
            }
            refuted = refuted.max(r.lower_bound);
        }
    }
    let mut circuit = match circuit {
        Some(c) => c,
        None => fallback(table, &opts.basis, opts.max_gates)?,
    };
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
        circuit = resynthesise(
            table,
            circuit,
            opts,
            left.unwrap_or(Duration::from_secs(10)).min(Duration::from_secs(10)),
        );
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

/// `circuit` resynthesised for at most `budget` with the optimum four-input
/// library and resubstitution, translated back into the basis and kept only
/// when smaller and still verified against `table`.
fn resynthesise(table: &Table, circuit: Circuit, opts: &SearchOptions, budget: Duration) -> Circuit {
    let params = crate::optimise::OptimiseParams {
        timeout: Some(budget),
        // The fallback already is the truth table's Shannon expansion.
        restructure: false,
        ..Default::default()
    };
    let (better, _) = crate::optimise::optimise(&circuit, &params);
    match into_basis(&better, &opts.basis, opts.max_gates) {
        Ok(better) if better.num_gates() < circuit.num_gates() && crate::verify::verify(&better, table).is_ok_and(|v| v.ok()) => better,
        _ => circuit,
    }
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

/// Tries to shrink `circuit` (which must match `table`, or the answer is
/// [`SearchError::Mismatch`]): runs the exact
/// search with at most `gates - 1` gates and returns the smaller circuit if
/// one exists, else the (simplified) original. `optimal` is true when the
/// search proved nothing smaller exists.
pub fn minimise(circuit: &Circuit, table: &Table, opts: &SearchOptions) -> Result<SearchResult, SearchError> {
    let start = Instant::now();
    let check = crate::verify::verify(circuit, table).map_err(|e| SearchError::Mismatch(e.to_string()))?;
    if !check.ok() {
        return Err(SearchError::Mismatch(format!(
            "{} of {} rows wrong",
            check.failures.len(),
            check.rows
        )));
    }
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
    let params = EnumParams {
        basis: opts.basis.clone(),
        deadline: opts.timeout.and_then(|t| start.checked_add(t)),
    };
    let mut eng = Enumeration::new(table, &targets, essential, &params);
    let bound = (g - 1).min(opts.max_gates);
    let first = lb.min(g);
    let mut refuted = first;
    for k in first..=bound {
        match eng.run(k) {
            Outcome::Found => {
                let c = eng.circuit(table);
                return Ok(SearchResult {
                    gates: c.num_gates(),
                    circuit: c,
                    optimal: true,
                    seconds: start.elapsed().as_secs_f64(),
                    nodes: eng.stats().nodes,
                    lower_bound: k,
                    engine: Engine::Enumeration,
                });
            }
            Outcome::Stopped => break,
            Outcome::Refuted => refuted = k + 1,
        }
    }
    Ok(SearchResult {
        circuit: given,
        optimal: refuted == g,
        gates: g,
        seconds: start.elapsed().as_secs_f64(),
        nodes: eng.stats().nodes,
        lower_bound: refuted,
        engine: Engine::Enumeration,
    })
}
