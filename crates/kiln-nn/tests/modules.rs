//! Module plumbing: hierarchical names, counts, freezing, train/eval, initialisers, training helper.
use kiln_core::{DType, Rng, Tensor};
use kiln_nn::data::{DataLoader, TensorDataset};
use kiln_nn::init::*;
use kiln_nn::train::{fit_classifier, FitConfig};
use kiln_nn::*;

struct Block {
    layers: Sequential,
    norm: LayerNorm,
}

impl Module for Block {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.norm.forward(&self.layers.forward(x)?)
    }
    fn visit_parameters(&self, prefix: &str, f: &mut dyn FnMut(String, &kiln_core::Var)) {
        self.layers.visit_parameters(&module::join(prefix, "layers"), f);
        self.norm.visit_parameters(&module::join(prefix, "norm"), f);
    }
    fn set_training(&self, on: bool) {
        self.layers.set_training(on)
    }
}

#[test]
fn hierarchical_names_counts_and_freezing() {
    let vs = VarStore::new(DType::F32, 0);
    let b = Block {
        layers: Sequential::new()
            .add(Linear::new(&vs.pp("layers").pp(0), 3, 5).unwrap())
            .add(ReLU)
            .add(Dropout::new(0.5, 1).unwrap())
            .add(Linear::with_bias(&vs.pp("layers").pp(3), 5, 2, false).unwrap()),
        norm: LayerNorm::new(&vs.pp("norm"), &[2]).unwrap(),
    };
    let names: Vec<String> = b.named_parameters().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        ["layers.0.weight", "layers.0.bias", "layers.3.weight", "norm.weight", "norm.bias"]
    );
    let store: Vec<String> = vs.named_vars().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, store, "store names agree with the module tree");
    assert_eq!(b.num_parameters(), 15 + 5 + 10 + 2 + 2);
    assert_eq!(vs.num_parameters(), b.num_parameters());
    b.layers.get(0).unwrap().freeze();
    assert_eq!(b.num_trainable_parameters(), 14);
    let x = Tensor::ones([4, 3], DType::F32).unwrap();
    let g = b.forward(&x).unwrap().sum_all().unwrap().backward().unwrap();
    let p = b.named_parameters();
    assert!(p[0].1.grad(&g).is_none(), "frozen weight got a gradient");
    assert!(p[2].1.grad(&g).is_some());
    b.unfreeze();
    assert_eq!(b.num_trainable_parameters(), b.num_parameters());
    // Asking the store again for an existing name returns the same Var; a new shape is refused.
    let again = vs.pp("layers").pp(0).var("weight", &[5, 3], Init::Const(0.0)).unwrap();
    assert_eq!(again.id(), p[0].1.id());
    assert!(vs.pp("layers").pp(0).var("weight", &[2, 2], Init::Const(0.0)).is_err());
}

#[test]
fn dropout_train_eval_and_seeding() {
    let d = Dropout::new(0.25, 9).unwrap();
    let x = Tensor::ones([4000], DType::F64).unwrap();
    let y = d.forward(&x).unwrap().to_vec::<f64>().unwrap();
    let zeros = y.iter().filter(|&&v| v == 0.0).count() as f64 / 4000.0;
    assert!((zeros - 0.25).abs() < 0.03, "{zeros}");
    assert!(y.iter().all(|&v| v == 0.0 || (v - 4.0 / 3.0).abs() < 1e-12));
    let again = Dropout::new(0.25, 9).unwrap().forward(&x).unwrap().to_vec::<f64>().unwrap();
    assert_eq!(y, again, "same seed, same mask");
    let s = Sequential::new().add(Dropout::new(0.25, 9).unwrap());
    s.eval();
    assert!(!s.is_training());
    assert_eq!(s.forward(&x).unwrap().to_vec::<f64>().unwrap(), vec![1.0; 4000]);
    assert!(Dropout::new(1.5, 0).is_err());
}

