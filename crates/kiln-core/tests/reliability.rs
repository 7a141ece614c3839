//! Reliability: shapes, windows and allocations too large for the machine are errors that name the
//! op, never wrapped-around shapes, out-of-bounds reads, panics or aborts.
//!
//! Each case here used to misbehave: an overflowing shape product wrapped to 0 (so an empty buffer
//! took a huge shape, and a narrowed 128x128 view of it made the gemm call read outside the buffer),
//! window geometry wrapped to a small wrong answer, and huge buffers aborted the process.

use kiln_core::backend::Window2d;
use kiln_core::{DType, Shape, Tensor};
use proptest::prelude::*;

const BIG: usize = 1 << 32;

fn z(shape: &[usize]) -> Tensor {
    Tensor::zeros(shape.to_vec(), DType::F32).unwrap()
}

/// A one-element tensor stretched to `shape` without memory behind it.
fn stretched(shape: &[usize], dtype: DType) -> Tensor {
    Tensor::zeros([1], dtype).unwrap().broadcast_to(shape.to_vec()).unwrap()
}

fn err(r: kiln_core::Result<Tensor>) -> String {
    r.map(|t| format!("unexpected Ok of shape {}", t.shape()))
        .unwrap_or_else(|e| e.to_string())
}

// ---------------------------------------------------------------- shape products

#[test]
fn overflowing_shape_products_are_errors() {
    assert_eq!(
        err(Tensor::from_vec(Vec::<f32>::new(), [BIG, BIG])),
        "from_vec: shape [4294967296, 4294967296] is too large: its element count overflows isize"
    );
    assert_eq!(
        err(Tensor::zeros([BIG, BIG], DType::F32)),
        "zeros: shape [4294967296, 4294967296] is too large: its element count overflows isize"
    );
    // A zero dim does not excuse the others: their strides would still overflow.
    assert_eq!(
        err(Tensor::zeros([0, BIG, BIG], DType::F32)),
        "zeros: shape [0, 4294967296, 4294967296] is too large: its element count overflows isize"
    );
    let empty = Tensor::from_vec(Vec::<f32>::new(), [0]).unwrap();
    assert_eq!(
        err(empty.reshape([BIG, BIG])),
        "reshape: shape [4294967296, 4294967296] is too large: its element count overflows isize"
    );
    assert_eq!(
        err(empty.view_as(&[1 << 32, 1 << 32, -1])),
        "reshape: the sizes in [4294967296, 4294967296, -1] multiply past usize"
    );
    // Fits as a count but not in bytes.
    assert_eq!(
        err(Tensor::zeros([1 << 62], DType::F64)),
        "zeros: shape [4611686018427387904] is too large: 4611686018427387904 elements of 8 bytes overflow isize"
    );
}

#[test]
fn the_narrow_then_matmul_crash_is_an_error_at_creation() {
    // This used to build a [2^32, 2^32] tensor over an empty buffer; narrowing it to 128x128 and
    // multiplying read 64 KiB past the buffer (a segfault). Creation now fails, so no such view exists.
    let r = Tensor::from_vec(Vec::<f32>::new(), [BIG, BIG])
        .and_then(|t| t.narrow(0, 0, 128))
        .and_then(|t| t.narrow(1, 0, 128))
        .and_then(|a| a.matmul(&a));
    assert!(err(r).starts_with("from_vec: shape [4294967296, 4294967296] is too large"));
    // The same with reshape from an empty tensor, the other way in.
    let r = Tensor::zeros([0], DType::F32)
        .unwrap()
        .reshape([BIG, BIG])
        .and_then(|t| t.narrow(0, 0, 128)?.narrow(1, 0, 128))
        .and_then(|a| a.matmul(&a));
    assert!(err(r).starts_with("reshape: shape [4294967296, 4294967296] is too large"));
}

