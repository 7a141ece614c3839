//! Bad shapes, dims and values give errors that name the op and what was wrong; nothing panics.

use kiln_core::{DType, Tensor};

fn z(shape: &[usize]) -> Tensor {
    Tensor::zeros(shape.to_vec(), DType::F32).unwrap()
}

#[test]
fn error_messages_name_op_and_shapes() {
    let cases: Vec<(String, &str)> = vec![
        (
            z(&[2, 3]).matmul(&z(&[4, 5])).unwrap_err().to_string(),
            "matmul: cannot multiply [2, 3] by [4, 5]: inner dimensions 3 and 4 differ",
        ),
        (
            z(&[2, 3]).add(&z(&[4])).unwrap_err().to_string(),
            "add: shapes [2, 3] and [4] cannot be broadcast together (dimension 3 vs 4)",
        ),
        (
            z(&[2, 3]).sum(&[2], false).unwrap_err().to_string(),
            "sum: dimension 2 is out of range for a tensor of shape [2, 3]",
        ),
        (
            z(&[2, 3]).reshape([4]).unwrap_err().to_string(),
            "reshape: cannot reshape [2, 3] (6 elements) into [4] (4 elements)",
        ),
        (
            Tensor::from_vec(vec![1.0f32; 5], [2, 3]).unwrap_err().to_string(),
            "from_vec: 5 values cannot fill shape [2, 3] (6 elements)",
        ),
        (
            z(&[2, 3]).narrow(1, 2, 2).unwrap_err().to_string(),
            "narrow: range 2..4 is outside dimension 1 of size 3 (shape [2, 3])",
        ),
        (
            z(&[2, 3]).squeeze(0).unwrap_err().to_string(),
            "squeeze: dimension 0 of shape [2, 3] has size 2, not 1",
        ),
        (
            z(&[2, 3]).permute(&[0, 0]).unwrap_err().to_string(),
            "permute: [0, 0] is not a permutation of the 2 dims of [2, 3]",
        ),
        (
            z(&[3])
                .index_select(0, &Tensor::from_slice(&[5i64], [1]).unwrap())
                .unwrap_err()
                .to_string(),
            "index_select: index 5 is out of range for dimension 0 of size 3",
        ),
        (
            z(&[3]).index_select(0, &z(&[1])).unwrap_err().to_string(),
            "index_select: expected dtype i64 (indices), got f32",
        ),
        (
            Tensor::cat(&[z(&[2, 3]), z(&[3, 3])], 1).unwrap_err().to_string(),
            "cat: cannot join [2, 3] and [3, 3] along dimension 1",
        ),
        (
            z(&[2, 3]).broadcast_to([3, 3]).unwrap_err().to_string(),
            "broadcast_to: shapes [2, 3] and [3, 3] cannot be broadcast together (dimension 2 vs 3)",
        ),
    ];
    for (got, want) in cases {
        assert_eq!(got, want);
    }
}

#[test]
fn more_bad_inputs_are_errors() {
    assert!(z(&[1]).var(&[], 1, false).is_err());
    assert!(z(&[0, 3]).max(&[0], false).is_err());
    assert!(z(&[2, 3]).argmax(5, false).is_err());
    assert!(z(&[2]).clamp(1.0, 0.0).is_err());
    assert!(Tensor::arange(0.0, 1.0, 0.0, DType::F32).is_err());
    assert!(z(&[2, 3]).unfold2d((4, 4), (1, 1), (0, 0), (1, 1)).is_err());
    assert!(z(&[2, 3]).unfold2d((1, 1), (0, 1), (0, 0), (1, 1)).is_err());
    assert!(z(&[3]).to_vec::<f64>().is_err());
    assert!(Tensor::zeros([2], DType::I64).unwrap().exp().is_err());
    assert!(z(&[3, 4]).gather(1, &Tensor::from_slice(&[0i64, 9], [1, 2]).unwrap()).is_err());
    assert!(z(&[2, 2]).matmul(&Tensor::zeros([2, 2], DType::I64).unwrap()).is_err());
}

#[test]
fn operator_overloads_return_results() {
    let a = Tensor::from_slice(&[1.0f64, 2.0], [2]).unwrap();
    let b = Tensor::from_slice(&[3.0f64, 4.0], [2]).unwrap();
    let c = ((&a + &b).unwrap() * 2.0).unwrap();
    assert_eq!(c.to_vec::<f64>().unwrap(), vec![8.0, 12.0]);
    assert!((&a + &z(&[3]).to_dtype(DType::F64).unwrap()).is_err());
}

#[test]
fn display_looks_like_pytorch() {
    let t = Tensor::from_slice(&[1.5f32, -2.0, 3.25, 4.0], [2, 2]).unwrap();
    assert_eq!(t.to_string(), "tensor([[ 1.5000, -2.0000],\n        [ 3.2500,  4.0000]])");
    let i = Tensor::from_slice(&[1i64, 20], [2]).unwrap();
    assert_eq!(i.to_string(), "tensor([ 1, 20])");
    let d = Tensor::from_slice(&[1.0f64, 2.0], [2]).unwrap();
    assert_eq!(d.to_string(), "tensor([1., 2.], dtype=f64)");
}

#[test]
fn creation_functions() {
    assert_eq!(
        Tensor::arange(0.0, 5.0, 2.0, DType::I64).unwrap().to_vec::<i64>().unwrap(),
        vec![0, 2, 4]
    );
    assert_eq!(
        Tensor::linspace(0.0, 1.0, 5, DType::F64).unwrap().to_vec::<f64>().unwrap(),
        vec![0.0, 0.25, 0.5, 0.75, 1.0]
    );
    assert_eq!(
        Tensor::eye(2, DType::F32).unwrap().to_vec::<f32>().unwrap(),
        vec![1.0, 0.0, 0.0, 1.0]
    );
    let mut r1 = kiln_core::Rng::new(9);
    let mut r2 = kiln_core::Rng::new(9);
    let a = Tensor::randn([100], 0.0, 1.0, DType::F32, &mut r1)
        .unwrap()
        .to_vec::<f32>()
        .unwrap();
    let b = Tensor::randn([100], 0.0, 1.0, DType::F32, &mut r2)
        .unwrap()
        .to_vec::<f32>()
        .unwrap();
    assert_eq!(a, b);
    let mean: f32 = a.iter().sum::<f32>() / 100.0;
    assert!(mean.abs() < 0.3, "{mean}");
}
