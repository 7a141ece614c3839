//! The relaxed programs [`learn`](super::learn) fits, and how each fires into a circuit: networks
//! of two-input gates, each a softmax mixture of the 16 boolean functions evaluated in
//! probabilistic logic ([`Space::Circuit`](super::Space::Circuit)), and layers of sigmoid units
//! ([`Space::Unit`](super::Space::Unit), [`Space::Mlp`](super::Space::Mlp)).

use super::{GateParam, LearnError, UnitReport, Wiring};
use kiln_core::{DType, Rng, Tensor, Var};
use kiln_logic::circuit::{gate_from_truth_table, Circuit, GateExpr, Signal};
use kiln_logic::search::{self, Basis, SearchOptions};
use kiln_logic::table::Table;
use std::collections::HashMap;
use std::time::{Duration, Instant};

fn randn(shape: &[usize], std: f64, rng: &mut Rng) -> Result<Tensor, LearnError> {
    Ok(Tensor::randn(shape.to_vec(), 0.0, std, DType::F32, rng)?)
}

/// A small circuit computing `f` over `k` inputs (`f` given as a truth table indexed by the
/// inputs' bits, input 0 least significant): one gate for `k = 2`, exact search otherwise.
/// The search for each function stops at `deadline` (and after 2 s in any case) with the best
/// circuit it has, so firing a wide network never outlasts the caller's budget by much.
fn function_circuit(k: usize, f: &dyn Fn(usize) -> bool, deadline: Instant) -> Result<Circuit, LearnError> {
    let names: Vec<String> = (0..k).map(|i| format!("A{i}")).collect();
    if k == 2 {
        let mut c = Circuit::new(names);
        let mut tt = 0u8;
        for a in 0..2 {
            for b in 0..2 {
                tt |= (f(a | (b << 1)) as u8) << (2 * a + b);
            }
        }
        let s = c.push(gate_from_truth_table(tt, Signal::Input(0), Signal::Input(1)))?;
        c.set_output("F", s)?;
        return Ok(c.simplify());
    }
    if k > MAX_UNIT_INPUTS {
        return Err(LearnError::Options(format!(
            "cannot fire a unit with {k} inputs into gates (at most {MAX_UNIT_INPUTS})"
        )));
    }
    let refs: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
    let t = Table::from_fn(&refs, &["F"], |bits| {
        let idx = bits.iter().enumerate().map(|(i, &b)| (b as usize) << i).sum::<usize>();
        vec![f(idx)]
    });
    let opts = SearchOptions {
        basis: Basis::all(),
        max_gates: 12,
        timeout: Some(
            deadline
                .saturating_duration_since(Instant::now())
                .clamp(Duration::from_millis(1), Duration::from_secs(2)),
        ),
    };
    Ok(search::search(&t, &opts).map_err(|e| LearnError::Options(e.to_string()))?.circuit)
}

/// Coefficients of the 16 gates as polynomials `c0 + c1 a + c2 b + c3 ab`: the expectation of gate
/// `tt` when `a` and `b` are independent probabilities. Row `tt` follows the bit order of
/// [`gate_from_truth_table`].
pub(crate) fn gate_polynomials() -> Result<Tensor, LearnError> {
    let mut v = Vec::with_capacity(64);
    for tt in 0..16u32 {
        let f = |a: u32, b: u32| ((tt >> (2 * a + b)) & 1) as f32;
        let (f00, f01, f10, f11) = (f(0, 0), f(0, 1), f(1, 0), f(1, 1));
        v.extend([f00, f10 - f00, f01 - f00, f00 - f01 - f10 + f11]);
    }
    Ok(Tensor::from_vec(v, [16, 4])?)
}

/// Most inputs a threshold unit of the unit and mlp spaces may have: firing enumerates them.
pub const MAX_UNIT_INPUTS: usize = 10;

/// Largest gate-layer width (or hidden-unit count) accepted.
pub const MAX_WIDTH: usize = 4096;
/// Largest number of gate layers accepted.
pub const MAX_DEPTH: usize = 64;

/// Pass-through of the first input, the residual initialisation's favourite.
pub(crate) const PASS_A: usize = 0b1100;

