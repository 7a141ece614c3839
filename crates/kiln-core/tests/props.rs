//! Property tests: broadcasting and view ops against a naive reference on random shapes.

use kiln_core::{DType, Tensor};
use proptest::prelude::*;

fn naive_index(shape: &[usize], flat: usize) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    let mut r = flat;
    for d in (0..shape.len()).rev() {
        idx[d] = r % shape[d];
        r /= shape[d];
    }
    idx
}

fn naive_at(data: &[f64], shape: &[usize], idx: &[usize]) -> f64 {
    // Broadcast read: dims of size 1 stretch; missing leading dims are dropped.
    let off = idx.len() - shape.len();
    let mut flat = 0;
    for d in 0..shape.len() {
        let i = if shape[d] == 1 { 0 } else { idx[off + d] };
        flat = flat * shape[d] + i;
    }
    data[flat]
}

fn broadcastable_pair() -> impl Strategy<Value = (Vec<usize>, Vec<usize>)> {
    prop::collection::vec(1usize..4, 1..4).prop_flat_map(|out| {
        let n = out.len();
        (
            Just(out),
            prop::collection::vec(any::<bool>(), n),
            prop::collection::vec(any::<bool>(), n),
            0..=n,
        )
            .prop_map(|(out, ma, mb, drop)| {
                let a: Vec<usize> = out.iter().zip(&ma).map(|(&d, &m)| if m { 1 } else { d }).collect();
                let b: Vec<usize> = out.iter().zip(&mb).map(|(&d, &m)| if m { 1 } else { d }).collect();
                (a[drop.min(a.len() - 1)..].to_vec(), b)
            })
    })
}

proptest! {
    #[test]
    fn broadcast_binary_ops_match_naive((sa, sb) in broadcastable_pair(), seed in 0u64..1000) {
        let na: usize = sa.iter().product();
        let nb: usize = sb.iter().product();
        let da: Vec<f64> = (0..na).map(|i| ((i as u64 * 7 + seed) % 13) as f64 - 6.0).collect();
        let db: Vec<f64> = (0..nb).map(|i| ((i as u64 * 5 + seed) % 11) as f64 + 1.0).collect();
        let a = Tensor::from_vec(da.clone(), sa.clone()).unwrap();
        let b = Tensor::from_vec(db.clone(), sb.clone()).unwrap();
        let out = a.mul(&b).unwrap().sub(&b).unwrap();
        let rank = sa.len().max(sb.len());
        let mut oshape = vec![1; rank];
        for (i, o) in oshape.iter_mut().enumerate() {
            let ga = if i + sa.len() >= rank { sa[i + sa.len() - rank] } else { 1 };
            let gb = if i + sb.len() >= rank { sb[i + sb.len() - rank] } else { 1 };
            *o = ga.max(gb);
        }
        prop_assert_eq!(out.dims(), oshape.as_slice());
        let got = out.to_vec::<f64>().unwrap();
        for (flat, g) in got.iter().enumerate() {
            let idx = naive_index(&oshape, flat);
            let want = naive_at(&da, &sa, &idx) * naive_at(&db, &sb, &idx) - naive_at(&db, &sb, &idx);
            prop_assert_eq!(*g, want);
        }
    }

    #[test]
    fn permute_then_contiguous_matches_naive(dims in prop::collection::vec(1usize..5, 1..5), rot in 0usize..4) {
        let n: usize = dims.iter().product();
        let r = dims.len();
        let perm: Vec<usize> = (0..r).map(|i| (i + rot) % r).collect();
        let data: Vec<f64> = (0..n).map(|i| i as f64).collect();
        let t = Tensor::from_vec(data.clone(), dims.clone()).unwrap();
        let p = t.permute(&perm).unwrap();
        let pdims: Vec<usize> = perm.iter().map(|&q| dims[q]).collect();
        prop_assert_eq!(p.dims(), pdims.as_slice());
        let got = p.contiguous().unwrap().to_vec::<f64>().unwrap();
        for (flat, g) in got.iter().enumerate() {
            let pidx = naive_index(&pdims, flat);
            let mut idx = vec![0; r];
            for (k, &q) in perm.iter().enumerate() { idx[q] = pidx[k]; }
            prop_assert_eq!(*g, naive_at(&data, &dims, &idx));
        }
        // A reduction over the strided view agrees with one over the copy.
        let s1 = p.sum(&[0], false).unwrap().to_vec::<f64>().unwrap();
        let s2 = p.contiguous().unwrap().sum(&[0], false).unwrap().to_vec::<f64>().unwrap();
        prop_assert_eq!(s1, s2);
    }

    #[test]
    fn narrow_and_cat_round_trip(rows in 1usize..6, cols in 2usize..7, cut in 1usize..6, dim in 0isize..2) {
        let t = Tensor::arange(0.0, (rows * cols) as f64, 1.0, DType::F64).unwrap().reshape([rows, cols]).unwrap();
        let size = if dim == 0 { rows } else { cols };
        let cut = cut % size;
        let a = t.narrow(dim, 0, cut).unwrap();
        let b = t.narrow(dim, cut, size - cut).unwrap();
        let back = Tensor::cat(&[a, b], dim).unwrap();
        prop_assert_eq!(back.to_vec::<f64>().unwrap(), t.to_vec::<f64>().unwrap());
    }

    #[test]
    fn sum_over_any_dims_matches_naive(dims in prop::collection::vec(1usize..5, 1..4), mask in prop::collection::vec(any::<bool>(), 3)) {
        let n: usize = dims.iter().product();
        let data: Vec<f64> = (0..n).map(|i| (i % 7) as f64).collect();
        let t = Tensor::from_vec(data.clone(), dims.clone()).unwrap();
        let red: Vec<isize> = (0..dims.len()).filter(|&d| mask[d]).map(|d| d as isize).collect();
        let s = t.sum(&red, true).unwrap();
        let got = s.to_vec::<f64>().unwrap();
        let mut want = vec![0.0; got.len()];
        for (flat, v) in data.iter().enumerate() {
            let idx = naive_index(&dims, flat);
            let mut o = 0;
            for (d, &i) in idx.iter().enumerate() {
                let sd = s.dims()[d];
                o = o * sd + if red.contains(&(d as isize)) || red.is_empty() { 0 } else { i };
            }
            want[o] += v;
        }
        prop_assert_eq!(got, want);
    }
}
