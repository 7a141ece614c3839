//! Transposed convolutions, 1-d pooling, ceil_mode / count_include_pad / divisor_override pooling
//! and BatchNorm without affine parameters or running statistics: PyTorch fixtures
//! (fixtures/layers3.json from `scripts/gen_nn_fixtures.py layers3`), gradchecks and config errors.
mod common;
use common::*;
use kiln_core::{gradcheck, gradgradcheck, DType, GradcheckOptions, Rng, Tensor};
use kiln_nn::functional::{conv_transpose1d, conv_transpose2d};
use kiln_nn::*;
use serde_json::Value;

/// A PyTorch int-or-pair argument, or `default` (both axes) when absent.
fn pair_or(v: &Value, default: usize) -> (usize, usize) {
    match v {
        Value::Null => (default, default),
        Value::Array(a) => (a[0].as_u64().unwrap() as usize, a[1].as_u64().unwrap() as usize),
        x => (x.as_u64().unwrap() as usize, x.as_u64().unwrap() as usize),
    }
}

/// Transposed convolutions called as `forward(x, output_size=size)`; `layer` is flattened, so the
/// parameters keep the layer's own names (`weight`, `bias`).
macro_rules! with_output_size {
    ($name:ident, $layer:ty) => {
        #[derive(Module)]
        struct $name {
            #[module(flatten)]
            layer: $layer,
            size: Vec<usize>,
        }
        impl $name {
            fn forward(&self, x: &Tensor) -> Result<Tensor> {
                self.layer.forward_with_output_size(x, &self.size)
            }
        }
    };
}
with_output_size!(Ct1WithSize, ConvTranspose1d);
with_output_size!(Ct2WithSize, ConvTranspose2d);

fn build(c: &Value, vs: &VarStore) -> Box<dyn Module> {
    let Some(size) = c.get("output_size") else {
        return build_layer(c, vs);
    };
    let size: Vec<usize> = size.as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
    // Rebuild with the concrete type (same kwargs, same store names) to reach forward_with_output_size.
    match c["layer"].as_str().unwrap() {
        "ConvTranspose1d" => Box::new(Ct1WithSize { layer: ct1(c, vs), size }),
        "ConvTranspose2d" => Box::new(Ct2WithSize { layer: ct2(c, vs), size }),
        other => panic!("output_size on {other}"),
    }
}

fn ct1(c: &Value, vs: &VarStore) -> ConvTranspose1d {
    let kw = &c["kwargs"];
    let u_or = |k: &str, d: usize| kw[k].as_u64().map_or(d, |v| v as usize);
    let cfg = ConvTranspose1dConfig {
        stride: u_or("stride", 1),
        padding: u_or("padding", 0),
        output_padding: u_or("output_padding", 0),
        dilation: u_or("dilation", 1),
        groups: u_or("groups", 1),
        bias: kw["bias"].as_bool().unwrap_or(true),
    };
    ConvTranspose1d::new(vs, u_or("in_channels", 0), u_or("out_channels", 0), u_or("kernel_size", 0), cfg).unwrap()
}

fn ct2(c: &Value, vs: &VarStore) -> ConvTranspose2d {
    let kw = &c["kwargs"];
    let cfg = ConvTranspose2dConfig {
        stride: pair_or(&kw["stride"], 1),
        padding: pair_or(&kw["padding"], 0),
        output_padding: pair_or(&kw["output_padding"], 0),
        dilation: pair_or(&kw["dilation"], 1),
        groups: kw["groups"].as_u64().map_or(1, |v| v as usize),
        bias: kw["bias"].as_bool().unwrap_or(true),
    };
    let u = |k: &str| kw[k].as_u64().unwrap() as usize;
    ConvTranspose2d::new(vs, u("in_channels"), u("out_channels"), pair_or(&kw["kernel_size"], 0), cfg).unwrap()
}