pub(super) struct GateLayer {
    pub(super) logits: Var,
    /// Candidate signals of each gate's two inputs, `[gates * pool]` each, and their logits.
    pub(super) cand: [Vec<usize>; 2],
    pub(super) cand_t: [Tensor; 2],
    pub(super) wire: Option<[Var; 2]>,
    pub(super) gates: usize,
    pub(super) pool: usize,
}

pub(super) struct GateNet {
    pub(super) layers: Vec<GateLayer>,
    pub(super) poly: Tensor,
    pub(super) inputs: usize,
    pub(super) param: GateParam,
}

/// Rows of the truth table of [`gate_from_truth_table`]'s bit order (`2a + b`) as polynomials
/// `c0 + c1 a + c2 b + c3 ab`: row `i` of the result is what cell `i`'s output probability adds.
fn cell_polynomials() -> Result<Tensor, LearnError> {
    let v: [f32; 16] = [
        1.0, -1.0, -1.0, 1.0, // a = 0, b = 0
        0.0, 0.0, 1.0, -1.0, // a = 0, b = 1
        0.0, 1.0, 0.0, -1.0, // a = 1, b = 0
        0.0, 0.0, 0.0, 1.0, // a = 1, b = 1
    ];
    Ok(Tensor::from_vec(v.to_vec(), [4, 4])?)
}

/// Gates per layer of a circuit-space network: `width` in each hidden layer, one per output in
/// the last.
pub(super) fn layer_sizes(width: usize, depth: usize, outputs: usize) -> impl Iterator<Item = usize> {
    (0..depth).map(move |l| if l + 1 == depth { outputs } else { width })
}

