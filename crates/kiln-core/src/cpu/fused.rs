//! The CPU backend's fused elementwise kernels: an interpreter of [`Program`]s, and native
//! evaluation of [`Kernel`]s.
//!
//! **Programs.** A program is lowered once per call to a short list of [`Step`]s and then run block
//! by block: each live value is a [`BLOCK`]-element register in the compute type, so one step is a
//! tight loop over a few hundred elements that stays in L1 and vectorises, while the whole
//! program still reads each input and writes each output once. Lowering does four things that
//! the per-instruction interpreter this replaces did not, each measured on W4's Adam (f32,
//! 85K parameters; see BENCHMARKS.md):
//!
//! * **Combined steps.** A multiply-add tail (`c*y + z`, `z + c*y`, `c + y*z`, `y*z + c`) is run
//!   in the same loop as the op `c` that feeds it, so Adam's thirteen ops are five passes over the
//!   block instead of thirteen. Each op still rounds on its own (Rust never contracts `a*b + c`
//!   into a fused multiply-add), so the results are the same bits as the unfused ops.
//! * **Register reuse.** A register is freed after its last reader, so the live set (not the
//!   program length) decides how much scratch a block touches.
//! * **Outputs in place.** For f32 and f64 a step whose value is an output writes straight into
//!   the output buffer (and later steps read it back from there), instead of a copy per block.
//! * **AVX2 when the CPU has it.** The step loops are compiled twice and picked at run time, as the
//!   matmul kernels are; AVX2 halves the cost of every pass. No FMA contraction happens on either
//!   path, so the bits do not depend on it.
//!
//! Constants (and ops of constants only) are folded to scalars before the run, and instructions no
//! output depends on are skipped. Each op's per-element function is the one the unfused kernels
//! use ([`with_unary`], [`with_binary`]), so the results are the same bits. Above
//! [`PAR_THRESHOLD`] elements the blocks are spread over rayon's pool in ranges, as the other
//! elementwise kernels split their work.
//!
//! Even so, a program costs one pass per step: W4 ran at ~93K samples/s with it against ~101K with
//! the hand-written Adam loop it replaced, whose sqrt and division keep the divider busy while
//! every other op hides behind them. **Kernels** close that gap: a [`Kernel`] is generic over
//! [`Ops`], so it is instantiated here over vectors of [`LANES`] elements and, after inlining,
//! is one straight-line loop with every intermediate in registers (the hand-written loop, from
//! the same source as the program), with the same per-element functions and so the same bits.

use super::{pool, with_binary, with_unary, AResult, BinaryKernel, Compute, CpuStorage, UnaryKernel, PAR_THRESHOLD};
use crate::backend::{BinaryOp, UnaryOp};
use crate::fused::{Instr, Kernel, Ops, Program};
use crate::{Element, Error, Float, Result};
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// Elements per register. Measured on W4 (f32 Adam as a program, samples/s, two runs each): 32
/// 80.1K/81.0K, 64 88.0K/87.9K, 128 91.3K/90.3K, 256 93.5K/92.7K, 512 91.9K/91.0K, 1024
/// 89.4K/89.2K: below 256 the per-step dispatch shows, above it the registers leave L1.
const BLOCK: usize = 256;

/// How an instruction's value is produced, after constant folding and liveness.
#[derive(Debug, Clone, Copy)]
enum Val<T> {
    /// Not needed by any output.
    Dead,
    /// The same value for every element.
    Const(T),
    /// Input `k`.
    Input(usize),
    /// Computed per element by a step.
    Computed,
}

/// Where a step reads an operand from, within the current block.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Src {
    /// Input `k`, read in place (its dtype is the compute type).
    In(usize),
    /// Scratch register `r`.
    Reg(usize),
    /// Output `k`, already written by an earlier step of this block.
    Out(usize),
    /// Constant block `c` (the constant repeated [`BLOCK`] times).
    Const(usize),
}

/// Where a step writes its value.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Dst {
    /// Scratch register `r`.
    Reg(usize),
    /// Output `k` (only when the output dtype is the compute type).
    Out(usize),
}

/// The op of a step.
#[derive(Debug, Clone, Copy)]
enum Core {
    Un(UnaryOp, Src),
    Bin(BinaryOp, Src, Src),
}

/// A multiply-add tail applied to the core op's value `c` in the same loop; each product and sum
/// rounds as the separate ops do, and the operand order is the program's.
#[derive(Debug, Clone, Copy)]
enum Tail {
    None,
    /// `c*y + z`.
    MulAdd(Src, Src),
    /// `z + c*y`.
    AddMul(Src, Src),
    /// `c + y*z`.
    PlusProd(Src, Src),
    /// `y*z + c`.
    ProdPlus(Src, Src),
}

/// One pass over a block.
#[derive(Debug, Clone, Copy)]
struct Step {
    core: Core,
    tail: Tail,
    dst: Dst,
}

/// How output `k` gets its values once the steps of a block have run.
#[derive(Debug, Clone, Copy)]
enum OutFrom {
    /// A step wrote it directly.
    Written,
    /// Copied (and rounded to the output dtype) from a source.
    Copy(Src),
}