fn build_layer(c: &Value, vs: &VarStore) -> Box<dyn Module> {
    let kw = &c["kwargs"];
    let u = |k: &str| kw[k].as_u64().unwrap() as usize;
    let u_or = |k: &str, d: usize| kw[k].as_u64().map_or(d, |v| v as usize);
    let flag = |k: &str, d: bool| kw[k].as_bool().unwrap_or(d);
    match c["layer"].as_str().unwrap() {
        "ConvTranspose1d" => Box::new(ct1(c, vs)),
        "ConvTranspose2d" => Box::new(ct2(c, vs)),
        "MaxPool1d" => {
            let k = u("kernel_size");
            Box::new(MaxPool1d {
                dilation: u_or("dilation", 1),
                ..MaxPool1d::with(k, u_or("stride", k), u_or("padding", 0)).ceil_mode(flag("ceil_mode", false))
            })
        }
        "MaxPool2d" => {
            let k = pair_or(&kw["kernel_size"], 0);
            Box::new(MaxPool2d {
                kernel: k,
                stride: if kw["stride"].is_null() { k } else { pair_or(&kw["stride"], 0) },
                padding: pair_or(&kw["padding"], 0),
                dilation: pair_or(&kw["dilation"], 1),
                ceil_mode: flag("ceil_mode", false),
            })
        }
        "AvgPool1d" => {
            let k = u("kernel_size");
            Box::new(
                AvgPool1d::with(k, u_or("stride", k), u_or("padding", 0))
                    .ceil_mode(flag("ceil_mode", false))
                    .count_include_pad(flag("count_include_pad", true)),
            )
        }
        "AvgPool2d" => {
            let k = pair_or(&kw["kernel_size"], 0);
            Box::new(AvgPool2d {
                kernel: k,
                stride: if kw["stride"].is_null() { k } else { pair_or(&kw["stride"], 0) },
                padding: pair_or(&kw["padding"], 0),
                ceil_mode: flag("ceil_mode", false),
                count_include_pad: flag("count_include_pad", true),
                divisor_override: kw["divisor_override"].as_u64().map(|v| v as usize),
            })
        }
        l @ ("BatchNorm1d" | "BatchNorm2d") => {
            let cfg = BatchNormConfig {
                eps: kw["eps"].as_f64().unwrap_or(1e-5),
                // PyTorch's `momentum=None` arrives as null; an absent key is the default 0.1.
                momentum: match kw.get("momentum") {
                    Some(Value::Null) => None,
                    Some(m) => Some(m.as_f64().unwrap()),
                    None => Some(0.1),
                },
                affine: flag("affine", true),
                track_running_stats: flag("track_running_stats", true),
            };
            let bn = if l == "BatchNorm1d" {
                BatchNorm::new_1d_with_config(vs, u("num_features"), &cfg)
            } else {
                BatchNorm::new_2d_with_config(vs, u("num_features"), &cfg)
            };
            Box::new(bn.unwrap())
        }
        other => panic!("unknown layer {other}"),
    }
}