#[test]
fn broadcasts_too_large_to_count_are_errors() {
    let a = stretched(&[1 << 31, 1], DType::F32);
    let b = stretched(&[1, 1 << 40], DType::F32);
    // 2^71 elements; the wrapped product was 128, and the op returned a wrong Ok.
    assert_eq!(
        err(a.add(&b)),
        "add: shape [2147483648, 1099511627776] is too large: its element count overflows isize"
    );
    assert_eq!(
        err(a.lt(&b)),
        "lt: shape [2147483648, 1099511627776] is too large: its element count overflows isize"
    );
    assert_eq!(
        err(stretched(&[1], DType::F64).broadcast_to([1 << 61])),
        "broadcast_to: shape [2305843009213693952] is too large: 2305843009213693952 elements of 8 bytes overflow isize"
    );
    // A u8 view of 2^62 elements is fine, its f64 copy is not.
    let u = stretched(&[1 << 62], DType::U8);
    assert_eq!(
        err(u.to_dtype(DType::F64)),
        "to_dtype: shape [4611686018427387904] is too large: 4611686018427387904 elements of 8 bytes overflow isize"
    );
}

#[test]
fn matmul_cat_pad_and_index_select_check_their_output_shapes() {
    let a = stretched(&[1 << 31, 1, 1, 1], DType::F32);
    let b = stretched(&[1, 1 << 31, 1, 1], DType::F32);
    assert_eq!(
        err(a.matmul(&b)),
        "matmul: shape [2147483648, 2147483648, 1, 1] is too large: 4611686018427387904 elements of 4 bytes overflow isize"
    );
    let u = stretched(&[1 << 62], DType::U8);
    assert_eq!(
        err(Tensor::cat(&[&u, &u], 0)),
        "cat: shape [9223372036854775808] is too large: its element count overflows isize"
    );
    assert_eq!(
        err(Tensor::cat(&[&u, &u, &u, &u], 0)),
        "cat: the joined size of dimension 0 overflows usize (at shape [4611686018427387904])"
    );
    // Sizes whose sum wraps to the dimension's size used to pass.
    assert_eq!(
        z(&[2]).split(&[usize::MAX, 3], 0).unwrap_err().to_string(),
        format!("split: sizes [{}, 3] do not add up to dimension 0 of [2]", usize::MAX)
    );
    assert_eq!(
        err(z(&[2]).pad(&[(usize::MAX, 0)], 0.0)),
        "pad: padding dimension 0 of shape [2] by (18446744073709551615, 0) overflows usize"
    );
    let x = stretched(&[1 << 40, 2], DType::F32);
    let idx = Tensor::from_vec(vec![0i64], [1]).unwrap().broadcast_to([1 << 30]).unwrap();
    assert_eq!(
        err(x.index_select(1, &idx)),
        "index_select: shape [1099511627776, 1073741824] is too large: its element count overflows isize"
    );
}

// ---------------------------------------------------------------- window geometry

#[test]
fn huge_dilation_or_padding_in_windows_is_an_error() {
    let x = Tensor::arange(0.0, 16.0, 1.0, DType::F32).unwrap().reshape([1, 1, 4, 4]).unwrap();
    // dilation * (kernel - 1) + 1 wrapped to 0, so the kernel "fit" 5 times.
    assert_eq!(
        err(x.unfold2d((2, 2), (1, 1), (0, 0), (usize::MAX, 1))),
        "unfold2d: window geometry overflows usize: kernel (2, 2), stride (1, 1), padding (0, 0), dilation (18446744073709551615, 1) over a 4x4 plane"
    );
    // 2 * padding wrapped to 0: treated as no padding at all.
    let half = 1usize << 63;
    assert_eq!(
        err(x.unfold2d((2, 2), (1, 1), (0, half), (1, 1))),
        "unfold2d: window geometry overflows usize: kernel (2, 2), stride (1, 1), padding (0, 9223372036854775808), dilation (1, 1) over a 4x4 plane"
    );
    assert_eq!(
        x.max_pool2d_with_indices((2, 2), (1, 1), (0, 0), (1, usize::MAX)).unwrap_err().to_string(),
        "max_pool2d: window geometry overflows usize: kernel (2, 2), stride (1, 1), padding (0, 0), dilation (1, 18446744073709551615) over a 4x4 plane"
    );
    let cols = z(&[1, 4, 9]);
    assert_eq!(
        err(cols.fold2d((4, 4), (2, 2), (1, 1), (half, 0), (1, 1))),
        "fold2d: window geometry overflows usize: kernel (2, 2), stride (1, 1), padding (9223372036854775808, 0), dilation (1, 1) over a 4x4 plane"
    );
    // Geometry that fits usize, but whose (2^32 + 4)^2 window positions do not.
    assert_eq!(
        err(x.unfold2d((1, 1), (1, 1), (1 << 31, 1 << 31), (1, 1))),
        "unfold2d: window positions over input [1, 1, 4, 4]: 4294967300 x 4294967300 overflows usize"
    );
}

