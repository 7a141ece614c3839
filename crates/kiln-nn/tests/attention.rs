//! MultiheadAttention with key-padding and attention masks, cross-attention, kdim/vdim and
//! attention dropout: PyTorch fixtures (fixtures/attention.json from `scripts/gen_nn_fixtures.py
//! attention`), gradchecks and errors.
mod common;
use common::*;
use kiln_core::{gradcheck, DType, GradcheckOptions, Rng, Tensor};
use kiln_nn::*;
use serde_json::Value;

fn mask(v: &Value, dtype: &Value) -> Option<Tensor> {
    (!v.is_null()).then(|| tensor(v, if dtype == "u8" { DType::U8 } else { DType::F64 }))
}

#[test]
fn attention_masks_and_cross_attention_match_pytorch() {
    let f = fixture("attention.json");
    let cases = f["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 7);
    let mut worst = 0.0f64;
    for c in cases {
        let kw = &c["kwargs"];
        let name = format!("{kw} {}", c["note"]);
        let cfg = MultiheadAttentionConfig {
            bias: kw["bias"].as_bool().unwrap_or(true),
            kdim: kw["kdim"].as_u64().map(|v| v as usize),
            vdim: kw["vdim"].as_u64().map(|v| v as usize),
            batch_first: kw["batch_first"].as_bool().unwrap_or(false),
            add_bias_kv: kw["add_bias_kv"].as_bool().unwrap_or(false),
            add_zero_attn: kw["add_zero_attn"].as_bool().unwrap_or(false),
            ..Default::default()
        };
        let vs = VarStore::new(DType::F64, 0);
        let e = kw["embed_dim"].as_u64().unwrap() as usize;
        let m = MultiheadAttention::with_config(&vs, e, kw["num_heads"].as_u64().unwrap() as usize, &cfg).unwrap();
        let params = m.named_parameters();
        let want_params = c["params"].as_object().unwrap();
        let mut names: Vec<&str> = params.iter().map(|(n, _)| n.as_str()).collect();
        names.sort_unstable();
        // (serde_json's map is sorted by key, so this compares the sets of PyTorch names)
        assert_eq!(
            names,
            want_params.keys().map(|k| k.as_str()).collect::<Vec<_>>(),
            "{name}: parameter names"
        );
        for (n, v) in &params {
            v.set(&tensor(&want_params[n], DType::F64)).unwrap();
        }
        let ins: Vec<Tensor> = c["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| tensor(t, DType::F64).requires_grad(true).unwrap())
            .collect();
        let (q, k, v) = if ins.len() == 1 {
            (&ins[0], &ins[0], &ins[0])
        } else {
            (&ins[0], &ins[1], &ins[2])
        };
        let kpm = mask(&c["key_padding_mask"], &c["mask_dtypes"][0]);
        let am = mask(&c["attn_mask"], &c["mask_dtypes"][1]);
        let opts = AttentionOptions {
            key_padding_mask: kpm.as_ref(),
            attn_mask: am.as_ref(),
            causal: false,
            average_attn_weights: c["average_attn_weights"].as_bool().unwrap(),
        };
        let (out, w) = m.attention(q, k, v, &opts).unwrap();
        let go = tensor(&c["grad_output"], DType::F64);
        let grads = out.mul(&go).unwrap().sum_all().unwrap().backward().unwrap();
        let mut errs = vec![
            ("output".to_string(), rel_err(&out, &c["output"])),
            ("weights".into(), rel_err(&w, &c["attn_weights"])),
        ];
        for (i, (x, want)) in ins.iter().zip(c["grad_inputs"].as_array().unwrap()).enumerate() {
            errs.push((format!("grad input {i}"), rel_err(grads.get(x).unwrap(), want)));
        }
        for (n, p) in &params {
            errs.push((format!("grad {n}"), rel_err(p.grad(&grads).unwrap(), &c["grad_params"][n])));
        }
        let errs = errs.into_iter().map(|(what, e)| (format!("{name} {what}"), e)).collect();
        worst = worst.max(assert_errs_within(errs, 1e-12));
    }
    eprintln!("attention.json: largest relative error vs torch {worst:e}");
}

#[test]
fn cross_attention_gradcheck_with_masks() {
    let opts = GradcheckOptions::default();
    let vs = VarStore::new(DType::F64, 9);
    let cfg = MultiheadAttentionConfig {
        kdim: Some(3),
        vdim: Some(2),
        ..Default::default()
    };
    let m = MultiheadAttention::with_config(&vs, 4, 2, &cfg).unwrap();
    let mut normals = Normals::new(2, 0.0, 1.0);
    let mut randn = |s: &[usize]| normals.draw(s);
    let inputs = [randn(&[2, 3, 4]), randn(&[2, 4, 3]), randn(&[2, 4, 2])];
    let kpm = Tensor::from_vec(vec![0u8, 0, 1, 0, 0, 0, 0, 1], [2, 4]).unwrap();
    let am = randn(&[3, 4]);
    let f = |v: &[Tensor]| {
        let o = AttentionOptions {
            key_padding_mask: Some(&kpm),
            attn_mask: Some(&am),
            causal: true,
            ..Default::default()
        };
        Ok(m.attention(&v[0], &v[1], &v[2], &o)?.0)
    };
    gradcheck(f, &inputs, &opts).unwrap();
    kiln_core::gradgradcheck(f, &inputs, &opts).unwrap();
}

#[test]
fn attention_dropout_acts_in_training_only() {
    let vs = VarStore::new(DType::F64, 1);
    let cfg = MultiheadAttentionConfig {
        dropout: 0.5,
        ..Default::default()
    };
    let m = MultiheadAttention::with_config(&vs, 4, 1, &cfg).unwrap();
    let x = Tensor::randn([2, 6, 4], 0.0, 1.0, DType::F64, &mut Rng::new(4)).unwrap();
    let o = AttentionOptions::default();
    let (_, w) = m.attention(&x, &x, &x, &o).unwrap();
    // One head: the returned weights are the dropped-out softmax, each entry 0 or 2·p.
    let w_again = m.attention(&x, &x, &x, &o).unwrap().1;
    assert_ne!(w.to_vec_f64().unwrap(), w_again.to_vec_f64().unwrap(), "fresh masks per call");
    let dropped = w.to_vec_f64().unwrap().iter().filter(|v| **v == 0.0).count();
    assert!(dropped > 10 && dropped < 62, "{dropped} of 72 dropped");
    m.eval();
    let (_, w1) = m.attention(&x, &x, &x, &o).unwrap();
    let (_, w2) = m.attention(&x, &x, &x, &o).unwrap();
    assert_eq!(w1.to_vec_f64().unwrap(), w2.to_vec_f64().unwrap());
    let rows = w1.sum(&[-1], false).unwrap().to_vec_f64().unwrap();
    assert!(rows.iter().all(|r| (r - 1.0).abs() < 1e-12));
    // Training-mode entries are the eval weights scaled by 1 / (1 - p) or zero.
    for (a, b) in w.to_vec_f64().unwrap().iter().zip(w1.to_vec_f64().unwrap()) {
        assert!(*a == 0.0 || (a - 2.0 * b).abs() < 1e-12, "{a} vs {b}");
    }
}

#[test]
fn attention_errors_name_shapes() {
    let vs = VarStore::new(DType::F64, 0);
    let m = MultiheadAttention::with_config(
        &vs,
        4,
        2,
        &MultiheadAttentionConfig {
            kdim: Some(3),
            ..Default::default()
        },
    )
    .unwrap();
    let q = Tensor::zeros([2, 3, 4], DType::F64).unwrap();
    let k = Tensor::zeros([2, 5, 3], DType::F64).unwrap();
    let v = Tensor::zeros([2, 5, 4], DType::F64).unwrap();
    let o = AttentionOptions::default();
    let e = m.attention(&q, &v, &v, &o).unwrap_err().to_string();
    assert_eq!(
        e,
        "MultiheadAttention::forward: expected key [B, len, 3] (or [len, B, 3]), got [2, 5, 4]"
    );
    let kpm = Tensor::zeros([2, 3], DType::U8).unwrap();
    let e = m
        .attention(
            &q,
            &k,
            &v,
            &AttentionOptions {
                key_padding_mask: Some(&kpm),
                ..o
            },
        )
        .unwrap_err()
        .to_string();
    assert_eq!(e, "MultiheadAttention::forward: key_padding_mask must be [2, 5], got [2, 3]");
    let am = Tensor::zeros([3, 3], DType::U8).unwrap();
    let e = m
        .attention(&q, &k, &v, &AttentionOptions { attn_mask: Some(&am), ..o })
        .unwrap_err()
        .to_string();
    assert_eq!(e, "MultiheadAttention::forward: attn_mask must be [3, 5] or [4, 3, 5], got [3, 3]");
    let short_v = Tensor::zeros([2, 4, 4], DType::F64).unwrap();
    assert!(m.attention(&q, &k, &short_v, &o).unwrap_err().to_string().contains("disagree"));
    let e = MultiheadAttention::with_config(
        &vs.pp("x"),
        4,
        2,
        &MultiheadAttentionConfig {
            dropout: 1.5,
            ..Default::default()
        },
    )
    .err()
    .unwrap()
    .to_string();
    assert_eq!(e, "MultiheadAttention: dropout must be in [0, 1], got 1.5");
    // A fully masked query row is NaN, as in PyTorch.
    let all = Tensor::ones([2, 5], DType::U8).unwrap();
    let (out, _) = m
        .attention(
            &q,
            &k,
            &v,
            &AttentionOptions {
                key_padding_mask: Some(&all),
                ..o
            },
        )
        .unwrap();
    assert!(out.to_vec_f64().unwrap().iter().all(|x| x.is_nan()));
}

#[test]
fn bias_kv_zero_attn_and_unbatched_inputs_gradcheck_and_agree_with_batched() {
    let opts = GradcheckOptions::default();
    let vs = VarStore::new(DType::F64, 11);
    let cfg = MultiheadAttentionConfig {
        add_bias_kv: true,
        add_zero_attn: true,
        kdim: Some(3),
        ..Default::default()
    };
    let m = MultiheadAttention::with_config(&vs, 4, 2, &cfg).unwrap();
    // PyTorch's order: own parameters (bias_k, bias_v after in_proj_bias), then out_proj.
    let names: Vec<String> = m.named_parameters().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "q_proj_weight",
            "k_proj_weight",
            "v_proj_weight",
            "in_proj_bias",
            "bias_k",
            "bias_v",
            "out_proj.weight",
            "out_proj.bias"
        ]
    );
    let mut normals = Normals::new(5, 0.0, 1.0);
    let mut randn = |s: &[usize]| normals.draw(s);
    let inputs = [randn(&[3, 4]), randn(&[5, 3]), randn(&[5, 4])];
    let kpm = Tensor::from_vec(vec![0u8, 1, 0, 0, 1], [5]).unwrap();
    let f = |v: &[Tensor]| {
        let o = AttentionOptions {
            key_padding_mask: Some(&kpm),
            causal: true,
            ..Default::default()
        };
        Ok(m.attention(&v[0], &v[1], &v[2], &o)?.0)
    };
    gradcheck(f, &inputs, &opts).unwrap();
    kiln_core::gradgradcheck(f, &inputs, &opts).unwrap();
    // bias_k / bias_v get gradients through the extra key/value position.
    let p = m.named_parameters();
    let bias_k = &p[4].1;
    let o = AttentionOptions::default();
    let g = m
        .attention(&inputs[0], &inputs[1], &inputs[2], &o)
        .unwrap()
        .0
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert!(bias_k.grad(&g).unwrap().to_vec_f64().unwrap().iter().any(|v| *v != 0.0));
    // Unbatched = batched with a batch of one, the weights having two extra key columns.
    let (out, w) = m.attention(&inputs[0], &inputs[1], &inputs[2], &o).unwrap();
    let one = |t: &Tensor| t.unsqueeze(0).unwrap();
    let (ob, wb) = m.attention(&one(&inputs[0]), &one(&inputs[1]), &one(&inputs[2]), &o).unwrap();
    assert_eq!(out.dims(), &[3, 4]);
    assert_eq!(w.dims(), &[3, 5 + 2]);
    assert_eq!(out.to_vec_f64().unwrap(), ob.to_vec_f64().unwrap());
    assert_eq!(w.to_vec_f64().unwrap(), wb.to_vec_f64().unwrap());
    // Mixed ranks and a batched key_padding_mask on unbatched input are errors naming shapes.
    let e = m.attention(&inputs[0], &one(&inputs[1]), &inputs[2], &o).unwrap_err().to_string();
    assert_eq!(
        e,
        "MultiheadAttention::forward: query [3, 4], key [1, 5, 3] and value [5, 4] must all be unbatched (2-d) or all batched (3-d)"
    );
    let kpm2 = Tensor::zeros([1, 5], DType::U8).unwrap();
    let o2 = AttentionOptions {
        key_padding_mask: Some(&kpm2),
        ..Default::default()
    };
    let e = m.attention(&inputs[0], &inputs[1], &inputs[2], &o2).unwrap_err().to_string();
    assert!(e.contains("key_padding_mask of unbatched input must be [S], got [1, 5]"), "{e}");
    // Module::forward accepts an unbatched sequence too (self-attention needs kdim == E).
    let s = MultiheadAttention::new(&vs.pp("self"), 4, 2).unwrap();
    assert_eq!(s.forward(&randn(&[6, 4])).unwrap().dims(), &[6, 4]);
}
