//! Window geometry of the convolution and pooling layers: every output size is PyTorch's formula
//! `(len + 2p - d(k - 1) - 1) / s + 1` computed exactly, or an error naming the layer; a huge
//! padding or dilation never wraps around into a small, wrong size (or a panic).

use kiln_core::{DType, Tensor};
use kiln_nn::conv::window_out_len;
use kiln_nn::*;
use proptest::prelude::*;

/// The formula in u128, where nothing overflows: `None` when the geometry is invalid (a zero
/// kernel, stride or dilation), overflows usize, or the kernel does not fit.
fn exact(len: usize, k: usize, s: usize, p: usize, d: usize) -> Option<u128> {
    if k == 0 || s == 0 || d == 0 {
        return None;
    }
    let padded = len as u128 + 2 * p as u128;
    let span = d as u128 * (k as u128 - 1) + 1;
    if padded > usize::MAX as u128 || span > usize::MAX as u128 || padded < span {
        return None;
    }
    Some((padded - span) / s as u128 + 1)
}

/// Sizes mixing small values, zero, and values near the overflow edge.
fn size() -> impl Strategy<Value = usize> {
    prop_oneof![
        4 => 0usize..6,
        1 => (1usize << 31)..(1usize << 33),
        1 => (1usize << 62)..=usize::MAX,
        1 => Just(usize::MAX),
        1 => any::<usize>(),
    ]
}

fn input(h: usize, w: usize) -> Tensor {
    Tensor::arange(0.0, (2 * h * w) as f64, 1.0, DType::F64)
        .unwrap()
        .reshape([1, 2, h, w])
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn window_out_len_is_the_exact_formula_or_an_error(len in size(), k in size(), s in size(), p in size(), d in size()) {
        match (window_out_len("prop", len, k, s, p, d), exact(len, k, s, p, d)) {
            (Ok(n), Some(want)) => prop_assert_eq!(n as u128, want),
            (Err(e), None) => prop_assert!(e.to_string().starts_with("prop: "), "{}", e),
            (got, want) => prop_assert!(false, "len {len} k {k} s {s} p {p} d {d}: got {got:?}, want {want:?}"),
        }
    }
}

/// Geometry values for the layers: small, or far past any real input. Huge kernels, paddings and
/// dilations come from [2^40, 2^42) and [2^62, usize::MAX], huge strides only from the top band,
/// so that any output is either tiny (a huge stride over a huge padding leaves at most a few
/// positions) or terabytes, refused up front: nothing in between that would take long to compute.
fn small_or_huge(lo: usize) -> impl Strategy<Value = usize> {
    prop_oneof![
        4 => lo..4usize,
        1 => (1usize << 40)..(1usize << 42),
        1 => (1usize << 62)..=usize::MAX,
    ]
}

fn stride() -> impl Strategy<Value = usize> {
    prop_oneof![4 => 1usize..4, 1 => (1usize << 62)..=usize::MAX]
}