impl GateNet {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        n: usize,
        m: usize,
        width: usize,
        depth: usize,
        wiring: Wiring,
        pool: usize,
        residual: f64,
        param: GateParam,
        rng: &mut Rng,
    ) -> Result<GateNet, LearnError> {
        let mut layers = Vec::new();
        let mut avail = n;
        for (l, gates) in layer_sizes(width, depth, m).enumerate() {
            let k = match wiring {
                Wiring::Random => 1,
                Wiring::Learned => pool.min(avail).max(1),
            };
            // Residual initialisation: every gate starts close to passing its first input through,
            // so gradients survive depth; the other functions start with small random logits.
            let logits = match param {
                GateParam::Softmax16 => {
                    let mut init: Vec<f32> = (0..gates * 16).map(|_| (rng.normal() * 0.5) as f32).collect();
                    for g in 0..gates {
                        init[g * 16 + PASS_A] += residual as f32;
                    }
                    Var::new(&Tensor::from_vec(init, [gates, 16])?)
                }
                // Pass-through of `a` is 1 on the cells with a = 1 (bits 2 and 3) and 0 elsewhere.
                GateParam::InputWise => {
                    let mut init: Vec<f32> = (0..gates * 4).map(|_| (rng.normal() * 0.5) as f32).collect();
                    for g in 0..gates {
                        for cell in 0..4 {
                            let sign = if (PASS_A >> cell) & 1 == 1 { 1.0 } else { -1.0 };
                            init[g * 4 + cell] += (sign * residual) as f32;
                        }
                    }
                    Var::new(&Tensor::from_vec(init, [gates, 4])?)
                }
            };
            let prev_start = avail - if l == 0 { n } else { width };
            let cand = match wiring {
                // difflogic's fixed random wiring: the gates of a layer read the previous layer
                // only, through a random permutation repeated as needed, so every signal is used.
                Wiring::Random => {
                    let mut slots = Vec::with_capacity(2 * gates);
                    while slots.len() < 2 * gates {
                        let mut perm: Vec<usize> = (prev_start..avail).collect();
                        rng.shuffle(&mut perm);
                        slots.extend(perm);
                    }
                    slots.truncate(2 * gates);
                    [slots[..gates].to_vec(), slots[gates..].to_vec()]
                }
                // Learned wiring: a random pool of k earlier signals (any layer) per gate input.
                Wiring::Learned => {
                    let mut pick = || -> Vec<usize> {
                        let mut out = Vec::with_capacity(gates * k);
                        for _ in 0..gates {
                            let mut all: Vec<usize> = (0..avail).collect();
                            rng.shuffle(&mut all);
                            out.extend(all.into_iter().take(k));
                        }
                        out
                    };
                    [pick(), pick()]
                }
            };
            // Random wiring gathers columns; learned wiring scatters each gate's softmax weights
            // into a dense [signals, gates] matrix (position signal*gates + gate) and multiplies.
            let index = |side: usize| -> Result<Tensor, LearnError> {
                let v: Vec<i64> = match wiring {
                    Wiring::Random => cand[side].iter().map(|&c| c as i64).collect(),
                    Wiring::Learned => cand[side].iter().enumerate().map(|(i, &c)| (c * gates + i / k) as i64).collect(),
                };
                Ok(Tensor::from_vec(v, [gates * k])?)
            };
            let cand_t = [index(0)?, index(1)?];
            let wire = match wiring {
                Wiring::Random => None,
                Wiring::Learned => Some([Var::new(&randn(&[gates, k], 0.1, rng)?), Var::new(&randn(&[gates, k], 0.1, rng)?)]),
            };
            layers.push(GateLayer {
                logits,
                cand,
                cand_t,
                wire,
                gates,
                pool: k,
            });
            avail += gates;
        }
        Ok(GateNet {
            layers,
            poly: match param {
                GateParam::Softmax16 => gate_polynomials()?,
                GateParam::InputWise => cell_polynomials()?,
            },
            inputs: n,
            param,
        })
    }

    fn vars(&self) -> Vec<Var> {
        let mut v = Vec::new();
        for l in &self.layers {
            v.push(l.logits.clone());
            if let Some(w) = &l.wire {
                v.extend(w.iter().cloned());
            }
        }
        v
    }

    /// Probabilistic outputs `[rows, m]`, with every gate's function mixture at `temperature`.
    fn forward(&self, x: &Tensor, temperature: f64) -> Result<Tensor, LearnError> {
        let mut s = x.clone();
        let mut out = x.clone();
        for l in &self.layers {
            let read = |side: usize| -> Result<Tensor, LearnError> {
                Ok(match &l.wire {
                    None => s.index_select(1, &l.cand_t[side])?,
                    Some(w) => {
                        let signals = s.dims()[1];
                        let weights = w[side].tensor().softmax(-1)?.flatten_all()?;
                        let dense = Tensor::zeros([signals * l.gates], weights.dtype())?.index_add(0, &l.cand_t[side], &weights)?;
                        s.matmul(&dense.reshape([signals, l.gates])?)?
                    }
                })
            };
            let (a, b) = (read(0)?, read(1)?);
            // Each gate is a polynomial in (1, a, b, ab) whose coefficients mix the 16 functions.
            let logits = if temperature == 1.0 {
                l.logits.tensor()
            } else {
                l.logits.tensor().affine(1.0 / temperature, 0.0)?
            };
            let mix = match self.param {
                GateParam::Softmax16 => logits.softmax(-1)?,
                GateParam::InputWise => logits.sigmoid()?,
            };
            let k = mix.matmul(&self.poly)?.t()?;
            let coef = |i: usize| k.select(0, i);
            out = coef(0)?
                .add(&a.mul(&coef(1)?)?)?
                .add(&b.mul(&coef(2)?)?)?
                .add(&a.mul(&b)?.mul(&coef(3)?)?)?;
            s = Tensor::cat(&[s, out.clone()], 1)?;
        }
        Ok(out)
    }

    /// Every gate's softmax over its 16 functions at temperature 1, in network order.
    pub(super) fn distributions(&self) -> Result<Vec<[f32; 16]>, LearnError> {
        let mut out = Vec::new();
        for l in &self.layers {
            match self.param {
                GateParam::Softmax16 => {
                    for row in l.logits.tensor().softmax(-1)?.to_vec2::<f32>()? {
                        let mut a = [0f32; 16];
                        a.copy_from_slice(&row[..16]);
                        out.push(a);
                    }
                }
                // Cells are independent: a function's probability is the product over its cells.
                GateParam::InputWise => {
                    for cells in l.logits.tensor().sigmoid()?.to_vec2::<f32>()? {
                        let mut a = [0f32; 16];
                        for (tt, p) in a.iter_mut().enumerate() {
                            *p = (0..4).map(|i| if (tt >> i) & 1 == 1 { cells[i] } else { 1.0 - cells[i] }).product();
                        }
                        out.push(a);
                    }
                }
            }
        }
        Ok(out)
    }

    pub(super) fn total_gates(&self) -> usize {
        self.layers.iter().map(|l| l.gates).sum()
    }

    /// Hardens every gate (argmax function, argmax wire) into a circuit, unsimplified.
    pub(super) fn fire(&self, table: &Table) -> Result<Circuit, LearnError> {
        let mut c = Circuit::for_table(table);
        let mut signals: Vec<Signal> = (0..self.inputs).map(Signal::Input).collect();
        let mut last = Vec::new();
        for l in &self.layers {
            let tts: Vec<i64> = match self.param {
                GateParam::Softmax16 => l.logits.tensor().argmax(-1, false)?.to_vec::<i64>()?,
                GateParam::InputWise => l
                    .logits
                    .tensor()
                    .to_vec2::<f32>()?
                    .iter()
                    .map(|cells| (0..4).filter(|&i| cells[i] > 0.0).map(|i| 1i64 << i).sum())
                    .collect(),
            };
            let choice = |side: usize| -> Result<Vec<usize>, LearnError> {
                Ok(match &l.wire {
                    None => l.cand[side].clone(),
                    Some(w) => {
                        let best = w[side].tensor().argmax(-1, false)?.to_vec::<i64>()?;
                        best.iter()
                            .enumerate()
                            .map(|(g, &k)| l.cand[side][g * l.pool + k as usize])
                            .collect()
                    }
                })
            };
            let (ia, ib) = (choice(0)?, choice(1)?);
            last.clear();
            for g in 0..l.gates {
                last.push(c.push(fire_gate(tts[g] as u8, signals[ia[g]], signals[ib[g]]))?);
            }
            signals.extend(last.iter().copied());
        }
        for (j, name) in table.output_names().iter().enumerate() {
            c.set_output(name, last[j])?;
        }
        // Not simplified: repair uses every gate, read or not, as a building block.
        Ok(c)
    }
}