#[test]
fn windows_that_fit_still_give_the_right_answer() {
    // The checked geometry must not change ordinary results: 4x4 input, 2x2 kernel, dilation 2.
    let x = Tensor::arange(0.0, 16.0, 1.0, DType::F64).unwrap().reshape([1, 1, 4, 4]).unwrap();
    let u = x.unfold2d((2, 2), (1, 1), (0, 0), (2, 2)).unwrap();
    assert_eq!(u.dims(), &[1, 4, 4]);
    assert_eq!(
        u.to_vec::<f64>().unwrap(),
        vec![0., 1., 4., 5., 2., 3., 6., 7., 8., 9., 12., 13., 10., 11., 14., 15.]
    );
    let (v, i) = x.max_pool2d_with_indices((2, 2), (2, 2), (1, 1), (1, 1)).unwrap();
    assert_eq!(v.to_vec::<f64>().unwrap(), vec![0., 2., 3., 8., 10., 11., 12., 14., 15.]);
    assert_eq!(i.to_vec::<i64>().unwrap(), vec![0, 2, 3, 8, 10, 11, 12, 14, 15]);
    // A padding that leaves a window with no input element is still refused.
    assert!(x.max_pool2d_with_indices((1, 1), (1, 1), (1, 0), (1, 1)).is_err());
}

// ---------------------------------------------------------------- allocation

// Sizes here fit in isize but not in any machine's memory (4 TiB and up), so the allocator
// refuses them; they used to abort the process (or panic on capacity overflow).

#[test]
fn huge_creations_are_errors() {
    assert_eq!(
        err(Tensor::zeros([1 << 40], DType::F32)),
        "zeros: cannot allocate 1099511627776 elements of 4 bytes: out of memory"
    );
    assert_eq!(
        err(Tensor::full([1 << 40], 2.0, DType::F64)),
        "full: cannot allocate 1099511627776 elements of 8 bytes: out of memory"
    );
    assert_eq!(
        err(Tensor::arange(0.0, 1e12, 1.0, DType::F32)),
        "arange: cannot allocate 1000000000000 elements of 4 bytes: out of memory"
    );
    // Past usize the length itself is the error (`as usize` used to saturate it silently).
    assert!(err(Tensor::arange(0.0, 1e30, 1.0, DType::F32)).ends_with("elements, more than fit in usize"));
    assert_eq!(
        err(Tensor::eye(1 << 31, DType::F32)),
        "eye: shape [2147483648, 2147483648] is too large: 4611686018427387904 elements of 4 bytes overflow isize"
    );
    assert_eq!(
        err(Tensor::eye(1 << 21, DType::F32)),
        "eye: cannot allocate 4398046511104 elements of 4 bytes: out of memory"
    );
    assert_eq!(
        err(Tensor::linspace(0.0, 1.0, usize::MAX, DType::F32)),
        "linspace: shape [18446744073709551615] is too large: its element count overflows isize"
    );
    let mut rng = kiln_core::Rng::new(0);
    assert_eq!(
        err(Tensor::randn([1 << 40], 0.0, 1.0, DType::F32, &mut rng)),
        "randn: cannot allocate 1099511627776 elements of 8 bytes: out of memory"
    );
}

