//! Fused elementwise programs: a short straight-line sequence of unary and binary ops over
//! same-shaped float tensors, run by [`Tensor::fused_elementwise`](crate::Tensor::fused_elementwise)
//! in one pass over memory instead of one pass per op.
//!
//! This is how an optimiser's update (Adam's eight elementwise steps, say) is written outside the
//! core: the caller builds a [`Program`] once per step and the backend interprets it, so the
//! algorithm lives with the optimiser and a backend only has to implement the interpreter.
//!
//! Code that runs the same update often writes it as a [`Kernel`] instead: one generic function
//! over [`Ops`], which records the program (its meaning, and what other backends run) and which
//! the CPU backend also compiles into a single native loop, as fast as a hand-written kernel
//! (see [`Tensor::fused_kernel`](crate::Tensor::fused_kernel)). kiln-nn's Adam is such a kernel.
//!
//! ```
//! use kiln_core::backend::{BinaryOp, UnaryOp};
//! use kiln_core::fused::Program;
//! use kiln_core::Tensor;
//!
//! // y = sqrt(a) * 2 + b
//! let mut p = Program::new();
//! let (a, b) = (p.input(0), p.input(1));
//! let r = p.unary(UnaryOp::Sqrt, a);
//! let two = p.scalar(2.0);
//! let r = p.binary(BinaryOp::Mul, r, two);
//! let r = p.binary(BinaryOp::Add, r, b);
//! p.output("y", r);
//! let a = Tensor::from_slice(&[4.0f64, 9.0], [2]).unwrap();
//! let b = Tensor::from_slice(&[1.0f64, 1.0], [2]).unwrap();
//! let y = Tensor::fused_elementwise(&[&a, &b], &p).unwrap();
//! assert_eq!(y[0].to_vec::<f64>().unwrap(), vec![5.0, 7.0]);
//! ```

use crate::backend::{BinaryOp, UnaryOp};
use crate::{Error, Result};

/// A register of a [`Program`]: the value computed by one of its instructions. Registers are
/// handed out by the program's builder methods and are only meaningful in that program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Reg(pub(crate) usize);

impl Reg {
    /// The index of the instruction that computes this register.
    pub fn index(self) -> usize {
        self.0
    }
}

/// One instruction; instruction `i` defines register `Reg(i)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Instr {
    /// The elements of input tensor `i`.
    Input(usize),
    /// A constant, converted to the computation's type (see
    /// [`Tensor::fused_elementwise`](crate::Tensor::fused_elementwise)) and broadcast.
    Scalar(f64),
    /// A unary op of an earlier register, with the same per-element arithmetic as the
    /// tensor's unary ops.
    Unary(UnaryOp, Reg),
    /// A binary op of two earlier registers, with the same per-element arithmetic as the
    /// tensor's binary ops.
    Binary(BinaryOp, Reg, Reg),
}

/// A straight-line elementwise program: instructions in order (each may only read registers
/// defined before it) and named outputs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Program {
    instrs: Vec<Instr>,
    outputs: Vec<(String, Reg)>,
}