/// The gate with truth table `tt` over `a` and `b`. When both inputs are one wire only f(0,0) and
/// f(1,1) matter, so the gate fires as the constant, copy or NOT it really is (NOR of a wire with
/// itself is NOT).
pub(crate) fn fire_gate(tt: u8, a: Signal, b: Signal) -> GateExpr {
    let tt = if a == b {
        match (tt & 1, (tt >> 3) & 1) {
            (0, 0) => 0b0000,
            (1, 1) => 0b1111,
            (0, _) => 0b1100,
            _ => 0b0011,
        }
    } else {
        tt
    };
    gate_from_truth_table(tt, a, b)
}

/// Sigmoid units: `layers[i] = (W [fan_in, fan_out], b [fan_out])`.
pub(super) struct UnitNet {
    layers: Vec<(Var, Var)>,
}

impl UnitNet {
    pub(super) fn new(sizes: &[usize], rng: &mut Rng) -> Result<UnitNet, LearnError> {
        let mut layers = Vec::new();
        for w in sizes.windows(2) {
            let std = 1.0 / (w[0] as f64).sqrt();
            layers.push((Var::new(&randn(&[w[0], w[1]], std, rng)?), Var::new(&randn(&[w[1]], std, rng)?)));
        }
        Ok(UnitNet { layers })
    }
    fn vars(&self) -> Vec<Var> {
        self.layers.iter().flat_map(|(w, b)| [w.clone(), b.clone()]).collect()
    }
    /// Output logits.
    fn forward(&self, x: &Tensor) -> Result<Tensor, LearnError> {
        let mut h = x.clone();
        for (i, (w, b)) in self.layers.iter().enumerate() {
            let z = h.matmul(&w.tensor())?.add(&b.tensor())?;
            h = if i + 1 == self.layers.len() { z } else { z.sigmoid()? };
        }
        Ok(h)
    }
    /// Thresholds every unit at 0.5 (logit 0) and turns it into gates over the layer below.
    fn fire(&self, table: &Table, reports: &mut Vec<UnitReport>, deadline: Instant) -> Result<Circuit, LearnError> {
        let mut c = Circuit::for_table(table);
        // Units often fire to the same function (64 outputs of one decoder); search each once.
        let mut known: HashMap<Vec<bool>, Circuit> = HashMap::new();
        let mut below: Vec<Signal> = (0..table.num_inputs()).map(Signal::Input).collect();
        reports.clear();
        let mut hidden = 0;
        for (li, (w, b)) in self.layers.iter().enumerate() {
            let wv = w.tensor().to_vec2::<f32>()?;
            let bv = b.tensor().to_vec::<f32>()?;
            let mut next = Vec::with_capacity(bv.len());
            for (j, &bias) in bv.iter().enumerate() {
                let weights: Vec<f64> = wv.iter().map(|row| row[j] as f64).collect();
                let f = |bits: usize| -> bool {
                    let z: f64 = weights
                        .iter()
                        .enumerate()
                        .map(|(i, wi)| if (bits >> i) & 1 == 1 { *wi } else { 0.0 })
                        .sum::<f64>();
                    z + bias as f64 > 0.0
                };
                let key: Vec<bool> = (0..1usize << weights.len().min(MAX_UNIT_INPUTS)).map(&f).collect();
                let sub = match known.get(&key) {
                    Some(sub) => sub.clone(),
                    None => {
                        let sub = function_circuit(weights.len(), &f, deadline)?;
                        known.insert(key, sub.clone());
                        sub
                    }
                };
                let s = c.append(&sub, &below)?[0];
                let name = if li + 1 == self.layers.len() {
                    table.output_names()[j].clone()
                } else {
                    hidden += 1;
                    format!("H{hidden}")
                };
                let arg_names: Vec<String> = below.iter().map(|&s| c.signal_name(s)).collect();
                let named = rename(&sub, &arg_names, &name);
                reports.push(UnitReport {
                    name,
                    weights,
                    bias: bias as f64,
                    fired: kiln_logic::grammar::to_expression(&named, "; "),
                });
                next.push(s);
            }
            below = next;
        }
        for (j, name) in table.output_names().iter().enumerate() {
            c.set_output(name, below[j])?;
        }
        Ok(c.simplify())
    }
}