/// A program lowered for one compute type.
struct Plan<T> {
    /// Whether steps read the inputs in place (their dtype is the compute type).
    in_place: bool,
    /// Inputs widened into registers at the start of every block (16-bit inputs): `(k, reg)`.
    loads: Vec<(usize, usize)>,
    steps: Vec<Step>,
    consts: Vec<T>,
    regs: usize,
    outs: Vec<OutFrom>,
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

/// Constant folding and liveness: what each instruction's value is.
fn values<T: Float>(p: &Program) -> Vec<Val<T>> {
    let instrs = p.instrs();
    // Walk back from the outputs (operands always precede their users).
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
    let mut vals: Vec<Val<T>> = Vec::with_capacity(instrs.len());
    for (i, ins) in instrs.iter().enumerate() {
        let v = if !live[i] {
            Val::Dead
        } else {
            match *ins {
                Instr::Input(k) => Val::Input(k),
                Instr::Scalar(v) => Val::Const(T::from_f64(v)),
                Instr::Unary(op, a) => match vals[a.0] {
                    Val::Const(x) => Val::Const(with_unary(op, Apply1(x))),
                    _ => Val::Computed,
                },
                Instr::Binary(op, a, b) => match (vals[a.0], vals[b.0]) {
                    (Val::Const(x), Val::Const(y)) => Val::Const(with_binary(op, Apply2(x, y))),
                    _ => Val::Computed,
                },
            }
        };
        vals.push(v);
    }
    vals
}

/// What lowering decided for a computed instruction.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Role {
    /// Its own step, with no tail.
    Plain,
    /// Its own step, running `core` (an earlier instruction) with a tail.
    Fused { core: usize, tail: TailKind, y: usize, z: usize },
    /// Computed inside a later step.
    Absorbed,
}

/// The shape of a [`Tail`], over instruction indices (`y`, `z` in [`Role::Fused`]).
#[derive(Debug, Clone, Copy, PartialEq)]
enum TailKind {
    MulAdd,
    AddMul,
    PlusProd,
    ProdPlus,
}

