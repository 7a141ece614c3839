//! `Tensor::fused_kernel_assign` and `Var::fused_update`: outputs written over the targets when
//! nothing else holds them, into new buffers otherwise, with the same bits either way and no
//! change visible through any other handle.

use kiln_core::backend::BinaryOp;
use kiln_core::fused::{Kernel, Ops};
use kiln_core::{no_grad, DType, Rng, Tensor, Var};

/// `a' = a·0.5 + b·c`, `b' = b - c`: two targets and one other input, with arithmetic whose
/// rounding makes any change of operands visible in the bits.
struct Mix;
impl Kernel<3, 2> for Mix {
    fn outputs(&self) -> [&'static str; 2] {
        ["a", "b"]
    }
    fn eval<X: Ops>(&self, x: &mut X, [a, b, c]: [X::V; 3]) -> [X::V; 2] {
        let half = x.scalar(0.5);
        let ah = x.binary(BinaryOp::Mul, a, half);
        let bc = x.binary(BinaryOp::Mul, b, c);
        [x.binary(BinaryOp::Add, ah, bc), x.binary(BinaryOp::Sub, b, c)]
    }
}

/// `p - 0.25·g`.
struct Descend;
impl Kernel<2, 1> for Descend {
    fn outputs(&self) -> [&'static str; 1] {
        ["param"]
    }
    fn eval<X: Ops>(&self, x: &mut X, [p, g]: [X::V; 2]) -> [X::V; 1] {
        [x.binary(BinaryOp::AddScaled(-0.25), p, g)]
    }
}

mod common;
use common::f64_bits as bits;

fn rand(shape: &[usize], dt: DType, seed: u64) -> Tensor {
    Tensor::rand(shape, -2.0, 2.0, dt, &mut Rng::new(seed)).unwrap()
}

/// The reference: the same kernel through `fused_kernel`, which always writes new buffers.
fn expected(a: &Tensor, b: &Tensor, c: &Tensor) -> [Vec<u64>; 2] {
    let [a2, b2] = Tensor::fused_kernel([a, b, c], &Mix).unwrap();
    [bits(&a2), bits(&b2)]
}

#[test]
fn unique_targets_are_written_in_place_with_the_same_bits() {
    for dt in [DType::F32, DType::F64, DType::F16, DType::BF16] {
        // 1, a prime, one full lane group plus a partial one, and one big enough to split over threads.
        for n in [1usize, 7, 13, 300_007] {
            let (mut a, mut b, c) = (rand(&[n], dt, 1), rand(&[n], dt, 2), rand(&[n], dt, 3));
            let want = expected(&a, &b, &c);
            let (pa, pb) = (a.data_ptr(), b.data_ptr());
            let ids = (a.id(), b.id());
            Tensor::fused_kernel_assign([&mut a, &mut b], &[&c], &Mix).unwrap();
            assert_eq!([bits(&a), bits(&b)], want, "{dt:?} n {n}");
            assert_eq!((a.data_ptr(), b.data_ptr()), (pa, pb), "{dt:?} n {n}: written in place");
            // Each target is a new leaf, as the tensor `fused_kernel` returns.
            assert!(a.id() != ids.0 && b.id() != ids.1);
            assert!(!a.requires_grad_flag() && a.is_leaf());
        }
    }
}

#[test]
fn the_split_over_two_threads_gives_the_serial_bits() {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    for n in [131_072usize, 300_007, 1 << 20] {
        let (mut a, mut b, c) = (rand(&[n], DType::F32, 4), rand(&[n], DType::F32, 5), rand(&[n], DType::F32, 6));
        let want = expected(&a, &b, &c);
        let pa = a.data_ptr();
        pool.install(|| Tensor::fused_kernel_assign([&mut a, &mut b], &[&c], &Mix)).unwrap();
        assert_eq!([bits(&a), bits(&b)], want, "n {n}");
        assert_eq!(a.data_ptr(), pa);
    }
}

#[test]
fn a_shared_target_gets_a_new_buffer_and_the_other_handles_keep_their_values() {
    let (a0, b0, c) = (
        rand(&[4, 5], DType::F32, 7),
        rand(&[4, 5], DType::F32, 8),
        rand(&[4, 5], DType::F32, 9),
    );
    let want = expected(&a0, &b0, &c);
    let (a_bits, b_bits) = (bits(&a0), bits(&b0));
    // A clone of the handle, a transposed view and a narrowed view: each shares `a`'s buffer,
    // so each must keep seeing the old values. (A graph holding a value is checked with `Var`
    // below.)
    let holders: [fn(&Tensor) -> Tensor; 3] = [|a| a.clone(), |a| a.t().unwrap(), |a| a.narrow(0, 1, 2).unwrap()];
    for (h, hold) in holders.iter().enumerate() {
        // Fresh buffers with a0's and b0's values (same seeds), held by nothing else.
        let (mut a, mut b) = (rand(&[4, 5], DType::F32, 7), rand(&[4, 5], DType::F32, 8));
        let held = hold(&a);
        let held_bits = bits(&held);
        let (pa, pb) = (a.data_ptr(), b.data_ptr());
        Tensor::fused_kernel_assign([&mut a, &mut b], &[&c], &Mix).unwrap();
        assert_eq!([bits(&a), bits(&b)], want, "holder {h}");
        assert_ne!(a.data_ptr(), pa, "holder {h}: a new buffer");
        assert_ne!(b.data_ptr(), pb, "holder {h}: all targets go to new buffers together");
        assert_eq!(bits(&held), held_bits, "holder {h}: the holder's values are unchanged");
    }
    assert_eq!((bits(&a0), bits(&b0)), (a_bits, b_bits));
}