#[test]
fn batchnorm_eval_uses_running_stats() {
    let vs = VarStore::new(DType::F64, 0);
    let bn = BatchNorm1d::new_1d(&vs, 2).unwrap();
    let x = Tensor::from_slice(&[1.0f64, 10.0, 3.0, 20.0], [2, 2]).unwrap();
    bn.forward(&x).unwrap();
    assert_eq!(bn.running_mean.as_ref().unwrap().get().to_vec::<f64>().unwrap(), vec![0.2, 1.5]);
    // unbiased batch variance: [2, 50]
    let rv = bn.running_var.as_ref().unwrap().get().to_vec::<f64>().unwrap();
    assert!((rv[0] - 1.1).abs() < 1e-12 && (rv[1] - 5.9).abs() < 1e-12, "{rv:?}");
    bn.eval();
    let y = bn.forward(&x).unwrap().to_vec::<f64>().unwrap();
    assert!((y[0] - (1.0 - 0.2) / (1.1f64 + 1e-5).sqrt()).abs() < 1e-12);
    assert_eq!(bn.num_batches_tracked.as_ref().unwrap().get().to_vec::<i64>().unwrap(), vec![1]);
    assert!(bn.forward(&Tensor::zeros([2, 3], DType::F64).unwrap()).is_err());
}

#[test]
fn initialisers_have_the_documented_spread() {
    let mut rng = Rng::new(1);
    let stats = |t: &Tensor| {
        let v = t.to_vec::<f64>().unwrap();
        let m = v.iter().sum::<f64>() / v.len() as f64;
        let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len() as f64;
        let max = v.iter().fold(0.0f64, |a, x| a.max(x.abs()));
        (m, var.sqrt(), max)
    };
    let (fi, fo) = (300.0f64, 200.0f64);
    let t = xavier_uniform(&[200, 300], 1.0, DType::F64, &mut rng).unwrap();
    let (m, s, mx) = stats(&t);
    let b = (6.0 / (fi + fo)).sqrt();
    assert!(m.abs() < 0.005 && (s - b / 3f64.sqrt()).abs() < 0.003 && mx <= b, "{m} {s} {mx}");
    let t = xavier_normal(&[200, 300], 2.0, DType::F64, &mut rng).unwrap();
    assert!((stats(&t).1 - 2.0 * (2.0 / (fi + fo)).sqrt()).abs() < 0.003);
    let t = kaiming_normal(&[200, 300], Nonlinearity::ReLU, FanMode::FanIn, DType::F64, &mut rng).unwrap();
    assert!((stats(&t).1 - (2.0 / fi).sqrt()).abs() < 0.003);
    let t = kaiming_uniform(&[200, 300], Nonlinearity::ReLU, FanMode::FanOut, DType::F64, &mut rng).unwrap();
    let (_, s, mx) = stats(&t);
    assert!((s - (2.0 / fo).sqrt()).abs() < 0.003 && mx <= (6.0 / fo).sqrt());
    // PyTorch's Linear default: uniform in ±1/sqrt(in).
    let vs = VarStore::new(DType::F64, 4);
    let l = Linear::new(&vs, 300, 200).unwrap();
    let (_, s, mx) = stats(&l.weight.tensor());
    assert!(mx <= 1.0 / fi.sqrt() && (s - 1.0 / (3.0 * fi).sqrt()).abs() < 0.002);
    assert_eq!(fans(&[8, 4, 3, 3]).unwrap(), (36, 72));
    assert!(fans(&[5]).is_err());
    // Seeded: same seed, same values.
    let a = xavier_uniform(&[3, 3], 1.0, DType::F32, &mut Rng::new(5)).unwrap();
    let b2 = xavier_uniform(&[3, 3], 1.0, DType::F32, &mut Rng::new(5)).unwrap();
    assert_eq!(a.to_vec::<f32>().unwrap(), b2.to_vec::<f32>().unwrap());
}