/// Lowers `p` to steps. `in_place`: the inputs are in the compute type (read without a copy);
/// `direct`: the outputs are (steps may write them).
fn plan<T: Float>(p: &Program, in_place: bool, direct: bool) -> Plan<T> {
    let instrs = p.instrs();
    let vals = values::<T>(p);
    let n = instrs.len();
    // Readers of each value (live instructions and outputs).
    let mut uses = vec![0usize; n];
    let mut is_out = vec![false; n];
    for (i, ins) in instrs.iter().enumerate() {
        if matches!(vals[i], Val::Computed) {
            match *ins {
                Instr::Unary(_, a) => uses[a.0] += 1,
                Instr::Binary(_, a, b) => {
                    uses[a.0] += 1;
                    uses[b.0] += 1;
                }
                _ => {}
            }
        }
    }
    for (_, r) in p.outputs() {
        uses[r.0] += 1;
        is_out[r.0] = true;
    }

    // Combined steps: an `Add` whose operands are a single-use `Mul` and a single-use op (the
    // core) becomes one step. Single use and not an output means no other step needs the
    // intermediate value, so it never has to be stored.
    let mut role: Vec<Role> = vec![Role::Plain; n];
    let single = |i: usize, role: &[Role]| matches!(vals[i], Val::Computed) && uses[i] == 1 && !is_out[i] && role[i] == Role::Plain;
    let mul = |i: usize| match instrs[i] {
        Instr::Binary(BinaryOp::Mul, x, y) => Some((x.0, y.0)),
        _ => None,
    };
    for j in 0..n {
        let Instr::Binary(BinaryOp::Add, a, b) = instrs[j] else { continue };
        if !matches!(vals[j], Val::Computed) {
            continue;
        }
        let (a, b) = (a.0, b.0);
        // A single-use `Mul` operand whose first factor is itself a single-use op: `c*y + z` or
        // `z + c*y` with the op as the core.
        let mut found = None;
        if a != b {
            if let Some((c, y)) = mul(a).filter(|_| single(a, &role)) {
                if c != y && single(c, &role) && c != b {
                    found = Some((c, TailKind::MulAdd, y, b, a));
                }
            }
            if found.is_none() {
                if let Some((c, y)) = mul(b).filter(|_| single(b, &role)) {
                    if c != y && single(c, &role) && c != a {
                        found = Some((c, TailKind::AddMul, y, a, b));
                    }
                }
            }
            // Otherwise a single-use op plus a single-use product: `c + y*z` or `y*z + c`.
            if found.is_none() && single(a, &role) {
                if let Some((y, z)) = mul(b).filter(|_| single(b, &role)) {
                    found = Some((a, TailKind::PlusProd, y, z, b));
                }
            }
            if found.is_none() && single(b, &role) {
                if let Some((y, z)) = mul(a).filter(|_| single(a, &role)) {
                    found = Some((b, TailKind::ProdPlus, y, z, a));
                }
            }
        }
        if let Some((core, tail, y, z, m)) = found {
            role[core] = Role::Absorbed;
            role[m] = Role::Absorbed;
            role[j] = Role::Fused { core, tail, y, z };
        }
    }

    // Step order is instruction order; the last step that reads each value.
    let step_reads = |i: usize| -> Vec<usize> {
        let core_reads = |c: usize| match instrs[c] {
            Instr::Unary(_, a) => vec![a.0],
            Instr::Binary(_, a, b) => vec![a.0, b.0],
            _ => vec![],
        };
        match role[i] {
            Role::Plain => core_reads(i),
            Role::Fused { core, y, z, .. } => {
                let mut r = core_reads(core);
                r.extend([y, z]);
                r
            }
            Role::Absorbed => vec![],
        }
    };
    let stepped: Vec<usize> = (0..n)
        .filter(|&i| matches!(vals[i], Val::Computed) && role[i] != Role::Absorbed)
        .collect();
    let mut last_read = vec![usize::MAX; n];
    for (s, &i) in stepped.iter().enumerate() {
        for r in step_reads(i) {
            last_read[r] = s;
        }
    }

    // Storage.
    let mut consts: Vec<T> = Vec::new();
    let mut regs = 0;
    let mut free: Vec<usize> = Vec::new();
    let mut alloc = |free: &mut Vec<usize>| {
        free.pop().unwrap_or_else(|| {
            regs += 1;
            regs - 1
        })
    };
    let mut at: Vec<Option<Src>> = vec![None; n];
    let mut loads = Vec::new();
    for i in 0..n {
        match vals[i] {
            Val::Const(c) if uses[i] > 0 => {
                at[i] = Some(Src::Const(consts.len()));
                consts.push(c);
            }
            Val::Input(k) if in_place => at[i] = Some(Src::In(k)),
            // A 16-bit input is widened into a register at the start of each block; those
            // registers are never reused (there are only as many as inputs).
            Val::Input(k) => {
                let r = alloc(&mut free);
                loads.push((k, r));
                at[i] = Some(Src::Reg(r));
            }
            _ => {}
        }
    }
    // The output each value is written to directly, if any: the first output that names it.
    let mut out_of: Vec<Option<usize>> = vec![None; n];
    if direct {
        for (k, (_, r)) in p.outputs().iter().enumerate() {
            if matches!(vals[r.0], Val::Computed) && out_of[r.0].is_none() {
                out_of[r.0] = Some(k);
            }
        }
    }
    let mut steps = Vec::with_capacity(stepped.len());
    for (s, &i) in stepped.iter().enumerate() {
        let src = |r: usize| at[r].expect("operands are stored before their readers");
        let core_of = |c: usize| match instrs[c] {
            Instr::Unary(op, a) => Core::Un(op, src(a.0)),
            Instr::Binary(op, a, b) => Core::Bin(op, src(a.0), src(b.0)),
            _ => unreachable!("only ops are computed"),
        };
        let (core, tail) = match role[i] {
            Role::Fused { core, tail, y, z } => {
                let (y, z) = (src(y), src(z));
                let t = match tail {
                    TailKind::MulAdd => Tail::MulAdd(y, z),
                    TailKind::AddMul => Tail::AddMul(y, z),
                    TailKind::PlusProd => Tail::PlusProd(y, z),
                    TailKind::ProdPlus => Tail::ProdPlus(y, z),
                };
                (core_of(core), t)
            }
            _ => (core_of(i), Tail::None),
        };
        // The destination is taken before the operands' registers are freed, so a step never
        // writes a register it reads (the loops hold both as separate slices).
        let dst = match out_of[i] {
            Some(k) => Dst::Out(k),
            None => Dst::Reg(alloc(&mut free)),
        };
        at[i] = Some(match dst {
            Dst::Out(k) => Src::Out(k),
            Dst::Reg(r) => Src::Reg(r),
        });
        for r in step_reads(i) {
            if last_read[r] == s && !is_out[r] {
                if let Some(Src::Reg(x)) = at[r] {
                    if !loads.iter().any(|&(_, l)| l == x) && !free.contains(&x) {
                        free.push(x);
                    }
                }
            }
        }
        steps.push(Step { core, tail, dst });
    }
    let outs = p
        .outputs()
        .iter()
        .enumerate()
        .map(|(k, (_, r))| {
            if out_of[r.0] == Some(k) {
                OutFrom::Written
            } else {
                OutFrom::Copy(at[r.0].expect("outputs are stored"))
            }
        })
        .collect();
    Plan {
        in_place,
        loads,
        steps,
        consts,
        regs,
        outs,
    }
}

/// The block's storage, as raw pointers because one step writes one of these buffers while
/// reading others, and which is which is only known from the plan.
struct Mem<'a, T> {
    /// The inputs in the compute type (in-place plans), over the whole range.
    ins: &'a [&'a [T]],
    /// `regs × BLOCK` scratch elements (initialised).
    regs: *mut T,
    /// The outputs' ranges (direct plans).
    outs: &'a [*mut MaybeUninit<T>],
    /// `consts × BLOCK` elements, each constant repeated.
    consts: &'a [T],
    /// The block's offset in the inputs and in the output ranges.
    at: usize,
    pos: usize,
    /// Elements in this block (at most [`BLOCK`]).
    len: usize,
}