#[test]
fn strided_targets_and_other_inputs_are_accepted() {
    // A transposed target owns its buffer but does not hold its elements in order, and the
    // other input is a broadcast view: both go through copies, with the same results.
    let mut a = rand(&[5, 4], DType::F64, 10).t().unwrap(); // the only handle on a [5, 4] buffer
    let mut b = rand(&[4, 5], DType::F64, 11);
    let c = rand(&[1, 5], DType::F64, 12).expand([4, 5]).unwrap();
    let want = expected(&a, &b, &c);
    Tensor::fused_kernel_assign([&mut a, &mut b], &[&c], &Mix).unwrap();
    assert_eq!([bits(&a), bits(&b)], want);
    assert_eq!(a.dims(), &[4, 5]);
}

#[test]
fn bad_calls_are_errors_that_change_nothing() {
    let (mut a, mut b) = (rand(&[3], DType::F32, 13), rand(&[3], DType::F32, 14));
    let (pa, a_bits, b_bits) = (a.data_ptr(), bits(&a), bits(&b));
    let wrong_shape = rand(&[4], DType::F32, 15);
    let wrong_dtype = rand(&[3], DType::F64, 16);
    let cases: Vec<(Vec<&Tensor>, &str)> = vec![
        (vec![], "3 inputs but 2 targets and 0 other"),
        (vec![&wrong_shape], "shape"),
        (vec![&wrong_dtype], "dtype"),
    ];
    for (rest, needle) in cases {
        let e = Tensor::fused_kernel_assign([&mut a, &mut b], &rest, &Mix).unwrap_err().to_string();
        assert!(e.contains("fused_kernel_assign") && e.contains(needle), "{e}");
        assert_eq!((a.data_ptr(), bits(&a), bits(&b)), (pa, a_bits.clone(), b_bits.clone()));
    }
    // A target that needs a graph while grad mode is on.
    let mut w = rand(&[3], DType::F32, 17).requires_grad(true).unwrap();
    let g = rand(&[3], DType::F32, 18);
    let e = Tensor::fused_kernel_assign([&mut w], &[&g], &Descend).unwrap_err().to_string();
    assert!(e.contains("requires grad"), "{e}");
    assert!(no_grad(|| Tensor::fused_kernel_assign([&mut w], &[&g], &Descend)).is_ok());
}

#[test]
fn var_updates_keep_the_identity_and_are_in_place_once_the_graph_is_gone() {
    let w = Var::new(&rand(&[6, 3], DType::F32, 19));
    let x = rand(&[2, 6], DType::F32, 20);
    let loss = x.matmul(&w.tensor()).unwrap().square().unwrap().sum_all().unwrap();
    let grads = loss.backward().unwrap();
    let g = w.grad(&grads).unwrap().clone();
    let ptr = w.tensor().data_ptr();
    let [want] = Tensor::fused_kernel([&w.tensor().detach(), &g], &Descend).unwrap();

    // While the loss is alive its graph holds the old value: the update goes to a new buffer and
    // the graph still differentiates the old one.
    w.fused_update(&mut [], &[&g], &Descend).unwrap();
    assert_eq!(bits(&w.tensor()), bits(&want));
    assert_ne!(w.tensor().data_ptr(), ptr);
    let again = loss.backward().unwrap();
    assert_eq!(bits(w.grad(&again).unwrap()), bits(&g), "the graph's saved value is unchanged");
    drop((loss, again, grads));

    // Nothing holds the new value now: the next update writes over it and keeps the identity.
    let (id, ptr) = (w.id(), w.tensor().data_ptr());
    let [want] = Tensor::fused_kernel([&w.tensor().detach(), &g], &Descend).unwrap();
    w.fused_update(&mut [], &[&g], &Descend).unwrap();
    assert_eq!(bits(&w.tensor()), bits(&want));
    assert_eq!(w.tensor().data_ptr(), ptr, "written in place");
    assert_eq!(w.tensor().id(), id);
    assert!(w.tensor().requires_grad_flag());

    // A handle kept from `Var::tensor` keeps its values.
    let kept = w.tensor();
    let kept_bits = bits(&kept);
    w.fused_update(&mut [], &[&g], &Descend).unwrap();
    assert_eq!(bits(&kept), kept_bits);
    assert_ne!(bits(&w.tensor()), kept_bits);

    // The target count must match the kernel's outputs; the value is untouched on error.
    let before = bits(&w.tensor());
    let mut extra = rand(&[6, 3], DType::F32, 21);
    let e = w.fused_update(&mut [&mut extra], &[&g], &Descend).unwrap_err().to_string();
    assert!(e.contains("Var::fused_update") && e.contains("1 outputs"), "{e}");
    assert_eq!(bits(&w.tensor()), before);
}
