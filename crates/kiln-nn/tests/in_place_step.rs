//! `Optimizer::minimize` lets the graph go before the update, so SGD and Adam write over the
//! parameters and their buffers in place; the results must be the bits `backward_step` gives
//! with the graph alive (every update into new buffers).

use kiln_core::{DType, Tensor};
use kiln_nn::prelude::*;

fn mlp(seed: u64) -> (VarStore, Sequential) {
    let vs = VarStore::new(DType::F32, seed);
    let model = Sequential::new()
        .add(Linear::new(&vs.pp(0), 6, 16).unwrap())
        .add(Tanh)
        .add(Linear::new(&vs.pp(2), 16, 3).unwrap());
    (vs, model)
}

fn batch(step: usize) -> (Tensor, Tensor) {
    let x: Vec<f32> = (0..5 * 6).map(|i| ((i * 7 + step * 3) % 11) as f32 / 5.0 - 1.0).collect();
    let y: Vec<i64> = (0..5).map(|i| ((i + step) % 3) as i64).collect();
    (Tensor::from_slice(&x, [5, 6]).unwrap(), Tensor::from_slice(&y, [5]).unwrap())
}

fn param_bits(vs: &VarStore) -> Vec<Vec<u32>> {
    vs.all_vars()
        .iter()
        .map(|v| v.tensor().to_vec::<f32>().unwrap().iter().map(|x| x.to_bits()).collect())
        .collect()
}

/// Every element's bits, widened to f64 (exact for every float dtype).
fn bits(t: &Tensor) -> Vec<u64> {
    t.to_dtype(DType::F64)
        .unwrap()
        .to_vec::<f64>()
        .unwrap()
        .iter()
        .map(|v| v.to_bits())
        .collect()
}

type MakeOpt = fn(Vec<kiln_core::Var>) -> Box<dyn Optimizer>;

#[test]
fn minimize_writes_in_place_and_gives_the_bits_of_backward_step() {
    let optimisers: [(&str, MakeOpt, usize); 5] = [
        ("sgd", |v| Box::new(Sgd::new(v, 0.1).unwrap()), 0),
        ("sgd wd", |v| Box::new(Sgd::new(v, 0.1).unwrap().weight_decay(0.01)), 0),
        ("sgd momentum", |v| Box::new(Sgd::new(v, 0.1).unwrap().momentum(0.9)), 1),
        (
            "sgd nesterov wd",
            |v| Box::new(Sgd::new(v, 0.1).unwrap().momentum(0.9).nesterov(true).unwrap().weight_decay(1e-3)),
            1,
        ),
        ("adam", |v| Box::new(Adam::new(v, 0.01).unwrap().weight_decay(1e-3)), 1),
    ];
    for (name, make, first_in_place) in optimisers {
        let (vs_a, model_a) = mlp(3);
        let (vs_b, model_b) = mlp(3);
        let mut opt_a = make(vs_a.all_vars());
        let mut opt_b = make(vs_b.all_vars());
        let mut ptrs: Option<Vec<usize>> = None;
        for step in 0..6 {
            let (x, y) = batch(step);
            // Graph alive during the step: new buffers.
            let loss_a = cross_entropy(&model_a.forward(&x).unwrap(), &y).unwrap();
            opt_a.backward_step(&loss_a).unwrap();
            // Graph gone first: in place once the optimiser owns its buffers.
            let loss_b = cross_entropy(&model_b.forward(&x).unwrap(), &y).unwrap();
            let loss_b = opt_b.minimize(loss_b).unwrap();
            assert_eq!(
                loss_a.item().unwrap().to_bits(),
                loss_b.item().unwrap().to_bits(),
                "{name} step {step}"
            );
            assert!(!loss_b.requires_grad_flag());
            assert_eq!(param_bits(&vs_a), param_bits(&vs_b), "{name} step {step}");
            let now: Vec<usize> = vs_b.all_vars().iter().map(|v| v.tensor().data_ptr()).collect();
            if step > first_in_place {
                assert_eq!(Some(&now), ptrs.as_ref(), "{name} step {step}: updated in place");
            }
            ptrs = Some(now);
        }
        // The optimiser's state is the same too (the buffers written in place included).
        let state = |o: &dyn Optimizer| o.state_tensors().into_iter().map(|(k, t)| (k, bits(&t))).collect::<Vec<_>>();
        assert_eq!(state(&*opt_a), state(&*opt_b), "{name}");
    }
}

#[test]
fn a_value_kept_from_before_the_step_is_not_changed() {
    let (vs, model) = mlp(4);
    let mut opt = Sgd::new(vs.all_vars(), 0.1).unwrap().momentum(0.9);
    let (x, y) = batch(0);
    let loss = cross_entropy(&model.forward(&x).unwrap(), &y).unwrap();
    opt.minimize(loss).unwrap();
    let kept: Vec<Tensor> = vs.all_vars().iter().map(|v| v.tensor()).collect();
    let kept_bits: Vec<Vec<f32>> = kept.iter().map(|t| t.to_vec::<f32>().unwrap()).collect();
    let (x, y) = batch(1);
    let loss = cross_entropy(&model.forward(&x).unwrap(), &y).unwrap();
    opt.minimize(loss).unwrap();
    for ((t, b), v) in kept.iter().zip(&kept_bits).zip(vs.all_vars()) {
        assert_eq!(&t.to_vec::<f32>().unwrap(), b, "a kept handle sees its old values");
        assert_ne!(&v.tensor().to_vec::<f32>().unwrap(), b, "the parameter moved");
    }
}
