//! `#[derive(Module)]`: names, counts, buffers, train/eval, optimiser coverage and checkpoints of a
//! custom model built from nested derived modules, `Vec`s and `Option`s; and the converted
//! built-in layers keep PyTorch's state-dict names.
use kiln_core::{DType, Rng, Tensor, Var};
use kiln_nn::serialize::{load_module, save_module, state_dict};
use kiln_nn::*;
use std::collections::HashMap;
use std::sync::atomic::AtomicBool;

/// A residual block: a derived module holding other modules, a buffer-carrying BatchNorm and a
/// bare parameter.
#[derive(Module)]
struct Block {
    fc: Linear,
    norm: BatchNorm1d,
    gate: Var,
}

impl Block {
    fn new(vs: &VarStore, width: usize) -> Result<Block> {
        Ok(Block {
            fc: Linear::new(&vs.pp("fc"), width, width)?,
            norm: BatchNorm1d::new_1d(&vs.pp("norm"), width)?,
            gate: vs.var("gate", &[width], Init::Const(0.5))?,
        })
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.norm.forward(&self.fc.forward(x)?)?.relu()?;
        Ok(x.add(&h.mul(&self.gate.tensor())?)?)
    }
}

/// The custom model: a `Vec` of blocks, an optional head (absent in one instance), a renamed
/// field, a parameter list, a tuple-struct child and fields that hold no state.
#[derive(Module)]
struct Net {
    stem: Linear,
    blocks: Vec<Block>,
    head: Option<Linear>,
    #[module(rename = "cls_token")]
    token: Var,
    extra: Vec<Var>,
    scale: Scale,
    width: usize,
    name: String,
    // A generator is not state; without `skip` this field would not compile.
    #[module(skip)]
    _rng: std::sync::Mutex<Rng>,
}

/// A tuple struct: its fields are named `0`, `1`, ...
#[derive(Module)]
struct Scale(Var, Option<Var>);

impl Scale {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = x.mul(&self.0.tensor())?;
        Ok(match &self.1 {
            Some(b) => y.add(&b.tensor())?,
            None => y,
        })
    }
}

impl Net {
    fn new(vs: &VarStore, with_head: bool) -> Result<Net> {
        let width = 4;
        Ok(Net {
            stem: Linear::new(&vs.pp("stem"), 3, width)?,
            blocks: (0..2).map(|i| Block::new(&vs.pp("blocks").pp(i), width)).collect::<Result<_>>()?,
            head: if with_head {
                Some(Linear::new(&vs.pp("head"), width, 2)?)
            } else {
                None
            },
            token: vs.var("cls_token", &[width], Init::Const(0.0))?,
            extra: (0..2)
                .map(|i| vs.pp("extra").var(&i.to_string(), &[1], Init::Const(1.0)))
                .collect::<Result<_>>()?,
            scale: Scale(vs.pp("scale").var("0", &[1], Init::Const(1.0))?, None),
            width,
            name: "net".into(),
            _rng: std::sync::Mutex::new(Rng::new(0)),
        })
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = self.stem.forward(x)?.add(&self.token.tensor())?;
        for b in &self.blocks {
            h = b.forward(&h)?;
        }
        for e in &self.extra {
            h = h.mul(&e.tensor())?;
        }
        h = self.scale.forward(&h)?;
        assert_eq!(h.dims()[1], self.width, "{}: block width", self.name);
        match &self.head {
            Some(head) => head.forward(&h),
            None => Ok(h),
        }
    }
}

fn names<T>(v: Vec<(String, T)>) -> Vec<String> {
    v.into_iter().map(|(n, _)| n).collect()
}

const PARAMS: [&str; 16] = [
    "stem.weight",
    "stem.bias",
    "blocks.0.fc.weight",
    "blocks.0.fc.bias",
    "blocks.0.norm.weight",
    "blocks.0.norm.bias",
    "blocks.0.gate",
    "blocks.1.fc.weight",
    "blocks.1.fc.bias",
    "blocks.1.norm.weight",
    "blocks.1.norm.bias",
    "blocks.1.gate",
    "cls_token",
    "extra.0",
    "extra.1",
    "scale.0",
];