impl<T: Float> Mem<'_, T> {
    /// The block of `s`.
    ///
    /// # Safety
    /// `s` is a register inside the scratch or an output whose block a step has written, and no
    /// `&mut` to the same block is alive.
    #[inline(always)]
    unsafe fn src(&self, s: Src) -> &[T] {
        match s {
            Src::In(k) => &self.ins[k][self.at..self.at + self.len],
            Src::Const(c) => &self.consts[c * BLOCK..c * BLOCK + self.len],
            // SAFETY: the register is in the scratch and initialised (zeroed at allocation);
            // the caller rules out a live `&mut` to it.
            Src::Reg(r) => unsafe { std::slice::from_raw_parts(self.regs.add(r * BLOCK), self.len) },
            // SAFETY: the output range holds `pos + len` elements, and the caller guarantees the
            // step writing this block of it ran, so they are initialised.
            Src::Out(k) => unsafe { std::slice::from_raw_parts(self.outs[k].add(self.pos) as *const T, self.len) },
        }
    }

    /// The block `d` for writing.
    ///
    /// # Safety
    /// No other reference to the same block is alive (the plan never gives a step its own
    /// destination as an operand). The slice is only written with initialised values.
    #[inline(always)]
    #[allow(clippy::mut_from_ref)]
    unsafe fn dst(&self, d: Dst) -> &mut [MaybeUninit<T>] {
        match d {
            // SAFETY: in bounds of the scratch; exclusive per the caller.
            Dst::Reg(r) => unsafe { std::slice::from_raw_parts_mut(self.regs.add(r * BLOCK) as *mut MaybeUninit<T>, self.len) },
            // SAFETY: `pos + len` is within the output range; exclusive per the caller.
            Dst::Out(k) => unsafe { std::slice::from_raw_parts_mut(self.outs[k].add(self.pos), self.len) },
        }
    }
}

/// A tail applied to the core op's value at element `i`.
trait TailOp<T>: Copy {
    fn apply(self, c: T, i: usize) -> T;
}
#[derive(Clone, Copy)]
struct NoTail;
impl<T> TailOp<T> for NoTail {
    #[inline(always)]
    fn apply(self, c: T, _: usize) -> T {
        c
    }
}
macro_rules! tail_op {
    ($name:ident, |$c:ident, $y:ident, $z:ident| $e:expr) => {
        #[derive(Clone, Copy)]
        struct $name<'a, T>(&'a [T], &'a [T]);
        impl<T: Float> TailOp<T> for $name<'_, T> {
            #[inline(always)]
            fn apply(self, $c: T, i: usize) -> T {
                let ($y, $z) = (self.0[i], self.1[i]);
                $e
            }
        }
    };
}
tail_op!(MulAddT, |c, y, z| c * y + z);
tail_op!(AddMulT, |c, y, z| z + c * y);
tail_op!(PlusProdT, |c, y, z| c + y * z);
tail_op!(ProdPlusT, |c, y, z| y * z + c);

/// A unary core and tail over one block.
struct UnLoop<'a, T, P> {
    a: &'a [T],
    d: &'a mut [MaybeUninit<T>],
    tail: P,
}
impl<T: Float, P: TailOp<T>> UnaryKernel<T> for UnLoop<'_, T, P> {
    type Out = ();
    #[inline(always)]
    fn run(self, f: impl Fn(T) -> T + Sync + Copy) {
        let (a, d, t) = (self.a, self.d, self.tail);
        let n = d.len().min(a.len());
        for i in 0..n {
            d[i].write(t.apply(f(a[i]), i));
        }
    }
}

/// A binary core and tail over one block.
struct BinLoop<'a, T, P> {
    a: &'a [T],
    b: &'a [T],
    d: &'a mut [MaybeUninit<T>],
    tail: P,
}
impl<T: Float, P: TailOp<T>> BinaryKernel<T> for BinLoop<'_, T, P> {
    type Out = ();
    #[inline(always)]
    fn run(self, f: impl Fn(T, T) -> T + Sync + Copy) {
        let (a, b, d, t) = (self.a, self.b, self.d, self.tail);
        let n = d.len().min(a.len()).min(b.len());
        for i in 0..n {
            d[i].write(t.apply(f(a[i], b[i]), i));
        }
    }
}

/// One step's core with tail `t`.
///
/// # Safety
/// As [`Mem::src`] and [`Mem::dst`]: the plan's operands and destination are distinct blocks.
#[inline(always)]
unsafe fn core_with<T: Float, P: TailOp<T>>(m: &Mem<'_, T>, s: &Step, tail: P) {
    // SAFETY: per the caller, `s.dst` is not among the step's operands.
    unsafe {
        let d = m.dst(s.dst);
        match s.core {
            Core::Un(op, a) => with_unary(op, UnLoop { a: m.src(a), d, tail }),
            Core::Bin(op, a, b) => with_binary(
                op,
                BinLoop {
                    a: m.src(a),
                    b: m.src(b),
                    d,
                    tail,
                },
            ),
        }
    }
}

