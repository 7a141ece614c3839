//! The CPU interpreter of fused elementwise programs ([`crate::fused::Program`]).
//!
//! The program runs over chunks of [`CHUNK`] elements: each live register is a chunk-sized
//! buffer in the compute type, so one instruction is a tight loop over a thousand elements
//! that stays in cache and vectorises, while the whole program still reads each input and writes
//! each output once. Constants (and ops of constants only) are folded to scalars before the run,
//! and instructions no output depends on are skipped; f32 and f64 inputs are read in place. Each instruction's per-element function is
//! the one the unfused kernels use ([`with_unary`], [`with_binary`]), so the results are the same
//! bits. Above [`PAR_THRESHOLD`] elements the chunks are spread over rayon's pool in ranges, as
//! the other elementwise kernels split their work.

use super::{pool, with_binary, with_unary, AResult, BinaryKernel, Compute, CpuStorage, UnaryKernel, PAR_THRESHOLD};
use crate::fused::{Instr, Program};
use crate::{Element, Error, Float, Result};
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// Elements per register buffer. Measured on W4 (f32 Adam, 20 registers): 64 ran at 60K
/// samples/s, 256 at 74K, 1024 at 79K; the per-instruction dispatch per chunk costs more than the
/// registers spilling from L1 to L2 (20 × 4 KiB) saves.
const CHUNK: usize = 1024;

/// Where an instruction's value lives during the run.
#[derive(Debug, Clone, Copy)]
enum Slot<T> {
    /// Register buffer `i` (`scratch[i * CHUNK..]`).
    Buf(usize),
    /// Input `k`, read in place (its dtype is the compute type).
    In(usize),
    /// The same value for every element (folded at plan time).
    Const(T),
    /// Not needed by any output.
    Dead,
}

/// A program lowered for one compute type.
struct Plan<T> {
    slots: Vec<Slot<T>>,
    bufs: usize,
}

/// The per-element function applied to one value (constant folding).
struct Apply1<T>(T);
impl<T> UnaryKernel<T> for Apply1<T> {
    type Out = T;
    fn run(self, f: impl Fn(T) -> T + Sync + Copy) -> T {
        f(self.0)
    }
}

/// The per-element function applied to one pair of values (constant folding).
struct Apply2<T>(T, T);
impl<T> BinaryKernel<T> for Apply2<T> {
    type Out = T;
    fn run(self, f: impl Fn(T, T) -> T + Sync + Copy) -> T {
        f(self.0, self.1)
    }
}

fn plan<T: Float>(p: &Program, in_place: bool) -> Plan<T> {
    let instrs = p.instrs();
    // Liveness: walk back from the outputs (operands always precede their users).
    let mut live = vec![false; instrs.len()];
    for (_, r) in p.outputs() {
        live[r.0] = true;
    }
    for i in (0..instrs.len()).rev() {
        if !live[i] {
            continue;
        }
        match instrs[i] {
            Instr::Unary(_, a) => live[a.0] = true,
            Instr::Binary(_, a, b) => {
                live[a.0] = true;
                live[b.0] = true;
            }
            Instr::Input(_) | Instr::Scalar(_) => {}
        }
    }
    let mut slots: Vec<Slot<T>> = Vec::with_capacity(instrs.len());
    let mut bufs = 0;
    let mut buf = || {
        bufs += 1;
        Slot::Buf(bufs - 1)
    };
    for (i, ins) in instrs.iter().enumerate() {
        let s = if !live[i] {
            Slot::Dead
        } else {
            match *ins {
                Instr::Input(k) if in_place => Slot::In(k),
                Instr::Input(_) => buf(),
                Instr::Scalar(v) => Slot::Const(T::from_f64(v)),
                Instr::Unary(op, a) => match slots[a.0] {
                    Slot::Const(x) => Slot::Const(with_unary(op, Apply1(x))),
                    _ => buf(),
                },
                Instr::Binary(op, a, b) => match (slots[a.0], slots[b.0]) {
                    (Slot::Const(x), Slot::Const(y)) => Slot::Const(with_binary(op, Apply2(x, y))),
                    _ => buf(),
                },
            }
        };
        slots.push(s);
    }
    Plan { slots, bufs }
}

