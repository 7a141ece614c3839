//! The second adversarial review's findings in kiln-core (2026-12-02): each call below aborted the
//! process on an impossible allocation or panicked on overflow; each is now an error or the answer.

use kiln_core::random::init_mlp;
use kiln_core::{DType, Tensor};

/// An empty tensor whose first dimension is 2^60: no elements, but walking the dimension (one Vec
/// per row, one display row per index, one flip index per position) cannot be allocated.
fn huge_empty() -> Tensor {
    Tensor::from_vec(Vec::<f32>::new(), [1usize << 60, 0]).unwrap()
}

#[test]
fn to_vec2_of_a_huge_empty_tensor_is_an_allocation_error() {
    let e = huge_empty().to_vec2::<f32>().unwrap_err().to_string();
    assert!(e.starts_with("to_vec2: cannot allocate 1152921504606846976 elements"), "{e}");
    assert_eq!(
        Tensor::from_vec(Vec::<f32>::new(), [3, 0]).unwrap().to_vec2::<f32>().unwrap(),
        vec![Vec::<f32>::new(); 3]
    );
}

#[test]
fn empty_tensors_print_as_pytorch_prints_them() {
    assert_eq!(format!("{}", huge_empty()), "tensor([], size=(1152921504606846976, 0))");
    assert_eq!(format!("{}", Tensor::zeros([0], DType::F32).unwrap()), "tensor([])");
    assert_eq!(
        format!("{}", Tensor::zeros([3, 0], DType::F64).unwrap()),
        "tensor([], size=(3, 0), dtype=f64)"
    );
}

#[test]
fn flipping_a_huge_empty_tensor_keeps_it() {
    let f = huge_empty().flip(&[0, 1]).unwrap();
    assert_eq!(f.dims(), &[1usize << 60, 0]);
}

#[test]
fn init_mlp_with_sizes_whose_product_overflows_is_an_error() {
    let e = init_mlp(&[1 << 40, 1 << 40], 0).unwrap_err().to_string();
    assert!(e.contains("init_mlp") && e.contains("overflows"), "{e}");
    let layers = init_mlp(&[3, 2], 0).unwrap();
    assert_eq!(layers[0].0.dims(), &[3, 2]);
    assert_eq!(layers[0].1.dims(), &[2]);
}

/// Left from that review: calls that still aborted on an impossible allocation, or ran for hours,
/// with an expanded (stride-0) or empty operand of huge size.
#[test]
fn index_put_with_a_huge_broadcast_index_is_an_allocation_error() {
    // 2^45 flat indices (256 TiB) from one expanded scalar.
    let idx = Tensor::scalar(0i64).expand([1usize << 45]).unwrap();
    let x = Tensor::from_slice(&[1.0f32], [1]).unwrap();
    let e = x.index_put(&[idx], &Tensor::scalar(2f32), false).unwrap_err().to_string();
    assert!(
        e.starts_with("index_put: cannot allocate 35184372088832 elements of 8 bytes"),
        "{e}"
    );
    // The same call at a size that fits still works.
    let idx = Tensor::scalar(0i64).expand([4]).unwrap();
    let y = x.index_put(&[idx], &Tensor::scalar(2f32), false).unwrap();
    assert_eq!(y.to_vec::<f32>().unwrap(), vec![2.0]);
}

#[test]
fn chunking_a_huge_empty_dimension_into_as_many_pieces_is_an_allocation_error() {
    let e = huge_empty().chunk(1 << 60, 0).unwrap_err().to_string();
    assert!(e.starts_with("chunk: cannot allocate 1152921504606846976 elements"), "{e}");
    let pieces = Tensor::zeros([5, 0], DType::F32).unwrap().chunk(2, 0).unwrap();
    let dims: Vec<Vec<usize>> = pieces.iter().map(|p| p.dims().to_vec()).collect();
    assert_eq!(dims, vec![vec![3, 0], vec![2, 0]]);
}