/// Runs the steps over one block.
#[inline(always)]
fn exec_steps<T: Float>(steps: &[Step], m: &Mem<'_, T>) {
    for s in steps {
        // Tail operands are sliced to the block length first, so the loops index in bounds.
        // SAFETY: `plan` never makes a step's destination one of its operands or tail operands
        // (the destination is allocated before the operands' registers are freed, and an output
        // is written by exactly one step), and every `Src::Out` read follows that output's write.
        unsafe {
            match s.tail {
                Tail::None => core_with(m, s, NoTail),
                Tail::MulAdd(y, z) => core_with(m, s, MulAddT(m.src(y), m.src(z))),
                Tail::AddMul(y, z) => core_with(m, s, AddMulT(m.src(y), m.src(z))),
                Tail::PlusProd(y, z) => core_with(m, s, PlusProdT(m.src(y), m.src(z))),
                Tail::ProdPlus(y, z) => core_with(m, s, ProdPlusT(m.src(y), m.src(z))),
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{exec_steps, Mem, Step};
    use crate::Float;

    /// Whether the AVX2 copy of the step loops can run here (checked once, cached by std).
    pub(super) fn has_avx2() -> bool {
        is_x86_feature_detected!("avx2")
    }

    /// [`exec_steps`] compiled with AVX2 (everything below it is `inline(always)`).
    ///
    /// # Safety
    /// The CPU supports AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn exec_steps_avx2<T: Float>(steps: &[Step], m: &Mem<'_, T>) {
        exec_steps(steps, m)
    }
}

/// Runs the steps over one block, with the AVX2 loops where the CPU has AVX2.
fn exec<T: Float>(steps: &[Step], m: &Mem<'_, T>, avx2: bool) {
    #[cfg(target_arch = "x86_64")]
    if avx2 {
        // SAFETY: `avx2` comes from `x86::has_avx2()`.
        return unsafe { x86::exec_steps_avx2(steps, m) };
    }
    let _ = avx2;
    exec_steps(steps, m)
}

/// Runs the program over elements `start..start + outs[k].len()`, writing every slot of every
/// output range.
fn run_range<S: Compute>(plan: &Plan<S::C>, inputs: &[&[S]], start: usize, outs: &mut [&mut [MaybeUninit<S>]], direct: bool) {
    let total = outs.first().map_or(0, |o| o.len());
    // Raw pointers to the output ranges: steps write some of them while reading others.
    let outs_base: Vec<*mut MaybeUninit<S>> = outs.iter_mut().map(|o| o.as_mut_ptr()).collect();
    #[cfg(target_arch = "x86_64")]
    let avx2 = x86::has_avx2();
    #[cfg(not(target_arch = "x86_64"))]
    let avx2 = false;
    let mut scratch = vec![S::C::zero(); plan.regs * BLOCK];
    let consts: Vec<S::C> = plan.consts.iter().flat_map(|&c| std::iter::repeat_n(c, BLOCK)).collect();
    let ins: Vec<&[S::C]> = if plan.in_place {
        inputs
            .iter()
            .map(|x| S::as_compute(x).expect("in-place plans only for compute-type inputs"))
            .collect()
    } else {
        Vec::new()
    };
    let out_ptrs: Vec<*mut MaybeUninit<S::C>> = if direct {
        // `direct` means the output dtype is the compute type (`as_compute` is the identity), so
        // these are the same buffers viewed as `S::C`.
        assert_eq!(std::mem::size_of::<S>(), std::mem::size_of::<S::C>());
        outs_base.iter().map(|&o| o.cast::<MaybeUninit<S::C>>()).collect()
    } else {
        Vec::new()
    };
    let mut pos = 0;
    while pos < total {
        let len = BLOCK.min(total - pos);
        let at = start + pos;
        for &(k, r) in &plan.loads {
            S::up_slice(&inputs[k][at..at + len], &mut scratch[r * BLOCK..r * BLOCK + len]);
        }
        let m = Mem {
            ins: &ins,
            regs: scratch.as_mut_ptr(),
            outs: &out_ptrs,
            consts: &consts,
            at,
            pos,
            len,
        };
        exec(&plan.steps, &m, avx2);
        for (k, from) in plan.outs.iter().enumerate() {
            let OutFrom::Copy(s) = *from else { continue };
            // SAFETY: a copied output's source is an input, a constant, a register, or another
            // output whose block the steps wrote; nothing writes it while this runs.
            let v = unsafe { m.src(s) };
            // SAFETY: output `k` is not written by any step (it is copied), so this is the only
            // access to its range.
            let o = unsafe { std::slice::from_raw_parts_mut(outs_base[k].add(pos), len) };
            for (d, &x) in o.iter_mut().zip(v) {
                d.write(S::down(x));
            }
        }
        pos += len;
    }
}

/// The program over typed contiguous inputs of equal length `n`.
fn run_typed<S: Compute>(p: &Program, inputs: &[&[S]], n: usize) -> AResult<Vec<Vec<S>>> {
    let in_place = inputs.iter().all(|x| S::as_compute(x).is_some());
    // Whether the output dtype is the compute type (f32, f64), so steps can write outputs
    // directly: probed on an empty slice.
    let direct = S::as_compute(&[]).is_some();
    let plan = plan::<S::C>(p, in_place, direct);
    let mut bufs: Vec<Vec<S>> = (0..p.outputs().len()).map(|_| pool::take(n)).collect::<AResult<_>>()?;
    {
        // `take` guarantees capacity >= n; the slices check it again before `set_len` relies on it.
        let mut spares: Vec<&mut [MaybeUninit<S>]> = bufs.iter_mut().map(|v| &mut v.spare_capacity_mut()[..n]).collect();
        match task_range(n) {
            Some(range) => task_chunks(spares, n, range)
                .into_par_iter()
                .enumerate()
                .for_each(|(t, mut outs)| run_range(&plan, inputs, t * range, &mut outs, direct)),
            None => run_range(&plan, inputs, 0, &mut spares, direct),
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

// ---- Native evaluation of a `Kernel` (see the module docs) ----

/// Elements per value in native evaluation: one AVX register of f32 (two SSE registers).
const LANES: usize = 8;

/// [`Ops`] over `LANES` elements of the compute type, with the unfused ops' per-element
/// functions.
struct LaneOps<T>(std::marker::PhantomData<T>);

/// A unary op over the lanes.
struct Lanes1<T>([T; LANES]);
impl<T: Float> UnaryKernel<T> for Lanes1<T> {
    type Out = [T; LANES];
    #[inline(always)]
    fn run(self, f: impl Fn(T) -> T + Sync + Copy) -> [T; LANES] {
        let mut o = self.0;
        for v in &mut o {
            *v = f(*v);
        }
        o
    }
}

/// A binary op over the lanes.
struct Lanes2<T>([T; LANES], [T; LANES]);
impl<T: Float> BinaryKernel<T> for Lanes2<T> {
    type Out = [T; LANES];
    #[inline(always)]
    fn run(self, f: impl Fn(T, T) -> T + Sync + Copy) -> [T; LANES] {
        let mut o = self.0;
        for (v, &y) in o.iter_mut().zip(&self.1) {
            *v = f(*v, y);
        }
        o
    }
}

impl<T: Float> Ops for LaneOps<T> {
    type V = [T; LANES];
    #[inline(always)]
    fn scalar(&mut self, v: f64) -> [T; LANES] {
        [T::from_f64(v); LANES]
    }
    #[inline(always)]
    fn unary(&mut self, op: UnaryOp, a: [T; LANES]) -> [T; LANES] {
        with_unary(op, Lanes1(a))
    }
    #[inline(always)]
    fn binary(&mut self, op: BinaryOp, a: [T; LANES], b: [T; LANES]) -> [T; LANES] {
        with_binary(op, Lanes2(a, b))
    }
}

/// Where [`kernel_range`] reads its inputs and writes its outputs, `LANES` elements at a time.
trait LaneIo<S: Compute> {
    /// Input `j`'s elements `at..at + len` (`len <= LANES`), widened; the rest of the lanes zero.
    fn load(&self, j: usize, at: usize, len: usize) -> [S::C; LANES];
    /// Writes the first `len` lanes of `y` to output `j`'s elements `at..at + len`.
    fn store(&mut self, j: usize, at: usize, len: usize, y: &[S::C; LANES]);
}

#[inline(always)]
fn widen<S: Compute>(src: &[S]) -> [S::C; LANES] {
    let mut v = [S::C::zero(); LANES];
    for (d, &s) in v.iter_mut().zip(src) {
        *d = s.up();
    }
    v
}

/// Inputs read at `start..`, outputs written to fresh buffers covering that range.
struct FreshIo<'a, 'b, S, const I: usize> {
    ins: &'a [&'a [S]; I],
    start: usize,
    outs: &'a mut [&'b mut [MaybeUninit<S>]],
}

impl<S: Compute, const I: usize> LaneIo<S> for FreshIo<'_, '_, S, I> {
    #[inline(always)]
    fn load(&self, j: usize, at: usize, len: usize) -> [S::C; LANES] {
        widen(&self.ins[j][self.start + at..self.start + at + len])
    }
    #[inline(always)]
    fn store(&mut self, j: usize, at: usize, len: usize, y: &[S::C; LANES]) {
        for (d, &v) in self.outs[j][at..at + len].iter_mut().zip(y) {
            d.write(S::down(v));
        }
    }
}

/// Output `j` written over input `j` for the first `O` inputs, the `targets` (each lane is read
/// before it is written); the other inputs, `rest`, read at `start..`.
struct AssignIo<'a, 'b, S, const O: usize> {
    targets: &'a mut [&'b mut [S]],
    rest: &'a [&'a [S]],
    start: usize,
}

impl<S: Compute, const O: usize> LaneIo<S> for AssignIo<'_, '_, S, O> {
    #[inline(always)]
    fn load(&self, j: usize, at: usize, len: usize) -> [S::C; LANES] {
        if j < O {
            widen(&self.targets[j][at..at + len])
        } else {
            widen(&self.rest[j - O][self.start + at..self.start + at + len])
        }
    }
    #[inline(always)]
    fn store(&mut self, j: usize, at: usize, len: usize, y: &[S::C; LANES]) {
        for (d, &v) in self.targets[j][at..at + len].iter_mut().zip(y) {
            *d = S::down(v);
        }
    }
}

/// Evaluates `k` over `n` elements of `io`, `LANES` at a time (the last, partial group padded
/// with zeros, whose results are dropped).
#[inline(always)]
fn kernel_range<S: Compute, K: Kernel<I, O>, Io: LaneIo<S>, const I: usize, const O: usize>(k: &K, io: &mut Io, n: usize) {
    let mut ops = LaneOps::<S::C>(std::marker::PhantomData);
    let mut i = 0;
    while i + LANES <= n {
        kernel_group(k, &mut ops, io, i, LANES);
        i += LANES;
    }
    if i < n {
        kernel_group(k, &mut ops, io, i, n - i);
    }
}

/// One group of [`kernel_range`]: elements `at..at + len`. A function rather than a closure so
/// that it is inlined into the AVX2 copy (a closure was not, and ran scalar through `memcpy`).
#[inline(always)]
fn kernel_group<S: Compute, K: Kernel<I, O>, Io: LaneIo<S>, const I: usize, const O: usize>(
    k: &K,
    ops: &mut LaneOps<S::C>,
    io: &mut Io,
    at: usize,
    len: usize,
) {
    // A plain loop over the constant `I` unrolls fully; `array::from_fn`'s closure was not
    // always inlined, and then each lane group went through calls and `memcpy`.
    let mut x = [[S::C::zero(); LANES]; I];
    for (j, xj) in x.iter_mut().enumerate() {
        *xj = io.load(j, at, len);
    }
    let y = k.eval(ops, x);
    for (j, y) in y.iter().enumerate() {
        io.store(j, at, len, y);
    }
}

/// [`kernel_range`] compiled with AVX2.
///
/// # Safety
/// The CPU supports AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn kernel_range_avx2<S: Compute, K: Kernel<I, O>, Io: LaneIo<S>, const I: usize, const O: usize>(k: &K, io: &mut Io, n: usize) {
    kernel_range(k, io, n)
}