/// An operand within one chunk.
#[derive(Clone, Copy)]
enum Arg<'a, T> {
    Vec(&'a [T]),
    Const(T),
}

/// A unary op over one chunk.
struct UnaryChunk<'a, T> {
    a: &'a [T],
    dst: &'a mut [T],
}
impl<T: Copy> UnaryKernel<T> for UnaryChunk<'_, T> {
    type Out = ();
    fn run(self, f: impl Fn(T) -> T + Sync + Copy) {
        for (d, &x) in self.dst.iter_mut().zip(self.a) {
            *d = f(x);
        }
    }
}

/// A binary op over one chunk; one loop per operand kind so each stays a straight vector loop.
struct BinaryChunk<'a, T> {
    a: Arg<'a, T>,
    b: Arg<'a, T>,
    dst: &'a mut [T],
}
impl<T: Copy> BinaryKernel<T> for BinaryChunk<'_, T> {
    type Out = ();
    fn run(self, f: impl Fn(T, T) -> T + Sync + Copy) {
        let d = self.dst;
        match (self.a, self.b) {
            (Arg::Vec(a), Arg::Vec(b)) => {
                for ((d, &x), &y) in d.iter_mut().zip(a).zip(b) {
                    *d = f(x, y);
                }
            }
            (Arg::Vec(a), Arg::Const(y)) => {
                for (d, &x) in d.iter_mut().zip(a) {
                    *d = f(x, y);
                }
            }
            (Arg::Const(x), Arg::Vec(b)) => {
                for (d, &y) in d.iter_mut().zip(b) {
                    *d = f(x, y);
                }
            }
            // Folded by `plan`; kept total rather than unreachable.
            (Arg::Const(x), Arg::Const(y)) => d.fill(f(x, y)),
        }
    }
}

/// Runs the program over elements `start..start + outs[k].len()`, writing every slot of every
/// output range.
fn run_range<S: Compute>(p: &Program, plan: &Plan<S::C>, inputs: &[&[S]], start: usize, outs: &mut [&mut [MaybeUninit<S>]]) {
    let total = outs.first().map_or(0, |o| o.len());
    let mut scratch = vec![S::C::zero(); plan.bufs * CHUNK];
    let direct: Vec<Option<&[S::C]>> = inputs.iter().map(|x| S::as_compute(x)).collect();
    let direct = |k: usize, at: usize, len: usize| &direct[k].expect("planned in place only for compute-type inputs")[at..at + len];
    let mut pos = 0;
    while pos < total {
        let len = CHUNK.min(total - pos);
        let at = start + pos;
        for (i, ins) in p.instrs().iter().enumerate() {
            let Slot::Buf(bi) = plan.slots[i] else { continue };
            // Operands are earlier instructions, whose buffers have smaller indices.
            let (before, rest) = scratch.split_at_mut(bi * CHUNK);
            let (before, dst): (&[S::C], _) = (before, &mut rest[..len]);
            let arg = |r: crate::fused::Reg| match plan.slots[r.0] {
                Slot::Buf(j) => Arg::Vec(&before[j * CHUNK..j * CHUNK + len]),
                Slot::Const(c) => Arg::Const(c),
                Slot::In(k) => Arg::Vec(direct(k, at, len)),
                Slot::Dead => unreachable!("an operand of a live instruction is live"),
            };
            match *ins {
                Instr::Input(k) => S::up_slice(&inputs[k][at..at + len], dst),
                Instr::Unary(op, a) => match arg(a) {
                    Arg::Vec(a) => with_unary(op, UnaryChunk { a, dst }),
                    Arg::Const(c) => dst.fill(with_unary(op, Apply1(c))),
                },
                Instr::Binary(op, a, b) => with_binary(op, BinaryChunk { a: arg(a), b: arg(b), dst }),
                Instr::Scalar(v) => dst.fill(S::C::from_f64(v)),
            }
        }
        for (o, (_, r)) in outs.iter_mut().zip(p.outputs()) {
            let o = &mut o[pos..pos + len];
            match plan.slots[r.0] {
                Slot::Buf(j) => {
                    for (d, &v) in o.iter_mut().zip(&scratch[j * CHUNK..j * CHUNK + len]) {
                        d.write(S::down(v));
                    }
                }
                Slot::In(k) => {
                    for (d, &v) in o.iter_mut().zip(direct(k, at, len)) {
                        d.write(S::down(v));
                    }
                }
                Slot::Const(c) => {
                    let v = S::down(c);
                    for d in o.iter_mut() {
                        d.write(v);
                    }
                }
                Slot::Dead => unreachable!("outputs are live"),
            }
        }
        pos += len;
    }
}