/// `c` with its inputs called `names` and its single output called `output`, for printing a unit.
fn rename(c: &Circuit, names: &[String], output: &str) -> Circuit {
    let mut out = Circuit::new(names.to_vec());
    for g in c.gates() {
        out.push(g.clone()).expect("same gates, same order");
    }
    for (_, s) in c.outputs() {
        out.set_output(output, *s).expect("same outputs");
    }
    out
}

pub(super) enum Model {
    Gates(GateNet),
    Units(UnitNet),
}

impl Model {
    pub(super) fn vars(&self) -> Vec<Var> {
        match self {
            Model::Gates(g) => g.vars(),
            Model::Units(u) => u.vars(),
        }
    }
    pub(super) fn loss(&self, x: &Tensor, y: &Tensor, temperature: f64) -> Result<Tensor, LearnError> {
        Ok(match self {
            Model::Gates(g) => {
                // Binary cross-entropy on the probabilistic outputs, clamped so log stays finite.
                let o = g.forward(x, temperature)?.clamp(1e-6, 1.0 - 1e-6)?;
                let pos = y.mul(&o.log()?)?;
                let neg = y.affine(-1.0, 1.0)?.mul(&o.affine(-1.0, 1.0)?.log()?)?;
                pos.add(&neg)?.mean_all()?.neg()?
            }
            Model::Units(u) => {
                // BCE with logits: softplus(z) - y z, stable for any z.
                let z = u.forward(x)?;
                z.softplus()?.sub(&y.mul(&z)?)?.mean_all()?
            }
        })
    }
    /// The fired circuit, unsimplified.
    pub(super) fn fire(&self, table: &Table, reports: &mut Vec<UnitReport>, deadline: Instant) -> Result<Circuit, LearnError> {
        match self {
            Model::Gates(g) => g.fire(table),
            Model::Units(u) => u.fire(table, reports, deadline),
        }
    }
}