/// [`kernel_range`] with the AVX2 loop where the CPU has AVX2.
fn kernel_range_best<S: Compute, K: Kernel<I, O>, Io: LaneIo<S>, const I: usize, const O: usize>(k: &K, io: &mut Io, n: usize) {
    #[cfg(target_arch = "x86_64")]
    if x86::has_avx2() {
        // SAFETY: just checked.
        return unsafe { kernel_range_avx2(k, io, n) };
    }
    kernel_range(k, io, n)
}

/// The length of each task's range when `n` elements are split over rayon's threads, or `None`
/// when the work is too small to split.
fn task_range(n: usize) -> Option<usize> {
    let threads = rayon::current_num_threads();
    (n >= PAR_THRESHOLD && threads > 1).then(|| n.div_ceil(threads * 4).max(PAR_THRESHOLD / 4))
}

/// Splits each buffer of `bufs` into runs of `range` elements and groups the `t`-th run of
/// every buffer into task `t`.
fn task_chunks<T>(bufs: Vec<&mut [T]>, n: usize, range: usize) -> Vec<Vec<&mut [T]>> {
    let mut tasks: Vec<Vec<&mut [T]>> = (0..n.div_ceil(range)).map(|_| Vec::new()).collect();
    for s in bufs {
        for (t, c) in s.chunks_mut(range).enumerate() {
            tasks[t].push(c);
        }
    }
    tasks
}