/// The program over typed contiguous inputs of equal length `n`.
fn run_typed<S: Compute>(p: &Program, inputs: &[&[S]], n: usize) -> AResult<Vec<Vec<S>>> {
    let plan = plan::<S::C>(p, inputs.iter().all(|x| S::as_compute(x).is_some()));
    let mut bufs: Vec<Vec<S>> = (0..p.outputs().len()).map(|_| pool::take(n)).collect::<AResult<_>>()?;
    {
        // `take` guarantees capacity >= n; the slices check it again before `set_len` relies on it.
        let mut spares: Vec<&mut [MaybeUninit<S>]> = bufs.iter_mut().map(|v| &mut v.spare_capacity_mut()[..n]).collect();
        let threads = rayon::current_num_threads();
        if n >= PAR_THRESHOLD && threads > 1 {
            let range = n.div_ceil(threads * 4).max(PAR_THRESHOLD / 4);
            let mut tasks: Vec<Vec<&mut [MaybeUninit<S>]>> = (0..n.div_ceil(range)).map(|_| Vec::new()).collect();
            for s in spares {
                for (t, c) in s.chunks_mut(range).enumerate() {
                    tasks[t].push(c);
                }
            }
            tasks
                .into_par_iter()
                .enumerate()
                .for_each(|(t, mut outs)| run_range(p, &plan, inputs, t * range, &mut outs));
        } else {
            run_range(p, &plan, inputs, 0, &mut spares);
        }
    }
    for v in &mut bufs {
        // SAFETY: the capacity is at least `n` (the `[..n]` slices above would have failed
        // otherwise), and `run_range` wrote every slot of the output ranges, which cover 0..n.
        unsafe { v.set_len(n) };
    }
    Ok(bufs)
}

impl CpuStorage {
    /// Runs `p` over contiguous buffers of one float dtype and one length (the caller checked
    /// dtypes, lengths and the program), one new buffer per output.
    pub(crate) fn fused_elementwise(inputs: &[&CpuStorage], p: &Program) -> Result<Vec<CpuStorage>> {
        const OP: &str = "fused_elementwise";
        fn typed<S: Compute>(inputs: &[&CpuStorage], p: &Program) -> Option<AResult<Vec<CpuStorage>>> {
            let xs = inputs.iter().map(|s| S::slice(s)).collect::<Option<Vec<&[S]>>>()?;
            let n = xs.first().map_or(0, |x| x.len());
            if xs.iter().any(|x| x.len() != n) {
                return None;
            }
            Some(run_typed(p, &xs, n).map(|v| v.into_iter().map(S::wrap).collect()))
        }
        let Some(first) = inputs.first() else {
            return Err(Error::value(OP, "no inputs"));
        };
        let r = match first {
            CpuStorage::F32(_) => typed::<f32>(inputs, p),
            CpuStorage::F64(_) => typed::<f64>(inputs, p),
            CpuStorage::F16(_) => typed::<half::f16>(inputs, p),
            CpuStorage::BF16(_) => typed::<half::bf16>(inputs, p),
            _ => None,
        };
        r.ok_or(Error::DType {
            op: OP,
            expected: "buffers of one float dtype and one length",
            got: first.dtype(),
        })?
        .map_err(|e| e.at(OP))
    }
}