impl Program {
    /// An empty program.
    pub fn new() -> Program {
        Program::default()
    }
    fn push(&mut self, i: Instr) -> Reg {
        self.instrs.push(i);
        Reg(self.instrs.len() - 1)
    }
    /// The elements of input `i` (the `i`-th tensor passed to `fused_elementwise`).
    pub fn input(&mut self, i: usize) -> Reg {
        self.push(Instr::Input(i))
    }
    /// A constant broadcast to every element.
    pub fn scalar(&mut self, v: f64) -> Reg {
        self.push(Instr::Scalar(v))
    }
    /// `op(a)`.
    pub fn unary(&mut self, op: UnaryOp, a: Reg) -> Reg {
        self.push(Instr::Unary(op, a))
    }
    /// `op(a, b)`.
    pub fn binary(&mut self, op: BinaryOp, a: Reg, b: Reg) -> Reg {
        self.push(Instr::Binary(op, a, b))
    }
    /// Declares `r` as the next output, named `name` (used in errors and by the caller to
    /// keep track of which result is which). Outputs are returned in declaration order.
    pub fn output(&mut self, name: &str, r: Reg) {
        self.outputs.push((name.to_string(), r));
    }
    /// The instructions in order.
    pub fn instrs(&self) -> &[Instr] {
        &self.instrs
    }
    /// The outputs' names and registers, in order.
    pub fn outputs(&self) -> &[(String, Reg)] {
        &self.outputs
    }
    /// How many inputs the program reads: one more than the largest input index, 0 for none.
    pub fn num_inputs(&self) -> usize {
        self.instrs
            .iter()
            .filter_map(|i| match i {
                Instr::Input(k) => Some(k + 1),
                _ => None,
            })
            .max()
            .unwrap_or(0)
    }
    /// Checks that every register is read only after it is defined (which also rejects a
    /// register from another, longer program) and that there is at least one output.
    pub fn validate(&self, op: &'static str) -> Result<()> {
        let bad = |i: usize, r: Reg| Error::value(op, format!("instruction {i} reads register {} that is not defined before it", r.0));
        for (i, ins) in self.instrs.iter().enumerate() {
            match *ins {
                Instr::Unary(_, a) if a.0 >= i => return Err(bad(i, a)),
                Instr::Binary(_, a, b) if a.0 >= i || b.0 >= i => return Err(bad(i, if a.0 >= i { a } else { b })),
                _ => {}
            }
        }
        if self.outputs.is_empty() {
            return Err(Error::value(op, "the program has no outputs"));
        }
        for (name, r) in &self.outputs {
            if r.0 >= self.instrs.len() {
                return Err(Error::value(
                    op,
                    format!(
                        "output `{name}` is register {} but the program has {} instructions",
                        r.0,
                        self.instrs.len()
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// The operations a fused [`Kernel`] is written against. A kernel's arithmetic is one generic
/// function over `Ops`, so it is written once and run two ways: recorded as a [`Program`] (the
/// portable form any backend can interpret or compile; `Program` implements `Ops`), or evaluated
/// natively, where the CPU backend instantiates it over vectors of lanes so the whole kernel
/// compiles to one loop with every intermediate in registers.
pub trait Ops {
    /// A value: a register when recording, a vector of elements when evaluating.
    type V: Copy;
    /// A constant, converted to the computation's type as [`Instr::Scalar`] is.
    fn scalar(&mut self, v: f64) -> Self::V;
    /// `op(a)`, with the same per-element arithmetic as the tensor's unary op.
    fn unary(&mut self, op: UnaryOp, a: Self::V) -> Self::V;
    /// `op(a, b)`, with the same per-element arithmetic as the tensor's binary op.
    fn binary(&mut self, op: BinaryOp, a: Self::V, b: Self::V) -> Self::V;
}

impl Ops for Program {
    type V = Reg;
    fn scalar(&mut self, v: f64) -> Reg {
        Program::scalar(self, v)
    }
    fn unary(&mut self, op: UnaryOp, a: Reg) -> Reg {
        Program::unary(self, op, a)
    }
    fn binary(&mut self, op: BinaryOp, a: Reg, b: Reg) -> Reg {
        Program::binary(self, op, a, b)
    }
}

/// An elementwise kernel with `I` inputs and `O` outputs, written once as a generic function
/// over [`Ops`] and run by [`Tensor::fused_kernel`](crate::Tensor::fused_kernel).
///
/// Its meaning is [`Kernel::program`]: the kernel recorded as a [`Program`], so the results are
/// exactly those of [`Tensor::fused_elementwise`](crate::Tensor::fused_elementwise) on that
/// program (bit for bit). A backend may run the program, or evaluate the kernel natively, as the
/// CPU backend does; implementations should mark `eval` `#[inline]` so that native evaluation
/// can inline it into its loop.
///
/// ```
/// use kiln_core::backend::{BinaryOp, UnaryOp};
/// use kiln_core::fused::{Kernel, Ops};
/// use kiln_core::Tensor;
///
/// /// y = sqrt(a) * 2 + b
/// struct SqrtTwiceAdd;
/// impl Kernel<2, 1> for SqrtTwiceAdd {
///     fn outputs(&self) -> [&'static str; 1] {
///         ["y"]
///     }
///     #[inline]
///     fn eval<X: Ops>(&self, x: &mut X, [a, b]: [X::V; 2]) -> [X::V; 1] {
///         let r = x.unary(UnaryOp::Sqrt, a);
///         let two = x.scalar(2.0);
///         let r = x.binary(BinaryOp::Mul, r, two);
///         [x.binary(BinaryOp::Add, r, b)]
///     }
/// }
/// let a = Tensor::from_slice(&[4.0f32, 9.0], [2]).unwrap();
/// let b = Tensor::from_slice(&[1.0f32, 1.0], [2]).unwrap();
/// let [y] = Tensor::fused_kernel([&a, &b], &SqrtTwiceAdd).unwrap();
/// assert_eq!(y.to_vec::<f32>().unwrap(), vec![5.0, 7.0]);
/// ```
pub trait Kernel<const I: usize, const O: usize>: Sync {
    /// The outputs' names, in order (used in errors and by [`Kernel::program`]).
    fn outputs(&self) -> [&'static str; O];
    /// The kernel's arithmetic: the outputs computed from the inputs.
    fn eval<X: Ops>(&self, x: &mut X, inputs: [X::V; I]) -> [X::V; O];
    /// The kernel recorded as a program: inputs `0..I`, then the instructions `eval` issues, and
    /// the outputs named by [`Kernel::outputs`].
    fn program(&self) -> Program {
        let mut p = Program::new();
        let ins: [Reg; I] = std::array::from_fn(|i| p.input(i));
        let outs = self.eval(&mut p, ins);
        for (name, r) in self.outputs().iter().zip(outs) {
            p.output(name, r);
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DType, Rng, Tensor};

    /// A small deterministic generator for the program shapes (the tensors use [`Rng`]).
    struct Xs(u64);
    impl Xs {
        fn next(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }
    }

    const UNARY: [UnaryOp; 12] = [
        UnaryOp::Neg,
        UnaryOp::Abs,
        UnaryOp::Exp,
        UnaryOp::Log,
        UnaryOp::Sqrt,
        UnaryOp::Tanh,
        UnaryOp::Sigmoid,
        UnaryOp::Recip,
        UnaryOp::Square,
        UnaryOp::Sin,
        UnaryOp::Affine { mul: 0.3, add: -0.7 },
        UnaryOp::PowScalar(1.7),
    ];
    const BINARY: [BinaryOp; 9] = [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Maximum,
        BinaryOp::Minimum,
        BinaryOp::AddScaled(-0.37),
        BinaryOp::Atan2,
        BinaryOp::ReluGrad,
    ];

    /// A random program over `inputs` inputs: every input and a few constants, then `len` ops on
    /// random earlier registers, with three outputs (the last register, one middle register,
    /// and a constant-only expression, which the interpreter folds).
    fn random_program(seed: u64, inputs: usize, len: usize) -> Program {
        let mut x = Xs(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let mut p = Program::new();
        for i in 0..inputs {
            p.input(i);
        }
        let c1 = p.scalar(1.25);
        let c2 = p.scalar(-0.1);
        let folded = p.binary(BinaryOp::Mul, c1, c2);
        let folded = p.unary(UnaryOp::Exp, folded);
        for _ in 0..len {
            let n = p.instrs().len();
            let a = Reg(x.next(n));
            if x.next(2) == 0 {
                p.unary(UNARY[x.next(UNARY.len())], a);
            } else {
                let b = Reg(x.next(n));
                p.binary(BINARY[x.next(BINARY.len())], a, b);
            }
        }
        let n = p.instrs().len();
        p.output("last", Reg(n - 1));
        p.output("middle", Reg(n / 2));
        p.output("const", folded);
        p
    }

    /// The same program run one tensor op at a time (constants as 0-d tensors broadcast, as a
    /// scalar operand is).
    fn unfused(p: &Program, inputs: &[&Tensor]) -> Vec<Tensor> {
        let (dt, shape) = (inputs[0].dtype(), inputs[0].shape().clone());
        let mut regs: Vec<Tensor> = Vec::new();
        for ins in p.instrs() {
            let t = match *ins {
                Instr::Input(i) => inputs[i].clone(),
                Instr::Scalar(v) => Tensor::full(Vec::<usize>::new(), v, dt).unwrap(),
                Instr::Unary(op, a) => regs[a.0].unary_op(op).unwrap(),
                Instr::Binary(op, a, b) => regs[a.0].binary_op(&regs[b.0], op).unwrap(),
            };
            regs.push(t);
        }
        p.outputs()
            .iter()
            .map(|(_, r)| regs[r.0].broadcast_to(shape.clone()).unwrap().contiguous().unwrap())
            .collect()
    }

    fn bits(t: &Tensor) -> Vec<u64> {
        match t.dtype() {
            DType::F32 => t.to_vec::<f32>().unwrap().iter().map(|v| v.to_bits() as u64).collect(),
            DType::F64 => t.to_vec::<f64>().unwrap().iter().map(|v| v.to_bits()).collect(),
            d => panic!("{d:?}"),
        }
    }

    #[test]
    fn fused_programs_equal_the_unfused_ops_bit_for_bit() {
        // Odd lengths (a partial last chunk, one element, more than the parallel threshold) and
        // a transposed (non-contiguous) input.
        let shapes: [&[usize]; 6] = [&[1], &[7], &[1000], &[100003], &[300007], &[37, 29]];
        for dt in [DType::F32, DType::F64] {
            for (k, shape) in shapes.iter().enumerate() {
                let mut rng = Rng::new(17 + k as u64);
                let a = Tensor::rand(shape.to_vec(), -2.0, 2.0, dt, &mut rng).unwrap();
                let b = Tensor::rand(shape.to_vec(), 0.1, 3.0, dt, &mut rng).unwrap();
                let c = if shape.len() == 2 {
                    let r: Vec<usize> = shape.iter().rev().copied().collect();
                    let t = Tensor::rand(r, -1.0, 1.0, dt, &mut rng).unwrap().t().unwrap();
                    assert!(!t.is_contiguous());
                    t
                } else {
                    Tensor::rand(shape.to_vec(), -1.0, 1.0, dt, &mut rng).unwrap()
                };
                let seeds: &[u64] = if shape.iter().product::<usize>() > 200_000 {
                    &[1]
                } else {
                    &[1, 2, 3, 4]
                };
                for &seed in seeds {
                    let p = random_program(seed + 10 * k as u64, 3, 14);
                    let got = Tensor::fused_elementwise(&[&a, &b, &c], &p).unwrap();
                    let want = unfused(&p, &[&a, &b, &c]);
                    assert_eq!(got.len(), 3);
                    for ((g, w), (name, _)) in got.iter().zip(&want).zip(p.outputs()) {
                        assert_eq!(g.shape(), a.shape());
                        assert_eq!(g.dtype(), dt);
                        assert!(bits(g) == bits(w), "{dt:?} {shape:?} seed {seed}: output {name} differs\n{p:?}");
                    }
                }
            }
        }
    }

    /// A kernel that replays a program with three inputs (given first, as `random_program`
    /// gives them) and three outputs, so natively evaluated kernels can be checked against the
    /// interpreter on random programs.
    struct Replay<'a>(&'a Program);
    impl Kernel<3, 3> for Replay<'_> {
        fn outputs(&self) -> [&'static str; 3] {
            ["a", "b", "c"]
        }
        fn eval<X: Ops>(&self, x: &mut X, ins: [X::V; 3]) -> [X::V; 3] {
            let mut regs: Vec<X::V> = Vec::new();
            for ins_ in self.0.instrs() {
                let v = match *ins_ {
                    Instr::Input(i) => ins[i],
                    Instr::Scalar(v) => x.scalar(v),
                    Instr::Unary(op, a) => x.unary(op, regs[a.0]),
                    Instr::Binary(op, a, b) => x.binary(op, regs[a.0], regs[b.0]),
                };
                regs.push(v);
            }
            let o = self.0.outputs();
            [regs[o[0].1 .0], regs[o[1].1 .0], regs[o[2].1 .0]]
        }
    }

    #[test]
    fn native_kernels_equal_their_programs_bit_for_bit() {
        // Lengths around the 8-lane groups (a partial last group, one element) and past the
        // parallel threshold, and a transposed input.
        let shapes: [&[usize]; 6] = [&[1], &[8], &[13], &[1000], &[140001], &[37, 29]];
        for dt in [DType::F32, DType::F64, DType::F16, DType::BF16] {
            for (k, shape) in shapes.iter().enumerate() {
                let mut rng = Rng::new(40 + k as u64);
                let a = Tensor::rand(shape.to_vec(), -2.0, 2.0, dt, &mut rng).unwrap();
                let b = Tensor::rand(shape.to_vec(), 0.1, 3.0, dt, &mut rng).unwrap();
                let c = if shape.len() == 2 {
                    let r: Vec<usize> = shape.iter().rev().copied().collect();
                    Tensor::rand(r, -1.0, 1.0, dt, &mut rng).unwrap().t().unwrap()
                } else {
                    Tensor::rand(shape.to_vec(), -1.0, 1.0, dt, &mut rng).unwrap()
                };
                for seed in [1, 2, 3] {
                    let p = random_program(seed + 7 * k as u64, 3, 14);
                    let kernel = Replay(&p);
                    // Replaying records the same program.
                    assert_eq!(kernel.program(), {
                        let mut q = p.clone();
                        q.outputs.iter_mut().zip(["a", "b", "c"]).for_each(|(o, n)| o.0 = n.to_string());
                        q
                    });
                    let got = Tensor::fused_kernel([&a, &b, &c], &kernel).unwrap();
                    let want = Tensor::fused_elementwise(&[&a, &b, &c], &p).unwrap();
                    for (g, w) in got.iter().zip(&want) {
                        assert_eq!(g.shape(), a.shape());
                        assert_eq!(g.dtype(), dt);
                        let (g, w) = (g.to_vec_f64().unwrap(), w.to_vec_f64().unwrap());
                        assert!(
                            g.iter().zip(&w).all(|(x, y)| x.to_bits() == y.to_bits()),
                            "{dt:?} {shape:?} seed {seed}\n{p:?}"
                        );
                    }
                }
            }
        }
        // The shared input checks apply, naming this op.
        let x = Tensor::zeros([2], DType::F32).unwrap();
        let y = Tensor::zeros([3], DType::F32).unwrap();
        let p = random_program(1, 3, 4);
        let e = Tensor::fused_kernel([&x, &x, &y], &Replay(&p)).unwrap_err().to_string();
        assert!(e.contains("fused_kernel") && e.contains("[3]") && e.contains("[2]"), "{e}");
    }

    #[test]
    fn half_programs_run_in_f32_and_round_once() {
        let mut rng = Rng::new(5);
        let p = random_program(7, 2, 10);
        for dt in [DType::F16, DType::BF16] {
            let a = Tensor::rand([1001], -2.0, 2.0, dt, &mut rng).unwrap();
            let b = Tensor::rand([1001], 0.1, 3.0, dt, &mut rng).unwrap();
            let got = Tensor::fused_elementwise(&[&a, &b], &p).unwrap();
            let (wa, wb) = (a.to_dtype(DType::F32).unwrap(), b.to_dtype(DType::F32).unwrap());
            let wide = Tensor::fused_elementwise(&[&wa, &wb], &p).unwrap();
            for (g, w) in got.iter().zip(&wide) {
                assert_eq!(g.dtype(), dt);
                let w = w.to_dtype(dt).unwrap();
                let (g, w) = (g.to_vec_f64().unwrap(), w.to_vec_f64().unwrap());
                assert!(g.iter().zip(&w).all(|(x, y)| x.to_bits() == y.to_bits()), "{dt:?}");
            }
        }
    }

    #[test]
    fn fused_elementwise_errors_name_the_op_and_the_fault() {
        let mut p = Program::new();
        let (a, b) = (p.input(0), p.input(1));
        let s = p.binary(BinaryOp::Add, a, b);
        p.output("sum", s);
        let f = |s: &[usize], d| Tensor::zeros(s.to_vec(), d).unwrap();
        let msg = |r: crate::Result<Vec<Tensor>>| r.unwrap_err().to_string();

        let e = msg(Tensor::fused_elementwise(&[&f(&[2, 3], DType::F32), &f(&[3, 2], DType::F32)], &p));
        assert!(
            e.contains("fused_elementwise") && e.contains("[2, 3]") && e.contains("[3, 2]"),
            "{e}"
        );
        let e = msg(Tensor::fused_elementwise(&[&f(&[2], DType::F32), &f(&[2], DType::F64)], &p));
        assert!(e.contains("fused_elementwise") && e.contains("f32") && e.contains("f64"), "{e}");
        let e = msg(Tensor::fused_elementwise(&[&f(&[2], DType::I64), &f(&[2], DType::I64)], &p));
        assert!(e.contains("fused_elementwise") && e.contains("i64"), "{e}");
        let e = msg(Tensor::fused_elementwise(&[&f(&[2], DType::F32)], &p));
        assert!(e.contains("reads 2 inputs but 1 were given"), "{e}");
        let e = msg(Tensor::fused_elementwise(&[], &p));
        assert!(e.contains("no inputs"), "{e}");

        let x = f(&[2], DType::F64).requires_grad(true).unwrap();
        let e = msg(Tensor::fused_elementwise(&[&x, &x], &p));
        assert!(e.contains("requires grad"), "{e}");
        // Under no_grad nothing would be recorded, so it runs.
        let y = crate::no_grad(|| Tensor::fused_elementwise(&[&x, &x], &p)).unwrap();
        assert!(!y[0].requires_grad_flag());

        // A register used before it is defined (taken from a longer program).
        let mut q = Program::new();
        let a = q.input(0);
        q.output("bad", Reg(5));
        let e = msg(Tensor::fused_elementwise(&[&f(&[2], DType::F32)], &q));
        assert!(e.contains("output `bad` is register 5"), "{e}");
        let mut q = Program::new();
        q.input(0);
        let e = msg(Tensor::fused_elementwise(&[&f(&[2], DType::F32)], &q));
        assert!(e.contains("no outputs"), "{e}");
        let mut q = Program::new();
        q.unary(UnaryOp::Neg, Reg(0));
        q.output("x", a);
        let e = msg(Tensor::fused_elementwise(&[&f(&[2], DType::F32)], &q));
        assert!(e.contains("instruction 0 reads register 0"), "{e}");
    }
}
