//! The second adversarial review's findings in kiln-nn (2026-12-02): each input below panicked,
//! aborted or silently turned parameters into NaN; each is now an error naming the problem, or the
//! right answer.

use std::collections::HashMap;

use kiln_core::{DType, Tensor, Var};
use kiln_nn::data::parse_csv;
use kiln_nn::init::fans;
use kiln_nn::serialize::{load_optimizer, save_optimizer, to_safetensors_bytes};
use kiln_nn::*;

fn err<T: std::fmt::Debug>(r: Result<T>) -> String {
    r.unwrap_err().to_string()
}

/// The safetensors crate indexed out of bounds on a repeated name.
#[test]
fn saving_two_tensors_of_one_name_is_an_error() {
    let ts = vec![("a".to_string(), Tensor::scalar(1f32)), ("a".to_string(), Tensor::scalar(2f32))];
    let e = err(to_safetensors_bytes(&ts, None));
    assert!(e.contains("save_safetensors") && e.contains("two tensors have this name"), "{e}");
}

/// Layers built through their public fields with a weight of the wrong rank indexed its dims.
#[test]
fn layers_with_a_weight_of_the_wrong_rank_are_errors() {
    let x = Tensor::zeros([1, 1, 4, 4], DType::F32).unwrap();
    for w in [vec![1], vec![1, 1, 3]] {
        let conv = Conv2d {
            weight: Var::new(&Tensor::zeros(w.clone(), DType::F32).unwrap()),
            bias: None,
            config: Conv2dConfig::default(),
        };
        let e = err(conv.forward(&x));
        assert!(e.contains("must be [O, C/groups, kh, kw]"), "{w:?}: {e}");
    }
    let emb = Embedding {
        weight: Var::new(&Tensor::zeros([2], DType::F32).unwrap()),
        padding_idx: None,
    };
    let e = err(emb.forward(&Tensor::from_vec(vec![0i64], [1]).unwrap()));
    assert!(
        e.contains("Embedding::forward") && e.contains("must be [num_embeddings, embedding_dim]"),
        "{e}"
    );
}

/// `fans` multiplied without a check (a panic with overflow checks, a wrong "zero fan" without).
#[test]
fn fans_that_overflow_are_an_error() {
    let e = err(fans(&[1 << 40, 1 << 40, 1 << 40]));
    assert!(e.contains("overflow"), "{e}");
    assert_eq!(fans(&[4, 3, 2, 5]).unwrap(), (30, 40));
}

/// Hyper-parameters PyTorch rejects made parameters NaN or infinite without an error.
#[test]
fn invalid_hyper_parameters_are_errors_at_the_step() {
    let step = |opt: &mut dyn Optimizer, v: &Var| {
        let loss = v.tensor().square().unwrap().sum_all().unwrap();
        opt.backward_step(&loss)
    };
    let v = Var::new(&Tensor::from_vec(vec![1f32, -2.0], [2]).unwrap());
    for (b1, b2, what) in [(1.0, 0.999, "beta1 1"), (0.9, -5.0, "beta2 -5")] {
        let mut a = Adam::new(vec![v.clone()], 0.1).unwrap().betas(b1, b2);
        let e = err(step(&mut a, &v));
        assert!(e.contains(&format!("invalid {what}: expected a value in [0, 1)")), "{e}");
    }
    let mut a = Adam::new(vec![v.clone()], 0.1).unwrap().eps(-1.0);
    assert!(err(step(&mut a, &v)).contains("invalid eps -1"));
    let mut r = RmsProp::new(vec![v.clone()], 0.1).unwrap().alpha(-1.0);
    assert!(err(step(&mut r, &v)).contains("invalid alpha -1"));
    let e = Adam::new(vec![v.clone()], f64::INFINITY).err().unwrap().to_string();
    assert!(e.contains("invalid learning rate inf"), "{e}");
    // Nothing was changed by the refused steps.
    assert_eq!(v.tensor().to_vec::<f32>().unwrap(), vec![1.0, -2.0]);
}