#[test]
fn names_counts_and_buffers_follow_the_fields() {
    let vs = VarStore::new(DType::F32, 0);
    let net = Net::new(&vs, false).unwrap();
    assert_eq!(names(net.named_parameters()), PARAMS);
    // The derived names are the VarStore's names: the two checkpoints agree.
    assert_eq!(names(net.named_parameters()), names(vs.named_vars()));
    // stem 3·4+4, each block 16+4 (fc) + 4+4 (norm) + 4 (gate), token 4, extras 2, scale 1.
    assert_eq!(net.num_parameters(), 16 + 2 * 32 + 4 + 2 + 1);
    assert_eq!(
        names(net.named_buffers()),
        [
            "blocks.0.norm.running_mean",
            "blocks.0.norm.running_var",
            "blocks.0.norm.num_batches_tracked",
            "blocks.1.norm.running_mean",
            "blocks.1.norm.running_var",
            "blocks.1.norm.num_batches_tracked",
        ]
    );
    // state_dict is parameters then buffers, as before the derive.
    let sd = names(state_dict(&net));
    assert_eq!(sd.len(), 16 + 6);
    assert_eq!(sd[..16], PARAMS);

    // With the optional head present it is reported, after `blocks` (declaration order).
    let vs2 = VarStore::new(DType::F32, 0);
    let with_head = Net::new(&vs2, true).unwrap();
    let n = names(with_head.named_parameters());
    assert_eq!(n.len(), 18);
    assert_eq!(n[12..14], ["head.weight", "head.bias"]);
    assert_eq!(with_head.num_parameters(), net.num_parameters() + 4 * 2 + 2);
    // A `None` in a tuple field is skipped like `bias=None`.
    let s = Scale(
        vs2.var("s", &[1], Init::Const(2.0)).unwrap(),
        Some(vs2.var("t", &[1], Init::Const(1.0)).unwrap()),
    );
    assert_eq!(names(s.named_parameters()), ["0", "1"]);
}

#[test]
fn train_and_eval_reach_nested_vec_and_option_children() {
    let vs = VarStore::new(DType::F32, 0);
    let net = Net::new(&vs, true).unwrap();
    assert!(net.is_training());
    net.eval();
    assert!(!net.is_training());
    assert!(net.blocks.iter().all(|b| !b.norm.is_training()), "eval did not reach Vec<Block>");
    // Eval mode uses the running statistics (zeros / ones at start), so a batch of one works.
    let y = net.forward(&Tensor::ones([1, 3], DType::F32).unwrap()).unwrap();
    assert_eq!(y.dims(), &[1, 2]);
    net.train();
    assert!(net.is_training() && net.blocks[1].norm.is_training());
    // A module with its own flag (`#[module(training)]`) reports that flag.
    #[derive(Module)]
    struct Flagged {
        inner: Linear,
        #[module(training)]
        training: AtomicBool,
    }
    impl Flagged {
        fn forward(&self, x: &Tensor) -> Result<Tensor> {
            self.inner.forward(x)
        }
    }
    let f = Flagged {
        inner: Linear::new(&vs.pp("f"), 2, 2).unwrap(),
        training: AtomicBool::new(true),
    };
    f.eval();
    assert!(!f.is_training());
    f.train();
    assert!(f.is_training());
    assert_eq!(
        Module::forward(&f, &Tensor::ones([1, 2], DType::F32).unwrap()).unwrap().dims(),
        &[1, 2]
    );
}

#[test]
fn an_optimiser_built_from_parameters_updates_every_one() {
    let vs = VarStore::new(DType::F64, 3);
    let net = Net::new(&vs, true).unwrap();
    let before: Vec<Vec<f64>> = net.parameters().iter().map(|v| v.tensor().to_vec_f64().unwrap()).collect();
    let mut opt = Sgd::new(net.parameters(), 0.1).unwrap();
    let mut rng = Rng::new(1);
    let x = Tensor::from_vec((0..24).map(|_| rng.uniform01() - 0.5).collect::<Vec<f64>>(), [8, 3]).unwrap();
    let loss = net.forward(&x).unwrap().square().unwrap().sum_all().unwrap();
    opt.backward_step(&loss).unwrap();
    let after = net.parameters();
    assert_eq!(after.len(), 18);
    for ((name, v), b) in net.named_parameters().iter().zip(&before) {
        assert_ne!(&v.tensor().to_vec_f64().unwrap(), b, "{name} was not updated");
    }
    // Every store parameter is among the module's (same Vars, not copies).
    let ids: Vec<_> = after.iter().map(|v| v.id()).collect();
    assert!(vs.all_vars().iter().all(|v| ids.contains(&v.id())));
    // A training step also updated the running statistics of the nested BatchNorms.
    let nb = net
        .named_buffers()
        .into_iter()
        .find(|(n, _)| n == "blocks.1.norm.num_batches_tracked")
        .unwrap()
        .1;
    assert_eq!(nb.get().to_vec::<i64>().unwrap(), [1]);
}

