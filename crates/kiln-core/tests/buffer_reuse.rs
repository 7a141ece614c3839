//! The CPU backend caches large buffers and hands them to later ops (cpu::pool). A reused buffer
//! holds an earlier tensor's values, so every kernel must write all of its output: these tests fill
//! the cache with buffers of a marker value and check that later results never show it.

use kiln_core::{no_grad, DType, Rng, Tensor};

const MARK: f64 = 7.25;

/// Allocates and drops several large tensors full of the marker, in the sizes the tests use.
fn poison(elems: &[usize]) {
    for &n in elems {
        for dt in [DType::F32, DType::F64] {
            let t = Tensor::full([n], MARK, dt).unwrap();
            drop(t);
        }
    }
}

fn no_mark(name: &str, t: &Tensor) {
    let v = t.to_dtype(DType::F64).unwrap().to_vec::<f64>().unwrap();
    assert!(!v.contains(&MARK), "{name}: a stale value leaked into the result");
}

#[test]
fn reused_buffers_never_leak_values() {
    let mut rng = Rng::new(5);
    for round in 0..3 {
        let x = Tensor::rand(vec![8, 4, 30, 30], -1.0, 1.0, DType::F32, &mut rng).unwrap();
        let n = x.elem_count();
        poison(&[n, n * 9, n / 4, 1 << 16, 1 << 18]);
        // Fresh zeros / fills of a size the cache holds.
        let z = Tensor::zeros([n], DType::F32).unwrap();
        assert!(z.to_vec::<f32>().unwrap().iter().all(|&v| v == 0.0), "round {round}: zeros");
        poison(&[n]);
        let o = Tensor::ones([n], DType::F64).unwrap();
        assert!(o.to_vec::<f64>().unwrap().iter().all(|&v| v == 1.0), "round {round}: ones");
        // Zero padding of im2col and the accumulation of col2im.
        poison(&[n * 9, n]);
        let cols = x.unfold2d((3, 3), (1, 1), (1, 1), (1, 1)).unwrap();
        no_mark("unfold2d", &cols);
        let xv = x.to_vec::<f32>().unwrap();
        let cv = cols.to_vec::<f32>().unwrap();
        // Tap (0, 0) at output (0, 0) lies in the padding: exactly zero; tap (1, 1) is the input itself.
        assert_eq!(cv[0], 0.0);
        assert_eq!(cv[4 * 900], xv[0]);
        poison(&[n * 9, n]);
        let back = cols.fold2d((30, 30), (3, 3), (1, 1), (1, 1), (1, 1)).unwrap();
        no_mark("fold2d", &back);
        let ones = Tensor::ones(vec![8, 4, 30, 30], DType::F32).unwrap();
        let counts = ones
            .unfold2d((3, 3), (1, 1), (1, 1), (1, 1))
            .unwrap()
            .fold2d((30, 30), (3, 3), (1, 1), (1, 1), (1, 1))
            .unwrap();
        let cnt = counts.to_vec::<f32>().unwrap();
        assert_eq!((cnt[0], cnt[1], cnt[31]), (4.0, 6.0, 9.0), "fold2d counts taps");
        // Padding, matmul, reductions, max pooling, elementwise ops.
        poison(&[n, n * 2, 1 << 18]);
        let p = x.pad(&[(0, 0), (0, 0), (1, 1), (1, 1)], -3.0).unwrap();
        no_mark("pad", &p);
        assert_eq!(p.to_vec::<f32>().unwrap()[0], -3.0);
        let a = x.reshape([8 * 4 * 30, 30]).unwrap();
        let m = a.matmul(&a.t().unwrap().narrow(1, 0, 30).unwrap()).unwrap();
        no_mark("matmul", &m);
        let s = x.sum(&[0], false).unwrap();
        no_mark("sum", &s);
        let (mp, idx) = no_grad(|| x.max_pool2d_with_indices((2, 2), (2, 2), (0, 0), (1, 1))).unwrap();
        no_mark("max_pool2d", &mp);
        assert!(idx.to_vec::<i64>().unwrap().iter().all(|&i| (0..900).contains(&i)));
        let e = x.mul(&x).unwrap().add_scalar(1.0).unwrap();
        no_mark("elementwise", &e);
    }
}