#[test]
fn layers3_match_pytorch() {
    let f = fixture("layers3.json");
    let cases = f["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 28);
    let mut worst = 0.0f64;
    for c in cases {
        let name = format!("{} {} {}", c["layer"], c["kwargs"], c["note"]);
        let vs = VarStore::new(DType::F64, 0);
        let m = build(c, &vs);
        m.set_training(c["train"].as_bool().unwrap());
        let params = m.named_parameters();
        let want_params = c["params"].as_object().unwrap();
        assert_eq!(params.len(), want_params.len(), "{name}: parameter count");
        for (n, v) in &params {
            v.set(&tensor(&want_params[n], DType::F64)).unwrap();
        }
        let buffers = m.named_buffers();
        assert_eq!(
            buffers.len(),
            c["buffers_before"].as_object().unwrap().len(),
            "{name}: buffer count"
        );
        for (n, b) in &buffers {
            b.set(&tensor(&c["buffers_before"][n], b.get().dtype())).unwrap();
        }
        let x = tensor(&c["input"], DType::F64).requires_grad(true).unwrap();
        let out = m.forward(&x).unwrap();
        let go = tensor(&c["grad_output"], DType::F64);
        let grads = out.mul(&go).unwrap().sum_all().unwrap().backward().unwrap();
        let mut errs = vec![
            (format!("{name} output"), rel_err(&out, &c["output"])),
            (format!("{name} grad_input"), rel_err(grads.get(&x).unwrap(), &c["grad_input"])),
        ];
        for (n, v) in &params {
            errs.push((format!("{name} grad {n}"), rel_err(v.grad(&grads).unwrap(), &c["grad_params"][n])));
        }
        for (n, b) in &buffers {
            errs.push((format!("{name} buffer {n}"), rel_err(&b.get(), &c["buffers_after"][n])));
        }
        worst = worst.max(assert_errs_within(errs, 1e-12));
    }
    eprintln!("layers3.json: largest relative error vs torch {worst:e}");
}

#[test]
fn transposed_conv_is_the_adjoint_of_conv() {
    // <conv(x; w), y> = <x, conv_transpose(y; w)> for every geometry where the output_padding
    // restores x's size; this pins the crop/pad bookkeeping independently of the fixtures.
    let mut rng = Rng::new(7);
    let vs = VarStore::new(DType::F64, 1);
    for (i, (hw, k, s, p, d, g)) in [
        ((7, 6), (3, 2), (2, 1), (1, 1), (1, 2), 1),
        ((8, 9), (2, 3), (3, 2), (0, 1), (2, 1), 2),
        ((5, 5), (1, 1), (2, 2), (0, 0), (1, 1), 2),
    ]
    .into_iter()
    .enumerate()
    {
        let (cin, cout) = (2 * g, 2 * g);
        let cfg = Conv2dConfig {
            stride: s,
            padding: p,
            dilation: d,
            groups: g,
            bias: false,
        };
        let conv = Conv2d::new(&vs.pp(format!("c{i}")), cin, cout, k, cfg).unwrap();
        let x = Tensor::randn([2, cin, hw.0, hw.1], 0.0, 1.0, DType::F64, &mut rng).unwrap();
        let y = conv.forward(&x).unwrap();
        let r = Tensor::randn(y.dims().to_vec(), 0.0, 1.0, DType::F64, &mut rng).unwrap();
        // output_padding = what the floor in the conv output size dropped.
        let extra = |len: usize, k: usize, s: usize, p: usize, d: usize| (len + 2 * p - d * (k - 1) - 1) % s;
        let tcfg = ConvTranspose2dConfig {
            stride: s,
            padding: p,
            output_padding: (extra(hw.0, k.0, s.0, p.0, d.0), extra(hw.1, k.1, s.1, p.1, d.1)),
            dilation: d,
            groups: g,
            bias: false,
        };
        let xt = conv_transpose2d(&r, &conv.weight.tensor(), None, &tcfg).unwrap();
        assert_eq!(xt.dims(), x.dims(), "case {i}");
        let lhs = y.mul(&r).unwrap().sum_all().unwrap().item().unwrap();
        let rhs = x.mul(&xt).unwrap().sum_all().unwrap().item().unwrap();
        assert!((lhs - rhs).abs() < 1e-10 * (1.0 + lhs.abs()), "case {i}: {lhs} vs {rhs}");
    }
}

#[test]
fn transposed_conv_gradcheck_first_and_second_order() {
    let opts = GradcheckOptions::default();
    let mut normals = Normals::new(21, 0.0, 1.0);
    let mut randn = |s: &[usize]| normals.draw(s);
    let cfg2 = ConvTranspose2dConfig {
        stride: (2, 1),
        padding: (1, 1),
        output_padding: (1, 0),
        dilation: (1, 2),
        groups: 2,
        bias: true,
    };
    let inputs = [randn(&[1, 4, 3, 3]), randn(&[4, 1, 2, 3]), randn(&[2])];
    let f2 = |v: &[Tensor]| Ok(conv_transpose2d(&v[0], &v[1], Some(&v[2]), &cfg2)?);
    gradcheck(f2, &inputs, &opts).unwrap();
    gradgradcheck(f2, &inputs, &opts).unwrap();
    let cfg1 = ConvTranspose1dConfig {
        stride: 2,
        padding: 2,
        output_padding: 2,
        dilation: 3,
        groups: 1,
        bias: true,
    };
    let inputs = [randn(&[2, 2, 3]), randn(&[2, 3, 2]), randn(&[3])];
    let f1 = |v: &[Tensor]| Ok(conv_transpose1d(&v[0], &v[1], Some(&v[2]), &cfg1)?);
    gradcheck(f1, &inputs, &opts).unwrap();
    gradgradcheck(f1, &inputs, &opts).unwrap();
}

#[test]
fn pooling_and_batchnorm_options_gradcheck_first_and_second_order() {
    let opts = GradcheckOptions::default();
    let mut normals = Normals::new(33, 0.5, 1.5);
    let mut randn = |s: &[usize]| normals.draw(s);
    let vs = VarStore::new(DType::F64, 4);
    let no_stats = BatchNormConfig {
        affine: false,
        track_running_stats: false,
        ..Default::default()
    };
    let bn_eval = BatchNorm::new_2d_with_config(
        &vs.pp("bn"),
        2,
        &BatchNormConfig {
            track_running_stats: false,
            ..Default::default()
        },
    )
    .unwrap();
    bn_eval.eval();
    let mods: Vec<(&str, Box<dyn Module>, Tensor)> = vec![
        (
            "MaxPool1d ceil",
            Box::new(MaxPool1d::with(3, 2, 1).ceil_mode(true)),
            randn(&[1, 2, 8]),
        ),
        (
            "MaxPool2d ceil",
            Box::new(MaxPool2d::with(2, 2, 0).ceil_mode(true)),
            randn(&[1, 1, 5, 3]),
        ),
        (
            "AvgPool1d ceil, pad excluded",
            Box::new(AvgPool1d::with(3, 2, 1).ceil_mode(true).count_include_pad(false)),
            randn(&[2, 1, 6]),
        ),
        (
            "AvgPool2d ceil",
            Box::new(AvgPool2d::with(3, 2, 1).ceil_mode(true)),
            randn(&[1, 2, 4, 5]),
        ),
        (
            "BatchNorm1d no affine, no stats",
            Box::new(BatchNorm::new_1d_with_config(&vs.pp("a"), 3, &no_stats).unwrap()),
            randn(&[4, 3]),
        ),
        ("BatchNorm2d eval without stats", Box::new(bn_eval), randn(&[2, 2, 2, 2])),
    ];
    for (name, m, x) in &mods {
        gradcheck(|v| Ok(m.forward(&v[0])?), std::slice::from_ref(x), &opts).unwrap_or_else(|e| panic!("{name}: {e}"));
        gradgradcheck(|v| Ok(m.forward(&v[0])?), std::slice::from_ref(x), &opts).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn transposed_conv_and_pool_configs_are_checked() {
    let vs = VarStore::new(DType::F64, 0);
    let e = ConvTranspose2d::new(
        &vs.pp("a"),
        2,
        2,
        (3, 3),
        ConvTranspose2dConfig {
            stride: (2, 2),
            output_padding: (0, 2),
            ..Default::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        e,
        "ConvTranspose2d: output_padding 2 must be smaller than either stride 2 or dilation 1"
    );
    let e = ConvTranspose1d::new(
        &vs.pp("b"),
        3,
        4,
        2,
        ConvTranspose1dConfig {
            groups: 2,
            ..Default::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert_eq!(e, "ConvTranspose1d: in_channels 3 and out_channels 4 must be divisible by groups 2");
    // Fields are public: a config made invalid after construction is refused at forward time.
    let mut ct = ConvTranspose1d::new(&vs.pp("c"), 2, 2, 2, ConvTranspose1dConfig::default()).unwrap();
    let x = Tensor::zeros([1, 2, 4], DType::F64).unwrap();
    ct.config.stride = usize::MAX;
    let e = ct.forward(&x).unwrap_err().to_string();
    assert!(e.starts_with("ConvTranspose1d::forward: output size overflows usize"), "{e}");
    ct.config.stride = 1;
    ct.config.padding = 5;
    let e = ct.forward(&x).unwrap_err().to_string();
    assert!(
        e.starts_with("ConvTranspose1d::forward: padding removes the whole output (uncropped length 5)"),
        "{e}"
    );
    ct.config.padding = 0;
    let e = ct.forward(&Tensor::zeros([1, 3, 4], DType::F64).unwrap()).unwrap_err().to_string();
    assert!(
        e.starts_with("ConvTranspose1d::forward: input [1, 3, 1, 4] does not match weight [2, 2, 1, 2]"),
        "{e}"
    );
    assert_eq!(transposed_out_len_of(4, 3, 2, 1, 1, 1), (8, 9));

    let x = Tensor::zeros([1, 1, 5], DType::F64).unwrap();
    let e = AvgPool1d::with(2, 1, 2).forward(&x).unwrap_err().to_string();
    assert_eq!(e, "AvgPool1d::forward: padding (0, 2) must be at most half the kernel (1, 2)");
    let e = MaxPool1d::with(2, 0, 0).forward(&x).unwrap_err().to_string();
    assert!(
        e.starts_with("MaxPool1d::forward: kernel, stride and dilation must be positive"),
        "{e}"
    );
    let x2 = Tensor::zeros([1, 1, 4, 4], DType::F64).unwrap();
    let e = AvgPool2d {
        divisor_override: Some(0),
        ..AvgPool2d::new(2)
    }
    .forward(&x2)
    .unwrap_err()
    .to_string();
    assert_eq!(e, "AvgPool2d::forward: divisor_override must be positive");
    // Ceil mode near usize::MAX: checked, not wrapped.
    let e = conv::pool_out_len("p", usize::MAX - 1, 3, 13, 0, 1, true).unwrap_err().to_string();
    assert!(e.starts_with("p: ceil_mode window overflows usize"), "{e}");
    // Ceil mode adds a partial last window (length 6, kernel 3, stride 2, padding 1: 4 windows,
    // the last reaching 1 past the padded input) but drops one that would start in the right
    // padding (length 5, kernel 2, stride 2, padding 1: 3 windows, not 4). Torch agrees on both.
    assert_eq!(conv::pool_out_len("p", 6, 3, 2, 1, 1, true).unwrap(), (4, 1));
    assert_eq!(conv::pool_out_len("p", 5, 2, 2, 1, 1, true).unwrap(), (3, 0));
    assert_eq!(conv::pool_out_len("p", 4, 2, 2, 1, 1, true).unwrap(), (3, 0));

    // Batch statistics need two values per channel, in eval mode too when there are no running stats.
    let bn = BatchNorm::new_1d_with_config(
        &vs.pp("d"),
        2,
        &BatchNormConfig {
            track_running_stats: false,
            ..Default::default()
        },
    )
    .unwrap();
    bn.eval();
    assert!(bn.named_buffers().is_empty());
    let e = bn.forward(&Tensor::zeros([1, 2], DType::F64).unwrap()).unwrap_err().to_string();
    assert_eq!(
        e,
        "BatchNorm1d: batch statistics need more than 1 value per channel, got input [1, 2]"
    );
}

fn transposed_out_len_of(len: usize, k: usize, s: usize, p: usize, op: usize, d: usize) -> (usize, usize) {
    conv::transposed_out_len("t", len, k, s, p, op, d).unwrap()
}

#[test]
fn output_size_picks_the_output_padding_or_names_the_reachable_sizes() {
    let vs = VarStore::new(DType::F64, 5);
    let cfg = ConvTranspose2dConfig {
        stride: (3, 2),
        padding: (1, 0),
        output_padding: (2, 1),
        ..Default::default()
    };
    let ct = ConvTranspose2d::new(&vs.pp("a"), 2, 2, (3, 2), cfg).unwrap();
    let x = Tensor::ones([1, 2, 4, 3], DType::F64).unwrap();
    // Smallest sizes: (4−1)·3 − 2 + 2 + 1 = 10 and (3−1)·2 + 1 + 1 = 6; up to stride − 1 more.
    for (h, w) in [(10, 6), (12, 7), (11, 6)] {
        let y = ct.forward_with_output_size(&x, &[h, w]).unwrap();
        assert_eq!(y.dims(), &[1, 2, h, w]);
        // The same as configuring that output padding.
        let same = ConvTranspose2d {
            config: ConvTranspose2dConfig {
                output_padding: (h - 10, w - 6),
                ..cfg
            },
            ..ct.clone()
        };
        assert_eq!(same.forward(&x).unwrap().to_vec_f64().unwrap(), y.to_vec_f64().unwrap());
    }
    let e = ct.forward_with_output_size(&x, &[13, 6]).unwrap_err().to_string();
    assert_eq!(
        e,
        "ConvTranspose2d::forward: requested output size 13 (spatial dim 0) is not in [10, 12], the sizes input [1, 2, 4, 3] can produce"
    );
    let e = ct.forward_with_output_size(&x, &[10]).unwrap_err().to_string();
    assert!(
        e.contains("output_size [10] must have 2 spatial sizes (or 4 with batch and channels)"),
        "{e}"
    );
    let ct1 = ConvTranspose1d::new(
        &vs.pp("b"),
        1,
        1,
        2,
        ConvTranspose1dConfig {
            stride: 2,
            ..Default::default()
        },
    )
    .unwrap();
    let x1 = Tensor::ones([1, 1, 3], DType::F64).unwrap();
    assert_eq!(ct1.forward_with_output_size(&x1, &[1, 1, 7]).unwrap().dims(), &[1, 1, 7]);
    assert!(ct1.forward_with_output_size(&x1, &[5]).is_err());
    // The chosen output padding is differentiated like a configured one, to first and second order.
    let mut normals = Normals::new(8, 0.0, 1.0);
    let xs = [normals.draw(&[1, 2, 3, 2])];
    let f = |v: &[Tensor]| Ok(ct.forward_with_output_size(&v[0], &[8, 5])?);
    gradcheck(f, &xs, &GradcheckOptions::default()).unwrap();
    gradgradcheck(f, &xs, &GradcheckOptions::default()).unwrap();
}
