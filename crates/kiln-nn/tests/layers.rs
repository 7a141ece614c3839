//! Layers against PyTorch fixtures (forward, input and parameter gradients, buffers), safetensors
//! interop with PyTorch-saved models, and gradchecks of composite layers.
mod common;
use common::*;
use kiln_core::{gradcheck, DType, GradcheckOptions, Tensor};
use kiln_nn::*;
use serde_json::Value;

fn pair(v: &Value) -> (usize, usize) {
    match v {
        Value::Array(a) => (a[0].as_u64().unwrap() as usize, a[1].as_u64().unwrap() as usize),
        Value::Null => (usize::MAX, usize::MAX),
        x => (x.as_u64().unwrap() as usize, x.as_u64().unwrap() as usize),
    }
}

fn build(c: &Value, vs: &VarStore) -> Box<dyn Module> {
    let kw = &c["kwargs"];
    let u = |k: &str| kw[k].as_u64().unwrap() as usize;
    let u_or = |k: &str, d: usize| kw[k].as_u64().map(|v| v as usize).unwrap_or(d);
    match c["layer"].as_str().unwrap() {
        "Conv1d" => Box::new(
            Conv1d::new(
                vs,
                u("in_channels"),
                u("out_channels"),
                u("kernel_size"),
                Conv1dConfig {
                    stride: u_or("stride", 1),
                    padding: u_or("padding", 0),
                    dilation: u_or("dilation", 1),
                    groups: u_or("groups", 1),
                    bias: kw["bias"].as_bool().unwrap_or(true),
                },
            )
            .unwrap(),
        ),
        "Conv2d" => {
            let or = |k: &str, d: usize| if kw[k].is_null() { (d, d) } else { pair(&kw[k]) };
            Box::new(
                Conv2d::new(
                    vs,
                    u("in_channels"),
                    u("out_channels"),
                    pair(&kw["kernel_size"]),
                    Conv2dConfig {
                        stride: or("stride", 1),
                        padding: or("padding", 0),
                        dilation: or("dilation", 1),
                        groups: u_or("groups", 1),
                        bias: kw["bias"].as_bool().unwrap_or(true),
                    },
                )
                .unwrap(),
            )
        }
        "MaxPool2d" => {
            let k = pair(&kw["kernel_size"]);
            let s = if kw["stride"].is_null() { k } else { pair(&kw["stride"]) };
            let p = if kw["padding"].is_null() { (0, 0) } else { pair(&kw["padding"]) };
            Box::new(MaxPool2d {
                kernel: k,
                stride: s,
                padding: p,
                dilation: (1, 1),
                ceil_mode: false,
            })
        }
        "AvgPool2d" => Box::new(AvgPool2d::new(u("kernel_size"))),
        "LayerNorm" => {
            let ns: Vec<usize> = kw["normalized_shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as usize)
                .collect();
            Box::new(LayerNorm::with_options(vs, &ns, kw["eps"].as_f64().unwrap(), true).unwrap())
        }
        "Embedding" => Box::new(Embedding::new(vs, u("num_embeddings"), u("embedding_dim")).unwrap()),
        "BatchNorm1d" => Box::new(
            BatchNorm1d::new_1d_with(vs, u("num_features"), kw["eps"].as_f64().unwrap(), kw["momentum"].as_f64().unwrap()).unwrap(),
        ),
        "MultiheadAttention" => Box::new(
            MultiheadAttention::new(vs, u("embed_dim"), u("num_heads"))
                .unwrap()
                .causal(c["causal"].as_bool().unwrap()),
        ),
        other => panic!("unknown layer {other}"),
    }
}

#[test]
fn layers_match_pytorch() {
    let f = fixture("layers.json");
    let cases = f["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 15);
    for c in cases {
        let name = format!("{} {} {}", c["layer"], c["kwargs"], c["note"]);
        let vs = VarStore::new(DType::F64, 0);
        let m = build(c, &vs);
        let params = m.named_parameters();
        let want_params = c["params"].as_object().unwrap();
        assert_eq!(params.len(), want_params.len(), "{name}: parameter count");
        for (n, v) in &params {
            v.set(&tensor(&want_params[n], DType::F64)).unwrap();
        }
        for (n, b) in m.named_buffers() {
            let want = &c["buffers_before"][&n];
            let dt = b.get().dtype();
            b.set(&tensor(want, dt)).unwrap();
        }
        let dt = if c["input_dtype"] == "i64" { DType::I64 } else { DType::F64 };
        let x = tensor(&c["input"], dt);
        let x = if dt == DType::F64 { x.requires_grad(true).unwrap() } else { x };
        let out = m.forward(&x).unwrap();
        assert_close(&name, &out, &c["output"], 1e-10);
        let go = tensor(&c["grad_output"], DType::F64);
        let grads = out.mul(&go).unwrap().sum_all().unwrap().backward().unwrap();
        if !c["grad_input"].is_null() {
            assert_close(&format!("{name} grad_input"), grads.get(&x).unwrap(), &c["grad_input"], 1e-10);
        }
        for (n, v) in &params {
            assert_close(&format!("{name} grad {n}"), v.grad(&grads).unwrap(), &c["grad_params"][n], 1e-10);
        }
        for (n, b) in m.named_buffers() {
            assert_close(&format!("{name} buffer {n}"), &b.get(), &c["buffers_after"][&n], 1e-10);
        }
        if c["layer"] == "MultiheadAttention" {
            let mha_vs = VarStore::new(DType::F64, 0);
            let mha = MultiheadAttention::new(&mha_vs, 8, 2).unwrap();
            for ((_, a), (_, b)) in mha.named_parameters().iter().zip(&params) {
                a.set(&b.tensor()).unwrap();
            }
            let causal = c["causal"].as_bool().unwrap();
            let (_, w) = mha.attend(&x, None, causal).unwrap();
            assert_close(&format!("{name} attn_weights"), &w, &c["attn_weights"], 1e-10);
            if causal {
                let mask = tensor(&c["attn_mask"], DType::U8);
                let (o2, _) = mha.attend(&x, Some(&mask), false).unwrap();
                assert_close(&format!("{name} explicit mask"), &o2, &c["output"], 1e-10);
            }
        }
    }
}

fn interop(name: &str, model: &dyn Module) {
    let dir = format!("{}/tests/fixtures", env!("CARGO_MANIFEST_DIR"));
    serialize::load_module(model, format!("{dir}/interop_{name}.safetensors")).unwrap();
    let j = fixture(&format!("interop_{name}.json"));
    model.eval();
    let y = model.forward(&tensor(&j["input"], DType::F32)).unwrap();
    assert_eq!(y.dtype(), DType::F32);
    assert_close(&format!("interop {name}"), &y, &j["output"], 1e-5);
}

pub fn mlp(vs: &VarStore) -> Sequential {
    Sequential::new()
        .add(Linear::new(&vs.pp(0), 4, 8).unwrap())
        .add(ReLU)
        .add(Linear::new(&vs.pp(2), 8, 3).unwrap())
}

#[test]
fn interop_mlp_cnn_norm() {
    let vs = VarStore::new(DType::F32, 1);
    interop("mlp", &mlp(&vs));

    let vs = VarStore::new(DType::F32, 1);
    let k3 = Conv2dConfig {
        padding: (1, 1),
        ..Default::default()
    };
    let cnn = Sequential::new()
        .add(Conv2d::new(&vs.pp(0), 1, 4, (3, 3), k3).unwrap())
        .add(ReLU)
        .add(MaxPool2d::new(2))
        .add(Conv2d::new(&vs.pp(3), 4, 6, (3, 3), Conv2dConfig::default()).unwrap())
        .add(ReLU)
        .add(AdaptiveAvgPool2d::new(1))
        .add(Flatten::new())
        .add(Linear::new(&vs.pp(7), 6, 3).unwrap());
    interop("cnn", &cnn);

    let vs = VarStore::new(DType::F32, 1);
    let norm = Sequential::new()
        .add(Conv2d::new(&vs.pp(0), 2, 3, (3, 3), Conv2dConfig::default()).unwrap())
        .add(BatchNorm2d::new_2d(&vs.pp(1), 3).unwrap())
        .add(ReLU)
        .add(Flatten::new())
        .add(LayerNorm::new(&vs.pp(4), &[48]).unwrap())
        .add(Linear::new(&vs.pp(5), 48, 2).unwrap());
    interop("norm", &norm);
    let nbt = norm
        .named_buffers()
        .into_iter()
        .find(|(n, _)| n == "1.num_batches_tracked")
        .unwrap()
        .1;
    assert_eq!(nbt.get().to_vec::<i64>().unwrap(), vec![3]);
}

#[test]
fn gradcheck_composite_layers() {
    let opts = GradcheckOptions::default();
    let vs = VarStore::new(DType::F64, 3);
    let mut rng = kiln_core::Rng::new(5);
    // LayerNorm (input and affine parameters).
    let ln = LayerNorm::new(&vs.pp("ln"), &[4]).unwrap();
    let x = Tensor::randn([2, 4], 0.0, 1.0, DType::F64, &mut rng).unwrap();
    let w = Tensor::randn([4], 1.0, 0.3, DType::F64, &mut rng).unwrap();
    gradcheck(
        |v| {
            let y = v[0].sub(&v[0].mean(&[-1], true)?)?;
            let var = y.square()?.mean(&[-1], true)?;
            y.mul(&var.add_scalar(1e-5)?.rsqrt()?)?.mul(&v[1])
        },
        &[x.clone(), w],
        &opts,
    )
    .unwrap();
    gradcheck(|v| Ok(ln.forward(&v[0])?), &[x], &opts).unwrap();
    // Grouped, strided, dilated Conv2d through unfold2d.
    let conv = Conv2d::new(
        &vs.pp("c"),
        4,
        2,
        (2, 3),
        Conv2dConfig {
            stride: (2, 1),
            padding: (1, 1),
            dilation: (1, 2),
            groups: 2,
            bias: true,
        },
    )
    .unwrap();
    let x = Tensor::randn([1, 4, 5, 6], 0.0, 1.0, DType::F64, &mut rng).unwrap();
    let wt = conv.weight.tensor();
    gradcheck(
        |v| {
            // The layer reads its weight from a Var, so differentiate w.r.t. the weight by
            // rebuilding the grouped im2col product from the checked inputs.
            let cols = v[0].unfold2d((2, 3), (2, 1), (1, 1), (1, 2))?;
            let l = cols.dims()[2];
            let y = v[1].reshape([2, 1, 12])?.matmul(&cols.reshape([1, 2, 12, l])?)?;
            y.reshape([1, 2, l])
        },
        &[x.clone(), wt],
        &opts,
    )
    .unwrap();
    gradcheck(|v| Ok(conv.forward(&v[0])?), &[x], &opts).unwrap();
    // Causal multi-head attention w.r.t. its input.
    let mha = MultiheadAttention::new(&vs.pp("mha"), 4, 2).unwrap().causal(true);
    let x = Tensor::randn([1, 3, 4], 0.0, 1.0, DType::F64, &mut rng).unwrap();
    gradcheck(|v| Ok(mha.forward(&v[0])?), &[x], &opts).unwrap();
}

#[test]
fn conv_and_pool_shape_errors_are_clear() {
    let vs = VarStore::new(DType::F32, 0);
    let conv = Conv2d::new(&vs.pp("c"), 3, 4, (3, 3), Conv2dConfig::default()).unwrap();
    let e = conv
        .forward(&Tensor::zeros([1, 2, 8, 8], DType::F32).unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("[1, 2, 8, 8]") && e.contains("[4, 3, 3, 3]"), "{e}");
    let e = conv
        .forward(&Tensor::zeros([1, 3, 2, 2], DType::F32).unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("larger than input"), "{e}");
    assert!(Conv2d::new(
        &vs.pp("g"),
        3,
        4,
        (3, 3),
        Conv2dConfig {
            groups: 2,
            ..Default::default()
        }
    )
    .is_err());
    let e = MaxPool2d::new(2)
        .forward(&Tensor::zeros([4, 4], DType::F32).unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("[N, C, H, W]"), "{e}");
    let e = Linear::new(&vs.pp("l"), 5, 2)
        .unwrap()
        .forward(&Tensor::zeros([3, 4], DType::F32).unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("[3, 4]") && e.contains("in_features = 5"), "{e}");
}

#[test]
fn adaptive_avg_pool_uneven_windows() {
    // 5 -> 3: windows rows [0,2), [1,4), [3,5) as in PyTorch.
    let x = Tensor::arange(0.0, 25.0, 1.0, DType::F64).unwrap().reshape([1, 1, 5, 5]).unwrap();
    let y = AdaptiveAvgPool2d::new(3).forward(&x).unwrap().to_vec::<f64>().unwrap();
    let want = [3.0, 4.5, 6.0, 10.5, 12.0, 13.5, 18.0, 19.5, 21.0];
    for (a, b) in y.iter().zip(want) {
        assert!((a - b).abs() < 1e-12, "{y:?}");
    }
}

fn build2(c: &Value, vs: &VarStore) -> Box<dyn Module> {
    let kw = &c["kwargs"];
    let u = |k: &str| kw[k].as_u64().unwrap() as usize;
    let eps = kw["eps"].as_f64();
    let affine = |k: &str| kw[k].as_bool().unwrap_or(true);
    let shape = || -> Vec<usize> {
        kw["normalized_shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect()
    };
    match c["layer"].as_str().unwrap() {
        "GroupNorm" => Box::new(GroupNorm::with_options(vs, u("num_groups"), u("num_channels"), eps.unwrap(), affine("affine")).unwrap()),
        "RMSNorm" => Box::new(RMSNorm::with_options(vs, &shape(), eps, affine("elementwise_affine")).unwrap()),
        "InstanceNorm1d" => Box::new(InstanceNorm1d::new_1d_with(vs, u("num_features"), eps.unwrap(), affine("affine")).unwrap()),
        "InstanceNorm2d" => Box::new(InstanceNorm2d::new_2d_with(vs, u("num_features"), eps.unwrap(), affine("affine")).unwrap()),
        "Embedding" => {
            Box::new(Embedding::with_padding_idx(vs, u("num_embeddings"), u("embedding_dim"), kw["padding_idx"].as_i64().unwrap()).unwrap())
        }
        other => panic!("unknown layer {other}"),
    }
}

#[test]
fn norms_and_padded_embedding_match_pytorch() {
    let f = fixture("layers2.json");
    let cases = f["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 13);
    for c in cases {
        let name = format!("{} {} {}", c["layer"], c["kwargs"], c["note"]);
        let vs = VarStore::new(DType::F64, 0);
        let m = build2(c, &vs);
        let params = m.named_parameters();
        let want_params = c["params"].as_object().unwrap();
        assert_eq!(params.len(), want_params.len(), "{name}: parameter count");
        if c["layer"] == "Embedding" {
            // Before the fixture's values are loaded, the padding row starts at zeros.
            let p = c["kwargs"]["padding_idx"]
                .as_i64()
                .unwrap()
                .rem_euclid(c["kwargs"]["num_embeddings"].as_i64().unwrap());
            let w = params[0].1.tensor().to_vec2::<f64>().unwrap();
            assert!(w[p as usize].iter().all(|&v| v == 0.0), "{name}: padding row {:?}", w[p as usize]);
        }
        for (n, v) in &params {
            v.set(&tensor(&want_params[n], DType::F64)).unwrap();
        }
        let dt = if c["input_dtype"] == "i64" { DType::I64 } else { DType::F64 };
        let x = tensor(&c["input"], dt);
        let x = if dt == DType::F64 { x.requires_grad(true).unwrap() } else { x };
        let out = m.forward(&x).unwrap();
        assert_close(&name, &out, &c["output"], 1e-10);
        m.eval();
        assert_close(&format!("{name} eval"), &m.forward(&x).unwrap(), &c["output"], 1e-10);
        let go = tensor(&c["grad_output"], DType::F64);
        let grads = out.mul(&go).unwrap().sum_all().unwrap().backward().unwrap();
        if !c["grad_input"].is_null() {
            assert_close(&format!("{name} grad_input"), grads.get(&x).unwrap(), &c["grad_input"], 1e-10);
        }
        for (n, v) in &params {
            assert_close(&format!("{name} grad {n}"), v.grad(&grads).unwrap(), &c["grad_params"][n], 1e-10);
        }
    }
}

#[test]
fn gradcheck_new_norms_first_and_second_order() {
    let opts = GradcheckOptions::default();
    let vs = VarStore::new(DType::F64, 3);
    let mut rng = kiln_core::Rng::new(11);
    let mut randn = |s: &[usize]| Tensor::randn(s.to_vec(), 0.5, 1.5, DType::F64, &mut rng).unwrap();
    let mods: Vec<(&str, Box<dyn Module>, Tensor)> = vec![
        (
            "GroupNorm",
            Box::new(GroupNorm::new(&vs.pp("gn"), 2, 4).unwrap()),
            randn(&[2, 4, 3]),
        ),
        (
            "RMSNorm",
            Box::new(RMSNorm::with_options(&vs.pp("rms"), &[3], Some(1e-6), true).unwrap()),
            randn(&[2, 3]),
        ),
        (
            "InstanceNorm2d",
            Box::new(InstanceNorm2d::new_2d_with(&vs.pp("in"), 2, 1e-5, true).unwrap()),
            randn(&[2, 2, 2, 3]),
        ),
        (
            "InstanceNorm1d",
            Box::new(InstanceNorm1d::new_1d(&vs.pp("in1"), 3).unwrap()),
            randn(&[3, 4]),
        ),
    ];
    for (name, m, x) in &mods {
        gradcheck(|v| Ok(m.forward(&v[0])?), std::slice::from_ref(x), &opts).unwrap_or_else(|e| panic!("{name}: {e}"));
        kiln_core::gradgradcheck(|v| Ok(m.forward(&v[0])?), std::slice::from_ref(x), &opts).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn new_norm_and_embedding_errors_name_shapes() {
    let vs = VarStore::new(DType::F32, 0);
    let e = GroupNorm::new(&vs.pp("a"), 4, 6).unwrap_err().to_string();
    assert!(e.contains("GroupNorm") && e.contains('6') && e.contains('4'), "{e}");
    assert!(GroupNorm::new(&vs.pp("b"), 0, 6).is_err());
    let gn = GroupNorm::new(&vs.pp("c"), 2, 6).unwrap();
    let e = gn.forward(&Tensor::zeros([2, 4, 3], DType::F32).unwrap()).unwrap_err().to_string();
    assert!(e.contains("GroupNorm") && e.contains("[2, 4, 3]"), "{e}");
    assert!(gn.forward(&Tensor::zeros([6], DType::F32).unwrap()).is_err());
    let rms = RMSNorm::new(&vs.pp("d"), &[4]).unwrap();
    let e = rms.forward(&Tensor::zeros([2, 3], DType::F32).unwrap()).unwrap_err().to_string();
    assert!(e.contains("RMSNorm") && e.contains("[2, 3]") && e.contains("[4]"), "{e}");
    assert!(RMSNorm::new(&vs.pp("e"), &[]).is_err());
    let inorm = InstanceNorm2d::new_2d(&vs.pp("f"), 3).unwrap();
    for bad in [vec![2, 3, 4], vec![2, 4, 5, 5], vec![2, 3, 1, 1], vec![3, 1, 1]] {
        let e = inorm
            .forward(&Tensor::zeros(bad.clone(), DType::F32).unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("InstanceNorm2d") && e.contains(&format!("{:?}", bad)), "{e}");
    }
    let e = Embedding::with_padding_idx(&vs.pp("g"), 5, 2, 5).unwrap_err().to_string();
    assert!(e.contains("padding_idx 5") && e.contains('5'), "{e}");
    assert!(Embedding::with_padding_idx(&vs.pp("h"), 5, 2, -6).is_err());
    // f32 RMSNorm's default eps is f32's machine epsilon: a zero row stays finite.
    let y = rms.forward(&Tensor::zeros([1, 4], DType::F32).unwrap()).unwrap();
    assert_eq!(y.to_vec::<f32>().unwrap(), vec![0.0; 4]);
}