#[test]
fn a_batch_of_empty_products_is_zeros() {
    // k = 0 over a batch of 2^12 x 2^4: zeros, as PyTorch gives.
    let a = Tensor::from_vec(Vec::<f32>::new(), [1 << 12, 1 << 4, 2, 0]).unwrap();
    let b = Tensor::from_vec(Vec::<f32>::new(), [0, 3]).unwrap();
    let c = a.matmul(&b).unwrap();
    assert_eq!(c.dims(), [1 << 12, 1 << 4, 2, 3]);
    assert!(c.to_vec::<f32>().unwrap().iter().all(|&v| v == 0.0));
}

#[test]
fn the_jacobian_of_a_huge_function_is_refused_before_any_pass() {
    // J of x -> 2x over 2^22 entries has 2^44 f64 entries (128 TiB).
    let x = Tensor::zeros([1 << 22], DType::F64).unwrap();
    let t = std::time::Instant::now();
    let e = kiln_core::func::jacobian(|x: &Tensor| x.mul_scalar(2.0), &x)
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("jacobian: cannot allocate 17592186044416 elements of 8 bytes"), "{e}");
    assert!(t.elapsed().as_secs() < 60, "refused only after {:?}", t.elapsed());
    let jf = kiln_core::func::jacfwd(|xs: &[Tensor]| Ok(vec![xs[0].mul_scalar(2.0)?]), &[x])
        .unwrap_err()
        .to_string();
    assert!(jf.starts_with("jacfwd: cannot allocate 17592186044416 elements"), "{jf}");
}

/// Errors name the op the user called, not an op it is built from.
#[test]
fn stack_and_select_name_themselves_in_errors() {
    let x = Tensor::from_slice(&[1.0f32], [1]).unwrap();
    let e = Tensor::stack(&[x.clone(), x.clone()], 5).unwrap_err().to_string();
    assert!(e.starts_with("stack: dimension 5 is out of range for a tensor of shape [1]"), "{e}");
    assert_eq!(Tensor::stack(&[x.clone(), x.clone()], -1).unwrap().dims(), [1, 2]);
    let t = Tensor::from_slice(&[1.0f32, 2.0], [2]).unwrap();
    let e = t.select(0, 2).unwrap_err().to_string();
    assert!(e.starts_with("select: index 2 is out of range for dimension 0 of size 2"), "{e}");
    assert_eq!(t.select(0, 1).unwrap().to_vec::<f32>().unwrap(), vec![2.0]);
}

/// Over an empty dim, softmax is as empty as its input and the product is 1, both in the graph
/// (PyTorch gives the input its empty gradient).
#[test]
fn softmax_and_prod_over_an_empty_dim() {
    let x = Tensor::from_vec(Vec::<f64>::new(), [3, 0]).unwrap().requires_grad(true).unwrap();
    for y in [x.softmax(-1).unwrap(), x.log_softmax(1).unwrap()] {
        assert_eq!(y.dims(), [3, 0]);
    }
    let p = x.prod(1, false).unwrap();
    assert_eq!(p.to_vec::<f64>().unwrap(), vec![1.0; 3]);
    let g = p.sum_all().unwrap().backward().unwrap();
    assert_eq!(g.get(&x).expect("x is in the graph").dims(), [3, 0]);
    let kept = x.prod(1, true).unwrap();
    assert_eq!(kept.dims(), [3, 1]);
}

/// An empty tensor whose non-empty dims span more than isize bytes in a wider dtype: the error
/// said its "elements overflow isize", of a tensor with no elements.
#[test]
fn an_empty_tensor_too_wide_for_a_dtype_says_why() {
    let e = huge_empty().to_dtype(DType::F64).unwrap_err().to_string();
    assert_eq!(
        e,
        "to_dtype: shape [1152921504606846976, 0] is too large: it is empty, but the strides of its non-empty dims span \
         1152921504606846976 elements of 8 bytes, which overflow isize"
    );
    assert_eq!(huge_empty().to_dtype(DType::F16).unwrap().dims(), [1 << 60, 0]);
}