#[test]
fn huge_op_outputs_are_errors() {
    assert_eq!(
        err(z(&[2]).pad(&[(1 << 41, 0)], 0.0)),
        "pad: cannot allocate 2199023255554 elements of 4 bytes: out of memory"
    );
    let big = stretched(&[1 << 40], DType::F32);
    assert_eq!(
        err(big.exp()),
        "exp: cannot allocate 1099511627776 elements of 4 bytes: out of memory"
    );
    assert_eq!(
        err(big.add(&big)),
        "add: cannot allocate 1099511627776 elements of 4 bytes: out of memory"
    );
    assert_eq!(
        err(big.contiguous()),
        "contiguous: cannot allocate 1099511627776 elements of 4 bytes: out of memory"
    );
    assert_eq!(
        err(big.zeros_like()),
        "zeros_like: cannot allocate 1099511627776 elements of 4 bytes: out of memory"
    );
    assert_eq!(
        err(big.reshape([1 << 20, 1 << 20]).and_then(|t| t.t()?.reshape([1 << 40]))),
        "reshape: cannot allocate 1099511627776 elements of 4 bytes: out of memory"
    );
    let x = Tensor::arange(0.0, 4.0, 1.0, DType::F32).unwrap().reshape([1, 1, 2, 2]).unwrap();
    assert_eq!(
        err(x.unfold2d((1, 1), (1, 1), (1 << 19, 1 << 19), (1, 1))),
        "unfold2d: cannot allocate 1099515822084 elements of 4 bytes: out of memory"
    );
    // After all this the allocator and the buffer cache still work.
    assert_eq!(z(&[3]).add_scalar(1.0).unwrap().to_vec::<f32>().unwrap(), vec![1.0; 3]);
}

// ---------------------------------------------------------------- properties

/// Dims mixing small sizes, zeros and sizes near the overflow edge.
fn dim() -> impl Strategy<Value = usize> {
    prop_oneof![
        4 => 0usize..5,
        2 => (1usize << 20)..(1usize << 34),
        1 => (1usize << 60)..=usize::MAX,
        1 => Just(usize::MAX),
    ]
}

