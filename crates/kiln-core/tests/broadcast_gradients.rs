//! Broadcast (stride-0) operands: their row-major copies and elementwise maps, and the
//! convolution's backward when its upstream gradient is one (the expanded gradient of a sum),
//! against the same computations on materialised tensors.

use kiln_core::{DType, Rng, Tensor};

/// The value at `[i, j]` of a 3 x 5 expansion.
type Expected = fn(usize, usize) -> f64;

fn rand(shape: &[usize], seed: u64) -> Tensor {
    Tensor::rand(shape.to_vec(), -1.0, 1.0, DType::F64, &mut Rng::new(seed)).unwrap()
}

#[test]
fn copies_and_maps_of_broadcast_views_repeat_their_values() {
    // A scalar, a column and a row expanded: every stride 0, the inner stride 0, the outer 0.
    let col = Tensor::from_slice(&[1.5f64, -2.0, 3.25], [3, 1]).unwrap();
    let row = Tensor::from_slice(&[1.0f64, 2.0, 3.0, 4.0, 5.0], [1, 5]).unwrap();
    let scalar = Tensor::from_slice(&[0.5f64], []).unwrap();
    let cases: [(&Tensor, Expected); 3] = [
        (&col, |i, _| [1.5, -2.0, 3.25][i]),
        (&row, |_, j| (j + 1) as f64),
        (&scalar, |_, _| 0.5),
    ];
    for (src, want) in cases {
        let e = src.expand([3, 5]).unwrap();
        assert!(!e.is_contiguous());
        let copy = e.contiguous().unwrap().to_vec::<f64>().unwrap();
        let exp = e.exp().unwrap().to_vec::<f64>().unwrap();
        for i in 0..3 {
            for j in 0..5 {
                assert_eq!(copy[i * 5 + j], want(i, j), "copy [{i}, {j}]");
                assert_eq!(exp[i * 5 + j], want(i, j).exp(), "exp [{i}, {j}]");
            }
        }
    }
    // Larger than the parallel threshold, so the fill runs in blocks.
    let big = scalar.expand([64, 16, 28, 28]).unwrap().contiguous().unwrap();
    assert!(big.to_vec::<f64>().unwrap().iter().all(|&v| v == 0.5));
}

#[test]
fn convolution_gradients_of_a_sum_match_a_materialised_upstream_gradient() {
    for (dtype, tol) in [(DType::F64, 1e-12), (DType::F32, 1e-4)] {
        let x = rand(&[2, 3, 6, 5], 1).to_dtype(dtype).unwrap().requires_grad(true).unwrap();
        let w = rand(&[4, 3, 3, 3], 2).to_dtype(dtype).unwrap().requires_grad(true).unwrap();
        let b = rand(&[4], 3).to_dtype(dtype).unwrap().requires_grad(true).unwrap();
        let y = x.conv2d(&w, Some(&b), (1, 1), (1, 1), (1, 1)).unwrap();
        // sum(y): the upstream gradient is a broadcast of one.
        let expanded = y.sum_all().unwrap().backward().unwrap();
        // The same gradient, materialised.
        let ones = Tensor::ones(y.dims().to_vec(), dtype).unwrap();
        let y2 = x.conv2d(&w, Some(&b), (1, 1), (1, 1), (1, 1)).unwrap();
        let dense = y2.backward_with(&ones).unwrap();
        for (name, t) in [("input", &x), ("weight", &w), ("bias", &b)] {
            let a = expanded.get(t).unwrap().to_dtype(DType::F64).unwrap().to_vec::<f64>().unwrap();
            let d = dense.get(t).unwrap().to_dtype(DType::F64).unwrap().to_vec::<f64>().unwrap();
            assert_eq!(a.len(), d.len(), "{name}");
            for (i, (p, q)) in a.iter().zip(&d).enumerate() {
                assert!((p - q).abs() <= tol * (1.0 + q.abs()), "{dtype:?} {name} [{i}]: {p} vs {q}");
            }
        }
        // The bias's gradient is the number of output positions per channel.
        let db = expanded.get(&b).unwrap().to_dtype(DType::F64).unwrap().to_vec::<f64>().unwrap();
        assert!(db.iter().all(|&v| v == 60.0), "{db:?}");
    }
}