/// `k` over typed contiguous inputs of equal length `n`.
fn kernel_typed<S: Compute, K: Kernel<I, O>, const I: usize, const O: usize>(k: &K, ins: &[&[S]; I], n: usize) -> AResult<Vec<Vec<S>>> {
    let mut bufs: Vec<Vec<S>> = (0..O).map(|_| pool::take(n)).collect::<AResult<_>>()?;
    {
        // `take` guarantees capacity >= n; the slices check it again before `set_len` relies on it.
        let spares: Vec<&mut [MaybeUninit<S>]> = bufs.iter_mut().map(|v| &mut v.spare_capacity_mut()[..n]).collect();
        match task_range(n) {
            Some(range) => task_chunks(spares, n, range).into_par_iter().enumerate().for_each(|(t, mut outs)| {
                let len = outs.first().map_or(0, |o| o.len());
                kernel_range_best(
                    k,
                    &mut FreshIo {
                        ins,
                        start: t * range,
                        outs: &mut outs,
                    },
                    len,
                )
            }),
            None => {
                let mut outs = spares;
                kernel_range_best(
                    k,
                    &mut FreshIo {
                        ins,
                        start: 0,
                        outs: &mut outs,
                    },
                    n,
                )
            }
        }
    }
    for v in &mut bufs {
        // SAFETY: the capacity is at least `n` (the `[..n]` slices above would have failed
        // otherwise), and `kernel_range` wrote every slot of the output ranges, which cover 0..n.
        unsafe { v.set_len(n) };
    }
    Ok(bufs)
}