fn nonzero_product(dims: &[usize]) -> u128 {
    dims.iter().filter(|&&d| d != 0).fold(1u128, |a, &d| a.saturating_mul(d as u128))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn shape_counts_are_exact_or_errors(dims in prop::collection::vec(dim(), 0..6)) {
        let shape = Shape::new(&dims);
        let exact: u128 = dims.iter().fold(1u128, |a, &d| a.saturating_mul(d as u128));
        let fits = nonzero_product(&dims) <= isize::MAX as u128;
        match shape.checked_elem_count("prop") {
            Ok(n) => {
                prop_assert!(fits);
                prop_assert_eq!(n as u128, exact);
            }
            Err(e) => {
                prop_assert!(!fits);
                prop_assert!(e.to_string().starts_with("prop: shape "), "{}", e);
            }
        }
        for bytes in [1usize, 4, 8] {
            let fits_bytes = nonzero_product(&dims).saturating_mul(bytes as u128) <= isize::MAX as u128;
            prop_assert_eq!(shape.checked_elem_count_for(bytes, "prop").is_ok(), fits_bytes);
        }
    }

    #[test]
    fn tensors_never_take_a_shape_they_cannot_hold(dims in prop::collection::vec(dim(), 0..5)) {
        let exact: u128 = dims.iter().fold(1u128, |a, &d| a.saturating_mul(d as u128));
        let fits = nonzero_product(&dims).saturating_mul(4) <= isize::MAX as u128;
        // An empty buffer takes the shape only when it really has no element.
        let empty = Tensor::from_vec(Vec::<f32>::new(), dims.clone());
        prop_assert_eq!(empty.is_ok(), fits && exact == 0);
        let r = Tensor::zeros([0], DType::F32).unwrap().reshape(dims.clone());
        prop_assert_eq!(r.is_ok(), fits && exact == 0);
        if let Ok(t) = r {
            prop_assert_eq!(t.elem_count(), 0);
        }
        // Small shapes are created with exactly the product of elements; huge ones are errors.
        if exact <= 4096 || !fits {
            match Tensor::zeros(dims.clone(), DType::F32) {
                Ok(t) => {
                    prop_assert!(fits);
                    prop_assert_eq!(t.elem_count() as u128, exact);
                    prop_assert_eq!(t.to_vec::<f32>().unwrap().len() as u128, exact);
                }
                Err(e) => {
                    prop_assert!(!fits);
                    prop_assert!(e.to_string().starts_with("zeros: shape "), "{}", e);
                }
            }
        }
    }

    #[test]
    fn window_lengths_are_exact_or_errors(
        size in prop_oneof![0usize..8, Just(usize::MAX - 1)],
        k in prop_oneof![1usize..4, Just(usize::MAX)],
        s in prop_oneof![1usize..4, Just(usize::MAX)],
        p in prop_oneof![0usize..4, (1usize << 62)..=usize::MAX],
        d in prop_oneof![1usize..4, (1usize << 62)..=usize::MAX],
    ) {
        let w = Window2d { kernel: (k, 1), stride: (s, 1), padding: (p, 0), dilation: (d, 1) };
        let padded = size as u128 + 2 * p as u128;
        let span = d as u128 * (k as u128 - 1) + 1;
        match w.checked_out_len(size, 0) {
            Ok(n) => {
                prop_assert!(padded <= usize::MAX as u128 && span <= usize::MAX as u128);
                let want = (padded >= span).then(|| ((padded - span) / s as u128 + 1) as usize);
                prop_assert_eq!(n, want);
            }
            Err(_) => prop_assert!(padded > usize::MAX as u128 || span > usize::MAX as u128),
        }
    }

    #[test]
    fn unfold_and_pool_never_panic(
        h in 1usize..6,
        k in prop_oneof![1usize..4, Just(usize::MAX)],
        s in prop_oneof![1usize..3, Just(usize::MAX)],
        p in prop_oneof![0usize..3, Just(1usize << 62), Just(usize::MAX)],
        d in prop_oneof![1usize..3, Just(usize::MAX / 2), Just(usize::MAX)],
    ) {
        let x = Tensor::arange(0.0, (h * h) as f64, 1.0, DType::F64).unwrap().reshape([1, 1, h, h]).unwrap();
        let w = Window2d { kernel: (k, k), stride: (s, s), padding: (p, p), dilation: (d, d) };
        let n = w.checked_out_len(h, 0);
        // Only run the ops when the output is small, so the test stays fast; the others must
        // still be errors rather than panics, which the geometry check decides up front.
        let size = |n: usize| [n, n, k, k].iter().try_fold(1u128, |a, &v| a.checked_mul(v as u128));
        let small = matches!(n, Ok(Some(n)) if size(n).is_some_and(|v| v <= 1 << 16));
        let unfold = x.unfold2d((k, k), (s, s), (p, p), (d, d));
        let pool = x.max_pool2d_with_indices((k, k), (s, s), (p, p), (d, d));
        match n {
            Ok(Some(n)) if small => {
                let u = unfold.unwrap();
                prop_assert_eq!(u.dims(), &[1, k * k, n * n][..]);
                if let Ok((v, _)) = pool {
                    prop_assert_eq!(v.dims(), &[1, 1, n, n][..]);
                }
            }
            Ok(Some(_)) => {}
            _ => {
                let e = unfold.unwrap_err().to_string();
                prop_assert!(e.starts_with("unfold2d: "), "{}", e);
                prop_assert!(pool.is_err());
            }
        }
    }
}