/// The check for one layer's result: an `Ok` has exactly the formula's output size; an error is
/// allowed only when the formula has no answer or the output (or its im2col buffer) is
/// unreasonably large, and required then.
fn judge(
    layer: &str,
    r: kiln_nn::Result<Tensor>,
    c: usize,
    oh: Option<u128>,
    ow: Option<u128>,
    taps: u128,
) -> std::result::Result<(), TestCaseError> {
    let small = match (oh, ow) {
        (Some(h), Some(w)) => h * w <= 64 && taps <= 64,
        _ => false,
    };
    match r {
        Ok(y) => {
            let (h, w) = (oh.unwrap(), ow.unwrap());
            prop_assert_eq!(y.dims(), &[1, c, h as usize, w as usize][..], "{}", layer);
            // Small geometry can still give a moderate output (3×4 padded by 3 and 2 is 9×8); what
            // must never be computed is an output or im2col buffer far past any real input.
            prop_assert!(h * w * taps.max(1) < 1u128 << 32, "{}: unexpectedly large output computed", layer);
        }
        // Max pooling also refuses a window that lies wholly in the padding (as PyTorch does);
        // that is a refusal of the geometry, not of the size.
        Err(e) => prop_assert!(!small || e.to_string().contains("no input element"), "{}: {}", layer, e),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn layers_give_the_formula_or_an_error(
        h in 1usize..6,
        w in 1usize..6,
        k in (small_or_huge(1), small_or_huge(1)),
        s in (stride(), stride()),
        p in (small_or_huge(0), small_or_huge(0)),
        d in (small_or_huge(1), small_or_huge(1)),
    ) {
        let x = input(h, w);
        let taps = k.0 as u128 * k.1 as u128;
        let (oh, ow) = (exact(h, k.0, s.0, p.0, d.0), exact(w, k.1, s.1, p.1, d.1));
        // Conv2d builds its weight from the kernel, so only small kernels make a layer at all.
        if taps <= 64 {
            let vs = VarStore::new(DType::F64, 0);
            let cfg = Conv2dConfig { stride: s, padding: p, dilation: d, ..Default::default() };
            let conv = Conv2d::new(&vs, 2, 3, k, cfg).unwrap();
            judge("conv", conv.forward(&x), 3, oh, ow, taps)?;
        }
        // Average pooling has no dilation.
        // Pooling refuses a padding over half the kernel, as torch does.
        let half = p.0 <= k.0 / 2 && p.1 <= k.1 / 2;
        let avg = AvgPool2d { kernel: k, stride: s, padding: p, ..AvgPool2d::new(1) }.forward(&x);
        if half {
            judge("avg", avg, 2, exact(h, k.0, s.0, p.0, 1), exact(w, k.1, s.1, p.1, 1), taps)?;
        } else {
            prop_assert!(avg.unwrap_err().to_string().starts_with("AvgPool2d::forward: padding"));
        }
        let maxp = MaxPool2d { kernel: k, stride: s, padding: p, dilation: d, ceil_mode: false }.forward(&x);
        if half {
            judge("max", maxp, 2, oh, ow, taps)?;
        } else {
            prop_assert!(maxp.unwrap_err().to_string().starts_with("MaxPool2d::forward: padding"));
        }
    }
}

#[test]
fn huge_padding_or_dilation_is_an_error_naming_the_layer() {
    let x = input(4, 4);
    let vs = VarStore::new(DType::F64, 0);
    // d(k - 1) + 1 wraps to 0 for d = usize::MAX, k = 2: the kernel used to "fit" everywhere.
    let conv = Conv2d::new(
        &vs.pp("a"),
        2,
        1,
        (2, 2),
        Conv2dConfig {
            dilation: (usize::MAX, 1),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        conv.forward(&x).unwrap_err().to_string(),
        format!(
            "Conv2d::forward: window size overflows usize: kernel 2, stride 1, padding 0, dilation {} over length 4",
            usize::MAX
        )
    );
    // 2p wraps to 0 for p = 2^63: treated as no padding at all. The padding is refused first
    // (over half the kernel); the window arithmetic itself refuses it too.
    let half = 1usize << 63;
    let e = AvgPool2d {
        kernel: (2, 2),
        stride: (1, 1),
        padding: (half, 0),
        ..AvgPool2d::new(2)
    }
    .forward(&x)
    .unwrap_err();
    assert!(e.to_string().starts_with("AvgPool2d::forward: padding"), "{e}");
    assert_eq!(
        window_out_len("AvgPool2d::forward", 4, 2, 1, half, 1).unwrap_err().to_string(),
        format!("AvgPool2d::forward: window size overflows usize: kernel 2, stride 1, padding {half}, dilation 1 over length 4")
    );
    // MaxPool2d's "padding at most half the kernel" check doubled the padding, which wrapped too.
    let e = MaxPool2d {
        kernel: (2, 2),
        stride: (1, 1),
        padding: (half, 0),
        dilation: (1, 1),
        ceil_mode: false,
    }
    .forward(&x)
    .unwrap_err();
    assert!(e.to_string().starts_with("MaxPool2d::forward: padding"), "{e}");
    let e = MaxPool2d {
        kernel: (2, 2),
        stride: (2, 2),
        padding: (0, 0),
        dilation: (1, usize::MAX),
        ceil_mode: false,
    }
    .forward(&x)
    .unwrap_err();
    assert!(e.to_string().starts_with("MaxPool2d::forward: window size overflows usize"), "{e}");
    // Zero stride, zero dilation and a kernel larger than the input are errors too.
    assert_eq!(
        window_out_len("t", 4, 2, 0, 0, 1).unwrap_err().to_string(),
        "t: kernel, stride and dilation must be positive: kernel 2, stride 0, padding 0, dilation 1 over length 4"
    );
    assert_eq!(
        window_out_len("t", 4, 3, 1, 0, 2).unwrap_err().to_string(),
        "t: the kernel (span 5) is larger than input length 4 padded to 4: kernel 3, stride 1, padding 0, dilation 2 over length 4"
    );
    // Groups of 0 (a public field) used to divide by zero.
    let mut conv = Conv2d::new(&vs.pp("b"), 2, 2, (1, 1), Conv2dConfig::default()).unwrap();
    conv.config.groups = 0;
    assert!(conv
        .forward(&x)
        .unwrap_err()
        .to_string()
        .starts_with("Conv2d::forward: input [1, 2, 4, 4] does not match"));
    // Ordinary geometry is unchanged: 4x4, kernel 2, dilation 2, padding 1 -> 4x4.
    assert_eq!(window_out_len("t", 4, 2, 1, 1, 2).unwrap(), 4);
    let conv = Conv2d::new(
        &vs.pp("c"),
        2,
        1,
        (2, 2),
        Conv2dConfig {
            padding: (1, 1),
            dilation: (2, 2),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(conv.forward(&x).unwrap().dims(), &[1, 1, 4, 4]);
}
