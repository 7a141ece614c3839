//! W6's two convolutions alone, forward and forward + backward, for the side-by-side comparison
//! with PyTorch's oneDNN convolution on the same shapes (`scripts/conv_shapes_torch.py` prints the
//! same lines for torch), and the backward's two products alone.

use crate::{emit, median_time};
use kiln_core::random::Rng;
use kiln_core::{no_grad, DType, Tensor, Var};
use kiln_nn::functional::conv2d;
use kiln_nn::{Conv2dConfig, Result};

/// One convolution shape: input `[n, c, h, w]`, `o` output channels, 3x3 kernel, padding 1.
struct Shape {
    name: &'static str,
    n: usize,
    c: usize,
    hw: usize,
    o: usize,
    /// Whether the backward pass also needs the input's gradient (not for a network's first layer).
    input_grad: bool,
}

/// W6's conv1 (on the images) and conv2 (on the pooled 16-channel maps).
const SHAPES: [Shape; 2] = [
    Shape {
        name: "conv1-64x1x28x28-16",
        n: 64,
        c: 1,
        hw: 28,
        o: 16,
        input_grad: false,
    },
    Shape {
        name: "conv2-64x16x14x14-32",
        n: 64,
        c: 16,
        hw: 14,
        o: 32,
        input_grad: true,
    },
];

/// Median microseconds per call of `f` over 21 reps of `calls` calls, after one warm-up rep. A
/// first call outside the timing returns `f`'s error, if it has one.
fn median_us(calls: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    f()?;
    let t = median_time(1, 21, || {
        for _ in 0..calls {
            f().expect("the same call succeeded before the timing");
        }
    });
    Ok(t * 1e6 / calls as f64)
}

/// Times each shape's forward (no graph) and forward + backward of `sum(conv(x))` (gradients of
/// the weight, the bias and, where the shape says so, the input).
pub fn conv_shapes(threads: usize) -> Result<()> {
    let mut rng = Rng::new(7);
    let config = Conv2dConfig {
        padding: (1, 1),
        ..Conv2dConfig::default()
    };
    for s in &SHAPES {
        let x = Tensor::rand([s.n, s.c, s.hw, s.hw], 0.0, 1.0, DType::F32, &mut rng)?;
        let w = Var::new(&Tensor::rand([s.o, s.c, 3, 3], -0.3, 0.3, DType::F32, &mut rng)?);
        let b = Var::new(&Tensor::rand([s.o], -0.3, 0.3, DType::F32, &mut rng)?);
        let xv = Var::new(&x);
        let input = || if s.input_grad { xv.tensor() } else { x.clone() };
        let fwd = median_us(20, || {
            no_grad(|| conv2d(&x, &w.tensor(), Some(&b.tensor()), &config)).map(|y| {
                std::hint::black_box(y);
            })
        })?;
        let fwd_bwd = median_us(10, || {
            let y = conv2d(&input(), &w.tensor(), Some(&b.tensor()), &config)?;
            let grads = y.sum_all()?.backward()?;
            std::hint::black_box(grads);
            Ok(())
        })?;
        // The backward's two products alone (`torch.nn.grad.conv2d_weight` / `conv2d_input`).
        let g = Tensor::rand([s.n, s.o, s.hw, s.hw], -1.0, 1.0, DType::F32, &mut rng)?;
        let one = (1, 1);
        let wgrad = median_us(10, || {
            std::hint::black_box(Tensor::conv2d_weight(&x, (3, 3), &g, one, one, one)?);
            Ok(())
        })?;
        let igrad = median_us(10, || {
            std::hint::black_box(Tensor::conv2d_input((s.hw, s.hw), &w.tensor(), &g, one, one, one)?);
            Ok(())
        })?;
        emit(s.name, threads, "fwd_us", fwd);
        emit(s.name, threads, "fwd_bwd_us", fwd_bwd);
        emit(s.name, threads, "weight_grad_us", wgrad);
        emit(s.name, threads, "input_grad_us", igrad);
    }
    Ok(())
}