/// A corrupt optimiser checkpoint reset or corrupted the state silently: a NaN, fractional or
/// huge step count, or a NaN learning rate in the metadata.
#[test]
fn corrupt_optimiser_state_is_refused() {
    let v = Var::new(&Tensor::from_vec(vec![1f32, -2.0], [2]).unwrap());
    let mut a = Adam::new(vec![v.clone()], 0.1).unwrap();
    for bad in [f32::NAN, 0.5, -5.0, 3e9, 1e30] {
        let mut st = HashMap::new();
        st.insert("0.step".to_string(), Tensor::scalar(bad));
        let e = err(a.load_state_tensors(&st));
        assert!(e.contains("not a step count"), "{bad}: {e}");
    }
    let dir = std::env::temp_dir().join(format!("kiln-review-api-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("o.safetensors");
    let loss = v.tensor().square().unwrap().sum_all().unwrap();
    a.backward_step(&loss).unwrap();
    save_optimizer(&a, &p).unwrap();
    // The same file with its learning rate replaced by NaN.
    let bytes = std::fs::read(&p).unwrap();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let lr = format!("{:e}", 0.1);
    assert!(text.contains(&lr));
    let patched: Vec<u8> = {
        let at = bytes.windows(lr.len()).position(|w| w == lr.as_bytes()).unwrap();
        let mut b = bytes.clone();
        // Same length, so the header size stays right.
        b[at..at + lr.len()].copy_from_slice(format!("{:<width$}", "NaN", width = lr.len()).as_bytes());
        b
    };
    std::fs::write(&p, patched).unwrap();
    let e = err(load_optimizer(&mut a, &p));
    assert!(e.contains("is not a learning rate"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Class labels were cast: 2.7 became class 2 and NaN class 0.
#[test]
fn labels_that_are_not_integers_are_refused() {
    let t = parse_csv(b"1,2,0\n3,4,2.7\n", false, "t.csv").unwrap();
    let e = err(t.split_labels(-1, DType::F32));
    assert!(
        e.contains("row 2 of column 2 holds 2.7, which is not an integer class label"),
        "{e}"
    );
    let t = parse_csv(b"1,2,0\n3,4,1\n", false, "t.csv").unwrap();
    let (x, y) = t.split_labels(-1, DType::F32).unwrap();
    assert_eq!(y.to_vec::<i64>().unwrap(), vec![0, 1]);
    assert_eq!(x.dims(), &[2, 2]);
}

/// The causal mask is built from tensors now (it collected `l * s` elements into a Vec).
#[test]
fn causal_mask_values() {
    let m = causal_mask(3).unwrap();
    assert_eq!(m.dtype(), DType::U8);
    assert_eq!(m.to_vec::<u8>().unwrap(), vec![0, 1, 1, 0, 0, 1, 0, 0, 0]);
}

/// Adaptive average pooling of an empty image returned NaNs (`[1, 1, 0, 2]`) or blamed a kernel
/// of 0 that the user never set (`[1, 1, 0, 0]`).
#[test]
fn adaptive_pooling_of_an_empty_image_is_an_error() {
    for dims in [[1, 1, 0, 2], [1, 1, 0, 0], [1, 1, 2, 0]] {
        let x = Tensor::zeros(dims, DType::F32).unwrap();
        for size in [(3, 3), (1, 1)] {
            let e = err(AdaptiveAvgPool2d { output_size: size }.forward(&x));
            assert!(
                e.contains("AdaptiveAvgPool2d::forward") && e.contains("has an empty spatial dimension"),
                "{dims:?} -> {size:?}: {e}"
            );
        }
    }
    let x = Tensor::ones([1, 1, 2, 2], DType::F32).unwrap();
    let y = AdaptiveAvgPool2d { output_size: (3, 3) }.forward(&x).unwrap();
    assert_eq!(y.to_vec::<f32>().unwrap(), vec![1.0; 9]);
}

/// Adaptive pooling to a huge uneven output ran one narrow+mean per output cell: 2^40 of them.
/// It is now two products with averaging matrices, so the size is refused at once; and on every
/// shape it equals the windowed means PyTorch defines (window `[⌊i·H/oh⌋, ⌈(i+1)·H/oh⌉)`).
#[test]
fn adaptive_pooling_equals_the_window_means_and_refuses_huge_outputs_at_once() {
    let (n, c, h, w) = (2, 3, 7, 5);
    let vals: Vec<f64> = (0..n * c * h * w).map(|i| ((i * 37 % 101) as f64 - 50.0) / 7.0).collect();
    let x = Tensor::from_vec(vals.clone(), [n, c, h, w]).unwrap();
    for (oh, ow) in [(3, 4), (4, 2), (9, 11), (7, 3), (1, 2)] {
        let y = AdaptiveAvgPool2d { output_size: (oh, ow) }.forward(&x).unwrap();
        assert_eq!(y.dims(), [n, c, oh, ow]);
        let y = y.to_vec::<f64>().unwrap();
        for p in 0..n * c {
            for i in 0..oh {
                let (r0, r1) = (i * h / oh, ((i + 1) * h).div_ceil(oh));
                for j in 0..ow {
                    let (c0, c1) = (j * w / ow, ((j + 1) * w).div_ceil(ow));
                    let mut sum = 0.0;
                    for r in r0..r1 {
                        for q in c0..c1 {
                            sum += vals[(p * h + r) * w + q];
                        }
                    }
                    let want = sum / ((r1 - r0) * (c1 - c0)) as f64;
                    let got = y[(p * oh + i) * ow + j];
                    assert!((got - want).abs() < 1e-12, "{oh}x{ow} at {p},{i},{j}: {got} vs {want}");
                }
            }
        }
    }
    let t = std::time::Instant::now();
    let e = err(AdaptiveAvgPool2d {
        output_size: (1 << 20, 1 << 20),
    }
    .forward(&Tensor::zeros([1, 1, 2, 3], DType::F32).unwrap()));
    assert!(e.contains("cannot allocate"), "{e}");
    assert!(t.elapsed().as_secs() < 30, "refused only after {:?}", t.elapsed());
}

/// A data set whose `len()` is `usize::MAX` panicked ("capacity overflow") building the epoch's
/// order; the epoch is now one error item.
#[test]
fn a_data_set_too_long_to_order_gives_an_error_item() {
    struct Endless;
    impl data::Dataset for Endless {
        fn len(&self) -> usize {
            usize::MAX
        }
        fn get(&self, _: usize) -> Result<data::Batch> {
            Ok((Tensor::zeros([1], DType::F32)?, Tensor::zeros([1], DType::F32)?))
        }
    }
    let mut dl = data::DataLoader::new(Endless, 2);
    let items: Vec<Result<data::Batch>> = dl.iter().collect();
    assert_eq!(items.len(), 1);
    let e = items.into_iter().next().unwrap().unwrap_err().to_string();
    assert!(
        e.contains("DataLoader::iter") && e.contains("cannot hold the order of 18446744073709551615 samples"),
        "{e}"
    );
}

/// The loader still serves every sample once per epoch, with and without the last partial batch.
#[test]
fn the_loader_serves_each_sample_once_per_epoch() {
    let x = Tensor::arange(0.0, 10.0, 1.0, DType::F32).unwrap().reshape([10, 1]).unwrap();
    let y = Tensor::zeros([10], DType::F32).unwrap();
    for (drop_last, want_batches) in [(false, 4), (true, 3)] {
        let ds = data::TensorDataset::new(x.clone(), y.clone()).unwrap();
        let mut dl = data::DataLoader::new(ds, 3).shuffle(true, 5).drop_last(drop_last);
        let batches: Vec<data::Batch> = dl.iter().map(|b| b.unwrap()).collect();
        assert_eq!(batches.len(), want_batches);
        let mut seen: Vec<f32> = batches.iter().flat_map(|b| b.0.to_vec::<f32>().unwrap()).collect();
        seen.sort_by(f32::total_cmp);
        seen.dedup();
        assert_eq!(seen.len(), if drop_last { 9 } else { 10 });
    }
}

/// A convolution's bias of the wrong shape was blamed on a reshape.
#[test]
fn a_convolution_bias_of_the_wrong_shape_names_the_convolution() {
    let x = Tensor::zeros([1, 1, 3, 3], DType::F32).unwrap();
    let bias = Tensor::from_slice(&[1.0f32, 2.0, 3.0], [3]).unwrap();
    let w = Tensor::zeros([2, 1, 1, 1], DType::F32).unwrap();
    let e = err(functional::conv2d(&x, &w, Some(&bias), &Default::default()));
    assert!(e.starts_with("conv2d: bias [3] must be [2], one per output channel"), "{e}");
    let wt = Tensor::zeros([1, 2, 1, 1], DType::F32).unwrap();
    let one = Tensor::from_slice(&[1.0f32], [1]).unwrap();
    let e = err(functional::conv_transpose2d(&x, &wt, Some(&one), &Default::default()));
    assert!(
        e.starts_with("conv_transpose2d: bias [1] must be [2], one per output channel"),
        "{e}"
    );
    let two = Tensor::from_slice(&[1.0f32, -1.0], [2]).unwrap();
    let y = functional::conv2d(&x, &w, Some(&two), &Default::default()).unwrap();
    assert_eq!(y.to_vec::<f32>().unwrap(), [[1.0f32; 9], [-1.0; 9]].concat());
}
