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