#[test]
fn embedding_and_activations() {
    let vs = VarStore::new(DType::F64, 0);
    let e = Embedding::new(&vs, 5, 3).unwrap();
    let idx = Tensor::from_slice(&[4i64, 0, 4, 1], [2, 2]).unwrap();
    let y = e.forward(&idx).unwrap();
    assert_eq!(y.dims(), &[2, 2, 3]);
    assert!(e.forward(&Tensor::from_slice(&[5i64], [1]).unwrap()).is_err());
    assert!(e.forward(&Tensor::zeros([1], DType::F64).unwrap()).is_err());
    let x = Tensor::from_slice(&[-1.0f64, 2.0], [2]).unwrap();
    assert_eq!(LeakyReLU(0.1).forward(&x).unwrap().to_vec::<f64>().unwrap(), vec![-0.1, 2.0]);
    let sm = Softmax(0).forward(&x).unwrap().to_vec::<f64>().unwrap();
    assert!((sm[0] + sm[1] - 1.0).abs() < 1e-15);
    assert_eq!(Identity.forward(&x).unwrap().to_vec::<f64>().unwrap(), vec![-1.0, 2.0]);
    let mods: Vec<Box<dyn Module>> = vec![
        Box::new(ReLU),
        Box::new(Sigmoid),
        Box::new(Tanh),
        Box::new(GELU),
        Box::new(SiLU),
        Box::new(Softplus),
        Box::new(LogSoftmax(0)),
    ];
    for m in mods {
        assert_eq!(m.forward(&x).unwrap().dims(), &[2]);
    }
}

#[test]
fn training_helper_learns_and_writes_csv_and_svg() {
    // Two well-separated blobs.
    let mut rng = Rng::new(3);
    let mut xs = Vec::new();
    let mut ys = Vec::new();
    for i in 0..128 {
        let c = (i % 2) as i64;
        xs.push(rng.normal() as f32 * 0.3 + if c == 1 { 2.0 } else { -2.0 });
        xs.push(rng.normal() as f32 * 0.3);
        ys.push(c);
    }
    let ds = TensorDataset::new(Tensor::from_vec(xs, [128, 2]).unwrap(), Tensor::from_vec(ys, [128]).unwrap()).unwrap();
    let vs = VarStore::new(DType::F32, 1);
    let model = Sequential::new()
        .add(Linear::new(&vs.pp(0), 2, 8).unwrap())
        .add(Tanh)
        .add(Linear::new(&vs.pp(2), 8, 2).unwrap());
    let mut opt = Sgd::new(model.parameters(), 0.1).unwrap().momentum(0.9);
    let mut loader = DataLoader::new(ds.clone(), 32).shuffle(true, 1);
    let mut sched = schedule::StepLr::new(0.1, 2, 0.5).unwrap();
    let hist = fit_classifier(
        &model,
        &mut opt,
        &mut loader,
        FitConfig {
            epochs: 4,
            progress: false,
            clip_grad_norm: Some(5.0),
            eval: Some(&ds),
            scheduler: Some(&mut sched),
            log_epochs: false,
        },
    )
    .unwrap();
    assert_eq!(hist.epochs.len(), 4);
    assert_eq!(hist.epochs.last().unwrap().eval_acc, Some(1.0));
    assert_eq!(hist.epochs.iter().map(|m| m.lr).collect::<Vec<_>>(), vec![0.1, 0.1, 0.05, 0.05]);
    let d = std::env::temp_dir().join(format!("kiln-nn-train-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    hist.write_csv(d.join("m.csv")).unwrap();
    let csv = std::fs::read_to_string(d.join("m.csv")).unwrap();
    assert!(csv.starts_with("epoch,train_loss,train_acc,eval_loss,eval_acc,lr"));
    assert_eq!(csv.lines().count(), 5);
    hist.plot_svg(d.join("c.svg"), "blobs").unwrap();
    let svg = std::fs::read_to_string(d.join("c.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("accuracy") && svg.contains("<polyline"));
}
