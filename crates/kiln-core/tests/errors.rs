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

/// The ops of issue #11's second batch: each bad input is an error whose message starts with the
/// op's name and shows what was wrong; nothing panics.
#[test]
fn second_batch_of_ops_name_themselves_in_errors() {
    let i = |v: &[i64], s: &[usize]| Tensor::from_slice(v, s.to_vec()).unwrap();
    let m = |v: &[u8], s: &[usize]| Tensor::from_slice(v, s.to_vec()).unwrap();
    let ein = |spec: &str, ops: &[Tensor]| Tensor::einsum(spec, ops).unwrap_err().to_string();
    let (a, b) = (z(&[2, 3]), z(&[3, 4]));
    let cases: Vec<(String, &[&str])> = vec![
        (z(&[2, 2]).outer(&z(&[2])).unwrap_err().to_string(), &["outer:", "[2, 2]", "1-d"]),
        (
            z(&[2]).outer(&Tensor::zeros([2], DType::F64).unwrap()).unwrap_err().to_string(),
            &["outer:", "f32", "f64"],
        ),
        (ein("ij,jk->ik", std::slice::from_ref(&a)), &["einsum:", "2 operands but 1"]),
        (ein("ij,jk->ik", &[a.clone(), z(&[4, 5])]), &["einsum:", "'j'", "size 3", "4"]),
        (ein("ijk,jk->ik", &[a.clone(), b.clone()]), &["einsum:", "\"ijk\"", "[2, 3]"]),
        (ein("ij,jk->ii", &[a.clone(), b.clone()]), &["einsum:", "'i' appears twice"]),
        (ein("ij,jk->iz", &[a.clone(), b.clone()]), &["einsum:", "'z'", "no input"]),
        (
            ein("...j...,jk->k", &[a.clone(), b.clone()]),
            &["einsum:", "more than one ellipsis"],
        ),
        (
            ein("...ijk,jk->k", &[a.clone(), b.clone()]),
            &["einsum:", "operand 0", "3 dims besides '...'", "only 2"],
        ),
        (ein("..ij,jk->k", &[a.clone(), b.clone()]), &["einsum:", "'.'"]),
        (
            ein("...j,...j->...j", &[a.clone(), z(&[4, 3])]),
            &["einsum:", "'...' (its dim 0)", "size 2", "4"],
        ),
        (ein("i1,jk", &[a.clone(), b.clone()]), &["einsum:", "'1'"]),
        (ein("ij->i->j", std::slice::from_ref(&a)), &["einsum:", "'-'"]),
        (
            ein("ii->i", std::slice::from_ref(&a)),
            &["einsum:", "'i' is repeated", "sizes 2 and 3"],
        ),
        (
            Tensor::einsum::<Tensor>("ij", &[]).unwrap_err().to_string(),
            &["einsum:", "at least one operand"],
        ),
        (ein("i->i", &[i(&[1, 2], &[2])]), &["einsum:", "i64"]),
        (
            ein("i,i->i", &[z(&[2]), Tensor::zeros([2], DType::F64).unwrap()]),
            &["einsum:", "f32", "f64"],
        ),
        (a.sort(2, false).unwrap_err().to_string(), &["sort:", "dimension 2", "[2, 3]"]),
        (a.argsort(-3, true).unwrap_err().to_string(), &["argsort:", "[2, 3]"]),
        (a.topk(4, 1, true, true).unwrap_err().to_string(), &["topk:", "k = 4", "size 3"]),
        (a.topk(1, 5, true, true).unwrap_err().to_string(), &["topk:", "dimension 5"]),
        (a.any(2, false).unwrap_err().to_string(), &["any:", "[2, 3]"]),
        (a.all(-3, false).unwrap_err().to_string(), &["all:", "[2, 3]"]),
        (a.logical_and(&z(&[2])).unwrap_err().to_string(), &["logical_and:", "[2, 3]", "[2]"]),
        (a.logical_or(&z(&[4, 1])).unwrap_err().to_string(), &["logical_or:", "[4, 1]"]),
        (a.logical_xor(&z(&[5])).unwrap_err().to_string(), &["logical_xor:", "[5]"]),
        (
            a.masked_select(&z(&[2, 3])).unwrap_err().to_string(),
            &["masked_select:", "u8", "f32"],
        ),
        (
            a.masked_select(&m(&[1, 0], &[2])).unwrap_err().to_string(),
            &["masked_select:", "[2, 3]", "[2]"],
        ),
        (
            a.scatter(1, &i(&[3], &[1, 1]), &z(&[1, 1])).unwrap_err().to_string(),
            &["scatter:", "index 3", "size 3"],
        ),
        (
            a.scatter(1, &i(&[-1], &[1, 1]), &z(&[1, 1])).unwrap_err().to_string(),
            &["scatter:", "index -1"],
        ),
        (
            a.scatter(0, &i(&[0, 1], &[1, 2]), &z(&[1, 1])).unwrap_err().to_string(),
            &["scatter:", "[1, 2]", "[1, 1]"],
        ),
        (
            a.scatter(0, &i(&[0], &[1]), &z(&[1])).unwrap_err().to_string(),
            &["scatter:", "[1]", "[2, 3]"],
        ),
        (
            a.scatter(0, &z(&[1, 1]), &z(&[1, 1])).unwrap_err().to_string(),
            &["scatter:", "i64", "f32"],
        ),
        (
            a.scatter(2, &i(&[0], &[1, 1]), &z(&[1, 1])).unwrap_err().to_string(),
            &["scatter:", "dimension 2"],
        ),
        (
            a.index_put(&[i(&[2], &[1])], &z(&[3]), false).unwrap_err().to_string(),
            &["index_put:", "index 2", "dimension 0 of size 2"],
        ),
        (
            a.index_put(&[i(&[0], &[1]), i(&[-1], &[1])], &z(&[1]), false)
                .unwrap_err()
                .to_string(),
            &["index_put:", "index -1", "dimension 1"],
        ),
        (
            a.index_put(&[], &z(&[3]), false).unwrap_err().to_string(),
            &["index_put:", "0 index tensors"],
        ),
        (
            a.index_put(&[i(&[0], &[1]), i(&[0], &[1]), i(&[0], &[1])], &z(&[1]), false)
                .unwrap_err()
                .to_string(),
            &["index_put:", "3 index tensors", "[2, 3]"],
        ),
        (
            a.index_put(&[i(&[0], &[1, 1])], &z(&[3]), false).unwrap_err().to_string(),
            &["index_put:", "1-d", "[1, 1]"],
        ),
        (
            a.index_put(&[i(&[0, 1], &[2]), i(&[0, 1, 2], &[3])], &z(&[1]), false)
                .unwrap_err()
                .to_string(),
            &["index_put:", "[2]", "[3]"],
        ),
        (
            a.index_put(&[i(&[0], &[1])], &z(&[2]), false).unwrap_err().to_string(),
            &["index_put:", "[2]", "[1, 3]"],
        ),
        (
            a.index_put(&[z(&[1])], &z(&[3]), false).unwrap_err().to_string(),
            &["index_put:", "i64"],
        ),
        (
            i(&[0, 0], &[2])
                .index_put(&[i(&[0], &[1])], &i(&[1], &[1]), true)
                .unwrap_err()
                .to_string(),
            &["index_put:", "f32 or f64", "i64"],
        ),
        (
            a.index_put(&[i(&[0], &[1])], &Tensor::zeros([3], DType::F64).unwrap(), false)
                .unwrap_err()
                .to_string(),
            &["index_put:", "f64"],
        ),
        (
            a.roll_dims(&[1], &[0, 1]).unwrap_err().to_string(),
            &["roll_dims:", "[1]", "[0, 1]"],
        ),
        (a.roll_dims(&[], &[]).unwrap_err().to_string(), &["roll_dims:"]),
        (
            a.roll_dims(&[1, 1], &[0, 2]).unwrap_err().to_string(),
            &["roll_dims:", "dimension 2"],
        ),
    ];
    for (got, want) in cases {
        for w in want {
            assert!(got.contains(w), "{got:?} should mention {w:?}");
        }
        assert!(got.starts_with(want[0]), "{got:?} should start with the op's name");
    }
}