/// `k` over typed contiguous buffers of equal length `n`, output `j` written over `targets[j]`
/// (`O` of them).
fn kernel_assign_typed<S: Compute, K: Kernel<I, O>, const I: usize, const O: usize>(
    k: &K,
    targets: Vec<&mut [S]>,
    rest: &[&[S]],
    n: usize,
) {
    match task_range(n) {
        Some(range) => task_chunks(targets, n, range)
            .into_par_iter()
            .enumerate()
            .for_each(|(t, mut chunk)| {
                let len = chunk.first().map_or(0, |c| c.len());
                let mut io = AssignIo::<S, O> {
                    targets: &mut chunk,
                    rest,
                    start: t * range,
                };
                kernel_range_best(k, &mut io, len)
            }),
        None => {
            let mut targets = targets;
            let mut io = AssignIo::<S, O> {
                targets: &mut targets,
                rest,
                start: 0,
            };
            kernel_range_best(k, &mut io, n)
        }
    }
}

impl CpuStorage {
    /// Evaluates `k` natively over contiguous buffers of one float dtype and one length (the
    /// caller checked dtypes and lengths), one new buffer per output.
    pub(crate) fn fused_kernel<K: Kernel<I, O>, const I: usize, const O: usize>(
        inputs: [&CpuStorage; I],
        k: &K,
    ) -> Result<[CpuStorage; O]> {
        const OP: &str = "fused_kernel";
        fn typed<S: Compute, K: Kernel<I, O>, const I: usize, const O: usize>(
            inputs: &[&CpuStorage; I],
            k: &K,
        ) -> Option<AResult<[CpuStorage; O]>> {
            let xs: [&[S]; I] = inputs.iter().map(|s| S::slice(s)).collect::<Option<Vec<&[S]>>>()?.try_into().ok()?;
            let n = xs.first().map_or(0, |x| x.len());
            if xs.iter().any(|x| x.len() != n) {
                return None;
            }
            Some(kernel_typed(k, &xs, n).map(|v| {
                let mut it = v.into_iter().map(S::wrap);
                std::array::from_fn(|_| it.next().expect("one buffer per output"))
            }))
        }
        let Some(first) = inputs.first() else {
            return Err(Error::value(OP, "no inputs"));
        };
        let r = match first {
            CpuStorage::F32(_) => typed::<f32, K, I, O>(&inputs, k),
            CpuStorage::F64(_) => typed::<f64, K, I, O>(&inputs, k),
            CpuStorage::F16(_) => typed::<half::f16, K, I, O>(&inputs, k),
            CpuStorage::BF16(_) => typed::<half::bf16, K, I, O>(&inputs, k),
            _ => None,
        };
        r.ok_or(Error::DType {
            op: OP,
            expected: "buffers of one float dtype and one length",
            got: first.dtype(),
        })?
        .map_err(|e| e.at(OP))
    }
    /// Evaluates `k` natively with output `j` written over `targets[j]`, which is also input
    /// `j`; `rest` are inputs `O..I`. Every buffer holds one float dtype and one length, and
    /// `O + rest.len() == I` (the caller checked all three; a mismatch is an error here, before
    /// anything is written).
    pub(crate) fn fused_kernel_assign<K: Kernel<I, O>, const I: usize, const O: usize>(
        targets: [&mut CpuStorage; O],
        rest: &[&CpuStorage],
        k: &K,
    ) -> Result<()> {
        const OP: &str = "fused_kernel_assign";
        fn typed<S: Compute, K: Kernel<I, O>, const I: usize, const O: usize>(
            targets: [&mut CpuStorage; O],
            rest: &[&CpuStorage],
            k: &K,
        ) -> Option<()> {
            let rest: Vec<&[S]> = rest.iter().map(|s| S::slice(s)).collect::<Option<_>>()?;
            let targets: Vec<&mut [S]> = targets.into_iter().map(S::slice_mut).collect::<Option<_>>()?;
            let n = targets.first()?.len();
            if O + rest.len() != I || targets.iter().any(|t| t.len() != n) || rest.iter().any(|r| r.len() != n) {
                return None;
            }
            kernel_assign_typed(k, targets, &rest, n);
            Some(())
        }
        let dtype = targets.first().map(|t| t.dtype());
        let done = match dtype {
            Some(crate::DType::F32) => typed::<f32, K, I, O>(targets, rest, k),
            Some(crate::DType::F64) => typed::<f64, K, I, O>(targets, rest, k),
            Some(crate::DType::F16) => typed::<half::f16, K, I, O>(targets, rest, k),
            Some(crate::DType::BF16) => typed::<half::bf16, K, I, O>(targets, rest, k),
            _ => None,
        };
        done.ok_or_else(|| {
            Error::value(
                OP,
                format!(
                    "expected {O} targets and {} other inputs of one float dtype and one length ({dtype:?} first)",
                    I.saturating_sub(O)
                ),
            )
        })
    }
}