#[test]
fn save_and_load_round_trip_through_derived_names() {
    let dir = std::env::temp_dir().join(format!("kiln-nn-derive-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("net.safetensors");
    let a = Net::new(&VarStore::new(DType::F32, 1), true).unwrap();
    // Move the running statistics off their initial values so buffers are checked too.
    a.forward(&Tensor::from_vec((0..15).map(|i| i as f32 * 0.3).collect::<Vec<f32>>(), [5, 3]).unwrap())
        .unwrap();
    save_module(&a, &path).unwrap();
    let b = Net::new(&VarStore::new(DType::F32, 2), true).unwrap();
    let differs = |x: &Net, y: &Net| {
        state_dict(x)
            .iter()
            .zip(state_dict(y))
            .any(|((_, s), (_, t))| s.to_vec_f64().unwrap() != t.to_vec_f64().unwrap())
    };
    assert!(differs(&a, &b), "different seeds should give different weights");
    load_module(&b, &path).unwrap();
    let sa: HashMap<String, Vec<f64>> = state_dict(&a).into_iter().map(|(n, t)| (n, t.to_vec_f64().unwrap())).collect();
    for (n, t) in state_dict(&b) {
        assert_eq!(sa[&n], t.to_vec_f64().unwrap(), "{n} after load");
    }
    // A model without the optional head cannot load the checkpoint strictly: the file has
    // `head.weight`, which that model does not.
    let c = Net::new(&VarStore::new(DType::F32, 2), false).unwrap();
    let err = load_module(&c, &path).unwrap_err().to_string();
    assert!(err.contains("head.") && err.contains("unexpected"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn converted_builtins_keep_pytorch_state_dict_names() {
    let vs = VarStore::new(DType::F32, 0);
    let mha = MultiheadAttention::new(&vs.pp("attn"), 8, 2).unwrap();
    assert_eq!(
        names(mha.named_parameters()),
        ["in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"]
    );
    let bn = BatchNorm2d::new_2d(&vs.pp("bn"), 3).unwrap();
    assert_eq!(names(bn.named_parameters()), ["weight", "bias"]);
    assert_eq!(names(bn.named_buffers()), ["running_mean", "running_var", "num_batches_tracked"]);
    let seq = Sequential::new()
        .add(Linear::with_bias(&vs.pp("s0"), 2, 3, false).unwrap())
        .add(ReLU)
        .add(LayerNorm::new(&vs.pp("s2"), &[3]).unwrap())
        .add(Embedding::new(&vs.pp("s3"), 4, 2).unwrap());
    assert_eq!(names(seq.named_parameters()), ["0.weight", "2.weight", "2.bias", "3.weight"]);
    // A Sequential of BatchNorms forwards eval and reports its children's mode.
    let s2 = Sequential::new().add(BatchNorm1d::new_1d(&vs.pp("b"), 2).unwrap());
    s2.eval();
    assert!(!s2.is_training());
    assert_eq!(names(s2.named_buffers())[0], "0.running_mean");
}

/// A generic wrapper derives too; the bound is the user's to write.
#[derive(Module)]
struct Residual<M: Module> {
    inner: M,
}

impl<M: Module> Residual<M> {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.add(&self.inner.forward(x)?)?)
    }
}

#[test]
fn generic_wrappers_and_boxed_children() {
    let vs = VarStore::new(DType::F64, 0);
    let r = Residual {
        inner: Linear::new(&vs.pp("inner"), 2, 2).unwrap(),
    };
    assert_eq!(names(r.named_parameters()), ["inner.weight", "inner.bias"]);
    let x = Tensor::from_slice(&[1.0f64, -2.0], [1, 2]).unwrap();
    let want = x.add(&r.inner.forward(&x).unwrap()).unwrap().to_vec_f64().unwrap();
    // Through the trait object: `Module::forward` calls the inherent `forward`.
    let boxed: Box<dyn Module> = Box::new(r);
    assert_eq!(boxed.forward(&x).unwrap().to_vec_f64().unwrap(), want);
    #[derive(Module)]
    struct Holder {
        children: [Box<dyn Module>; 2],
    }
    impl Holder {
        fn forward(&self, x: &Tensor) -> Result<Tensor> {
            self.children[1].forward(&self.children[0].forward(x)?)
        }
    }
    let h = Holder {
        children: [boxed, Box::new(Linear::new(&vs.pp("h"), 2, 1).unwrap())],
    };
    assert_eq!(
        names(h.named_parameters()),
        [
            "children.0.inner.weight",
            "children.0.inner.bias",
            "children.1.weight",
            "children.1.bias"
        ]
    );
    assert_eq!(h.forward(&x).unwrap().dims(), &[1, 1]);
}
