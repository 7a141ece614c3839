//! Convolutions (`Conv1d`, `Conv2d`), transposed convolutions (`ConvTranspose1d`,
//! `ConvTranspose2d`) and pooling (`MaxPool1d`/`2d`, `AvgPool1d`/`2d`, `AdaptiveAvgPool2d`).
//! Convolutions and average pooling are kiln-core's `unfold2d` (im2col) followed by one matrix
//! product or reduction, so their gradients come from `unfold2d`'s backward (`fold2d`); transposed
//! convolutions are the mirror image, a matrix product followed by `fold2d`. Max pooling is
//! kiln-core's direct `max_pool2d_with_indices` kernel, whose gradient is a gather/scatter. The
//! 1-d layers are the 2-d ones over a height-1 input.

use crate::init::Init;
use crate::module::VarStore;
use crate::Module;
use crate::{Error, Result};
use kiln_core::{Tensor, Var};

/// Hyper-parameters of a 2-d convolution (`torch.nn.Conv2d` keyword arguments).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv2dConfig {
    /// `(sH, sW)`, default `(1, 1)`.
    pub stride: (usize, usize),
    /// Zero padding `(pH, pW)`, default `(0, 0)`.
    pub padding: (usize, usize),
    /// `(dH, dW)`, default `(1, 1)`.
    pub dilation: (usize, usize),
    /// Channel groups; `in_channels` and `out_channels` must both be divisible by it. Default 1.
    pub groups: usize,
    /// Whether the layer has a bias. Default true.
    pub bias: bool,
}

impl Default for Conv2dConfig {
    fn default() -> Self {
        Conv2dConfig {
            stride: (1, 1),
            padding: (0, 0),
            dilation: (1, 1),
            groups: 1,
            bias: true,
        }
    }
}

/// 2-d cross-correlation over `[N, C, H, W]` with weight `[out, in/groups, kH, kW]`, as `torch.nn.Conv2d`.
#[derive(Debug, Clone, Module)]
pub struct Conv2d {
    /// `[out_channels, in_channels / groups, kH, kW]`.
    pub weight: Var,
    /// `[out_channels]`.
    pub bias: Option<Var>,
    /// Stride, padding, dilation, groups.
    #[module(skip)]
    pub config: Conv2dConfig,
}

fn check_groups(op: &'static str, cin: usize, cout: usize, groups: usize) -> Result<()> {
    if groups == 0 || !cin.is_multiple_of(groups) || !cout.is_multiple_of(groups) {
        return Err(Error::config(
            op,
            format!("in_channels {cin} and out_channels {cout} must be divisible by groups {groups}"),
        ));
    }
    Ok(())
}

/// The `weight` of shape `weight_shape` and, if `bias`, the `bias` `[out_channels]` of a
/// convolution or transposed convolution, initialised as PyTorch does: the weight by
/// [`Init::DEFAULT_WEIGHT`], the bias uniform in `±1/sqrt(fan_in)` with the fan-in the product of
/// the weight's dims after the first (PyTorch takes it from dim 1 for both kinds of layer).
fn conv_params(vs: &VarStore, weight_shape: &[usize], out_channels: usize, bias: bool) -> Result<(Var, Option<Var>)> {
    let weight = vs.var("weight", weight_shape, Init::DEFAULT_WEIGHT)?;
    let fan_in = weight_shape[1..].iter().product();
    let bias = if bias {
        Some(vs.var("bias", &[out_channels], Init::default_bias(fan_in))?)
    } else {
        None
    };
    Ok((weight, bias))
}

impl Conv2d {
    /// A new layer with PyTorch's default initialisation (uniform `±1/sqrt(fan_in)`).
    pub fn new(vs: &VarStore, in_channels: usize, out_channels: usize, kernel: (usize, usize), config: Conv2dConfig) -> Result<Conv2d> {
        check_groups("Conv2d", in_channels, out_channels, config.groups)?;
        let cg = in_channels / config.groups;
        let (weight, bias) = conv_params(vs, &[out_channels, cg, kernel.0, kernel.1], out_channels, config.bias)?;
        Ok(Conv2d { weight, bias, config })
    }
}

/// Number of window positions along one axis, PyTorch's output-size formula for convolution and
/// pooling: `(len + 2·padding − dilation·(kernel − 1) − 1) / stride + 1`.
///
/// Each step is checked, so a huge padding or dilation is an error naming `op` and the geometry
/// instead of a wrapped-around (small, wrong) size; so are a zero kernel, stride or dilation, and a
/// kernel larger than the padded input.
pub fn window_out_len(op: &'static str, len: usize, kernel: usize, stride: usize, padding: usize, dilation: usize) -> Result<usize> {
    let geometry = || format!("kernel {kernel}, stride {stride}, padding {padding}, dilation {dilation} over length {len}");
    if kernel == 0 || stride == 0 || dilation == 0 {
        return Err(Error::config(
            op,
            format!("kernel, stride and dilation must be positive: {}", geometry()),
        ));
    }
    let padded = padding.checked_mul(2).and_then(|v| v.checked_add(len));
    let span = dilation.checked_mul(kernel - 1).and_then(|v| v.checked_add(1));
    let (Some(padded), Some(span)) = (padded, span) else {
        return Err(Error::config(op, format!("window size overflows usize: {}", geometry())));
    };
    match padded.checked_sub(span) {
        Some(room) => Ok(room / stride + 1),
        None => Err(Error::config(
            op,
            format!(
                "the kernel (span {span}) is larger than input length {len} padded to {padded}: {}",
                geometry()
            ),
        )),
    }
}

/// `b` when it has the shape `[channels]` a convolution's bias must have; otherwise an error
/// naming the convolution (the reshape it goes through would otherwise take the blame).
fn bias_column<'b>(op: &'static str, b: &'b Tensor, channels: usize) -> Result<&'b Tensor> {
    if b.dims() != [channels] {
        return Err(Error::config(
            op,
            format!("bias {} must be [{channels}], one per output channel", b.shape()),
        ));
    }
    Ok(b)
}

/// The patch rows (`C * kh * kw`) from which an ungrouped convolution is the core op
/// [`Tensor::conv2d`] (products over groups of samples whose patches fit in L2) instead of
/// sample-by-sample products. With few rows the weight gradient is a product of a very deep, very
/// narrow shape (W6's first layer, one input channel: `[16, s·784] x [s·784, 9]` per group), which
/// ran slower than the per-sample products and their sum (Emerald Rapids vCPU, 2026-12-02,
/// 3 interleaved runs: forward 816-833 µs against 616-627, forward + backward 2.35-2.37 ms against
/// 1.81-1.83); the 16 -> 32 layer (144 rows) runs faster as the core op (see `Tensor::conv2d`).
/// A convolution the core op runs directly ([`kiln_core::cpu::conv2d_runs_direct`]) takes it at
/// any depth: the first layer's forward then took 255-303 µs against 553-651 (W6 on one thread,
/// 3 interleaved runs: 7.0-7.1k samples/s per-sample, 8.8k as the direct op).
const BATCH_PATCHES_MIN_K: usize = 32;

/// The shared im2col convolution: `x` `[N, C, H, W]`, `w` `[O, C/g, kh, kw]`.
fn conv2d_impl(op: &'static str, x: &Tensor, w: &Tensor, b: Option<&Tensor>, cfg: &Conv2dConfig) -> Result<Tensor> {
    let (wd, xd) = (w.dims().to_vec(), x.dims().to_vec());
    // The weight is a public field too, so its rank is checked before its dims are read.
    if wd.len() != 4 {
        return Err(Error::config(op, format!("weight {} must be [O, C/groups, kh, kw]", w.shape())));
    }
    // `groups` is a public field, so it may be anything here: a product that overflows matches nothing.
    if cfg.groups == 0 || x.rank() != 4 || wd[1].checked_mul(cfg.groups) != Some(xd[1]) {
        let want = wd[1].checked_mul(cfg.groups).map_or("C".to_string(), |c| c.to_string());
        return Err(Error::config(
            op,
            format!(
                "input {} does not match weight {} with groups {} (expected [N, {want}, H, W])",
                x.shape(),
                w.shape(),
                cfg.groups,
            ),
        ));
    }
    let (n, o, g) = (xd[0], wd[0], cfg.groups);
    let (kh, kw) = (wd[2], wd[3]);
    let oh = window_out_len(op, xd[2], kh, cfg.stride.0, cfg.padding.0, cfg.dilation.0)?;
    let ow = window_out_len(op, xd[3], kw, cfg.stride.1, cfg.padding.1, cfg.dilation.1)?;
    let k = wd[1] * kh * kw; // the weight's elements, so it fits
                             // A huge padding makes a huge output plane: its size is refused, not wrapped.
    let l = oh
        .checked_mul(ow)
        .ok_or_else(|| Error::config(op, format!("the output plane {oh} x {ow} overflows usize")))?;
    let win = kiln_core::backend::Window2d {
        kernel: (kh, kw),
        stride: cfg.stride,
        padding: cfg.padding,
        dilation: cfg.dilation,
    };
    let direct = kiln_core::cpu::conv2d_runs_direct((n, xd[1], xd[2], xd[3]), o, &win, x.dtype());
    if g == 1 && (k >= BATCH_PATCHES_MIN_K || direct) {
        // The core op: products over groups of samples whose patches fit in L2, the bias added
        // as they are copied out. N products of `O x K x L` were too small to run near the
        // machine's peak (W6's 16 -> 32 layer: 64 products of 32 x 144 x 196 at 44 GFLOP/s
        // against oneDNN's 92 for the whole layer), and one product over the whole batch's
        // patches ran at the speed of the L3 they spilled to.
        let b = b.map(|b| bias_column(op, b, o)).transpose()?;
        return Ok(x.conv2d(w, b, cfg.stride, cfg.padding, cfg.dilation)?);
    }
    let cols = x.unfold2d((kh, kw), cfg.stride, cfg.padding, cfg.dilation)?; // [N, C*kh*kw, L]
    let y = if g == 1 {
        w.reshape([o, k])?.matmul(&cols)? // [O, K] @ [N, K, L] -> [N, O, L]
    } else {
        // unfold's rows are channel-major, so each group's rows form one contiguous block.
        let cols = cols.reshape([n, g, k, l])?;
        let wg = w.reshape([g, o / g, k])?;
        wg.matmul(&cols)?.reshape([n, o, l])?
    };
    let y = match b {
        Some(b) => y.add(&bias_column(op, b, o)?.reshape([o, 1])?)?,
        None => y.contiguous()?,
    };
    Ok(y.reshape([n, o, oh, ow])?)
}

/// `torch.nn.functional.conv2d`: `x` `[N, C, H, W]`, `weight` `[O, C/groups, kH, kW]`, `bias`
/// `[O]`; `config.bias` is ignored (the bias argument decides).
///
/// ```
/// use kiln_core::Tensor;
/// use kiln_nn::functional::conv2d;
/// let x = Tensor::arange(0.0, 9.0, 1.0, kiln_core::DType::F32)?.reshape([1, 1, 3, 3])?;
/// let w = Tensor::ones([1, 1, 2, 2], kiln_core::DType::F32)?;
/// let b = Tensor::from_slice(&[0.5f32], [1])?;
/// let y = conv2d(&x, &w, Some(&b), &Default::default())?;
/// assert_eq!(y.to_vec::<f32>()?, vec![8.5, 12.5, 20.5, 24.5]);
/// # Ok::<(), kiln_nn::Error>(())
/// ```
pub fn conv2d(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>, config: &Conv2dConfig) -> Result<Tensor> {
    conv2d_impl("conv2d", x, weight, bias, config)
}

impl Conv2d {
    /// The convolution of `x` `[N, C, H, W]` (what [`Module::forward`] runs).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let b = self.bias.as_ref().map(|b| b.tensor());
        conv2d_impl("Conv2d::forward", x, &self.weight.tensor(), b.as_ref(), &self.config)
    }
}

/// Hyper-parameters of a 1-d convolution (`torch.nn.Conv1d` keyword arguments).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv1dConfig {
    /// Default 1.
    pub stride: usize,
    /// Zero padding on both sides, default 0.
    pub padding: usize,
    /// Default 1.
    pub dilation: usize,
    /// Default 1.
    pub groups: usize,
    /// Default true.
    pub bias: bool,
}

impl Default for Conv1dConfig {
    fn default() -> Self {
        Conv1dConfig {
            stride: 1,
            padding: 0,
            dilation: 1,
            groups: 1,
            bias: true,
        }
    }
}

/// 1-d cross-correlation over `[N, C, L]` with weight `[out, in/groups, k]`, as `torch.nn.Conv1d`
/// (computed as a `1 × k` 2-d convolution).
#[derive(Debug, Clone, Module)]
pub struct Conv1d {
    /// `[out_channels, in_channels / groups, k]`.
    pub weight: Var,
    /// `[out_channels]`.
    pub bias: Option<Var>,
    /// Stride, padding, dilation, groups.
    #[module(skip)]
    pub config: Conv1dConfig,
}

impl Conv1d {
    /// A new layer with PyTorch's default initialisation.
    pub fn new(vs: &VarStore, in_channels: usize, out_channels: usize, kernel: usize, config: Conv1dConfig) -> Result<Conv1d> {
        check_groups("Conv1d", in_channels, out_channels, config.groups)?;
        let cg = in_channels / config.groups;
        let (weight, bias) = conv_params(vs, &[out_channels, cg, kernel], out_channels, config.bias)?;
        Ok(Conv1d { weight, bias, config })
    }
}

impl Conv1d {
    /// The convolution of `x` `[N, C, L]` (what [`Module::forward`] runs).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if x.rank() != 3 {
            return Err(Error::config(
                "Conv1d::forward",
                format!("expected input [N, C, L], got {}", x.shape()),
            ));
        }
        let c = &self.config;
        let cfg2 = Conv2dConfig {
            stride: (1, c.stride),
            padding: (0, c.padding),
            dilation: (1, c.dilation),
            groups: c.groups,
            bias: c.bias,
        };
        let w = self.weight.tensor().unsqueeze(2)?;
        let b = self.bias.as_ref().map(|b| b.tensor());
        let y = conv2d_impl("Conv1d::forward", &x.unsqueeze(2)?, &w, b.as_ref(), &cfg2)?;
        Ok(y.squeeze(2)?)
    }
}

/// Hyper-parameters of a 2-d transposed convolution (`torch.nn.ConvTranspose2d` keyword arguments).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvTranspose2dConfig {
    /// `(sH, sW)`, default `(1, 1)`.
    pub stride: (usize, usize),
    /// `dilation · (kernel − 1) − padding` zero padding of the equivalent convolution: it removes
    /// `padding` rows/columns from each side of the full output. Default `(0, 0)`.
    pub padding: (usize, usize),
    /// Extra rows/columns added to one side of the output, to pick among the input sizes a strided
    /// convolution maps to the same size. Must be smaller than the stride or the dilation. Default `(0, 0)`.
    pub output_padding: (usize, usize),
    /// `(dH, dW)`, default `(1, 1)`.
    pub dilation: (usize, usize),
    /// Channel groups; `in_channels` and `out_channels` must both be divisible by it. Default 1.
    pub groups: usize,
    /// Whether the layer has a bias. Default true.
    pub bias: bool,
}

impl Default for ConvTranspose2dConfig {
    fn default() -> Self {
        ConvTranspose2dConfig {
            stride: (1, 1),
            padding: (0, 0),
            output_padding: (0, 0),
            dilation: (1, 1),
            groups: 1,
            bias: true,
        }
    }
}

/// Hyper-parameters of a 1-d transposed convolution (`torch.nn.ConvTranspose1d` keyword arguments).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvTranspose1dConfig {
    /// Default 1.
    pub stride: usize,
    /// Removed from each end of the full output, default 0.
    pub padding: usize,
    /// Added to the end of the output, default 0; smaller than the stride or the dilation.
    pub output_padding: usize,
    /// Default 1.
    pub dilation: usize,
    /// Default 1.
    pub groups: usize,
    /// Default true.
    pub bias: bool,
}

impl Default for ConvTranspose1dConfig {
    fn default() -> Self {
        ConvTranspose1dConfig {
            stride: 1,
            padding: 0,
            output_padding: 0,
            dilation: 1,
            groups: 1,
            bias: true,
        }
    }
}

impl ConvTranspose1dConfig {
    /// The same layer as a `1 × k` 2-d transposed convolution.
    fn to_2d(self) -> ConvTranspose2dConfig {
        ConvTranspose2dConfig {
            stride: (1, self.stride),
            padding: (0, self.padding),
            output_padding: (0, self.output_padding),
            dilation: (1, self.dilation),
            groups: self.groups,
            bias: self.bias,
        }
    }
}

/// Output length of a transposed convolution along one axis (PyTorch's formula
/// `(len − 1)·stride − 2·padding + dilation·(kernel − 1) + output_padding + 1`), together with the
/// length of the uncropped output `(len − 1)·stride + dilation·(kernel − 1) + 1` it is cut from.
///
/// Every step is checked, so a huge stride, dilation or padding is an error naming `op` and the
/// geometry rather than a wrapped size; so are a zero kernel, stride or dilation, an
/// `output_padding` not below the stride or the dilation, and a non-positive output length.
pub fn transposed_out_len(
    op: &'static str,
    len: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    output_padding: usize,
    dilation: usize,
) -> Result<(usize, usize)> {
    let geometry = || {
        format!(
            "kernel {kernel}, stride {stride}, padding {padding}, output_padding {output_padding}, dilation {dilation} over length {len}"
        )
    };
    if kernel == 0 || stride == 0 || dilation == 0 || len == 0 {
        return Err(Error::config(
            op,
            format!("kernel, stride, dilation and input length must be positive: {}", geometry()),
        ));
    }
    check_output_padding(op, output_padding, stride, dilation)?;
    let full = (len - 1)
        .checked_mul(stride)
        .and_then(|v| v.checked_add(dilation.checked_mul(kernel - 1)?))
        .and_then(|v| v.checked_add(1));
    let (Some(full), Some(twice_pad)) = (full, padding.checked_mul(2)) else {
        return Err(Error::config(op, format!("output size overflows usize: {}", geometry())));
    };
    let Some(with_extra) = full.checked_add(output_padding) else {
        return Err(Error::config(op, format!("output size overflows usize: {}", geometry())));
    };
    match with_extra.checked_sub(twice_pad) {
        Some(out) if out > 0 => Ok((out, full)),
        _ => Err(Error::config(
            op,
            format!("padding removes the whole output (uncropped length {full}): {}", geometry()),
        )),
    }
}

/// The shared transposed convolution: `x` `[N, Cin, H, W]`, `w` `[Cin, Cout/g, kh, kw]`.
///
/// It is the adjoint of [`conv2d_impl`]'s im2col product: every input pixel scatters `w`'s taps
/// into the output, which is one grouped matrix product to `[N, Cout·kh·kw, H·W]` columns summed
/// back by `fold2d` (the backward of `unfold2d`). The fold fills the whole uncropped output; the
/// padding is then cut off and the output padding appended, which also covers an `output_padding`
/// of at least the stride (allowed when the dilation is larger), where the cropped window count no
/// longer equals `H·W`.
fn conv_transpose2d_impl(op: &'static str, x: &Tensor, w: &Tensor, b: Option<&Tensor>, cfg: &ConvTranspose2dConfig) -> Result<Tensor> {
    let (wd, xd) = (w.dims().to_vec(), x.dims().to_vec());
    let g = cfg.groups;
    if g == 0 || x.rank() != 4 || w.rank() != 4 || wd[0] != xd[1] || !wd[0].is_multiple_of(g) {
        return Err(Error::config(
            op,
            format!(
                "input {} does not match weight {} with groups {g} (expected [N, {}, H, W] and in_channels divisible by groups)",
                x.shape(),
                w.shape(),
                wd.first().copied().unwrap_or(0),
            ),
        ));
    }
    let (kh, kw) = (wd[2], wd[3]);
    let (oh, fh) = transposed_out_len(op, xd[2], kh, cfg.stride.0, cfg.padding.0, cfg.output_padding.0, cfg.dilation.0)?;
    let (ow, fw) = transposed_out_len(op, xd[3], kw, cfg.stride.1, cfg.padding.1, cfg.output_padding.1, cfg.dilation.1)?;
    let (n, cin, og) = (xd[0], xd[1], wd[1]);
    let cout = og
        .checked_mul(g)
        .ok_or_else(|| Error::config(op, format!("out_channels of weight {} times groups {g} overflows", w.shape())))?;
    let l = xd[2] * xd[3];
    let k = og * kh * kw;
    // [g, Cin/g, Cout/g·K]ᵀ @ [N, g, Cin/g, L] -> [N, g, Cout/g·K, L]; unfold's channel-major rows
    // make each group's block contiguous, as in the forward convolution.
    let wg = w.reshape([g, cin / g, k])?.transpose(-2, -1)?;
    let cols = wg.matmul(&x.reshape([n, g, cin / g, l])?)?.reshape([n, g * k, l])?;
    let full = cols.fold2d((fh, fw), (kh, kw), cfg.stride, (0, 0), cfg.dilation)?;
    let crop = |t: Tensor, dim: isize, pad: usize, full_len: usize, out: usize| -> Result<Tensor> {
        let start = pad.min(full_len);
        let keep = (full_len - start).min(out);
        let t = if (start, keep) == (0, full_len) {
            t
        } else {
            t.narrow(dim, start, keep)?
        };
        if keep == out {
            return Ok(t);
        }
        let mut pads = vec![(0, 0); 4];
        pads[dim as usize] = (0, out - keep);
        Ok(t.pad(&pads, 0.0)?)
    };
    let y = crop(full, 2, cfg.padding.0, fh, oh)?;
    let y = crop(y, 3, cfg.padding.1, fw, ow)?;
    Ok(match b {
        Some(b) => y.add(&bias_column(op, b, cout)?.reshape([1, cout, 1, 1])?)?,
        None => y,
    })
}

/// `torch.nn.functional.conv_transpose2d`: `x` `[N, Cin, H, W]`, `weight` `[Cin, Cout/groups, kH, kW]`,
/// `bias` `[Cout]`; `config.bias` is ignored (the bias argument decides).
pub fn conv_transpose2d(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>, config: &ConvTranspose2dConfig) -> Result<Tensor> {
    conv_transpose2d_impl("conv_transpose2d", x, weight, bias, config)
}

/// `torch.nn.functional.conv_transpose1d`: `x` `[N, Cin, L]`, `weight` `[Cin, Cout/groups, k]`,
/// `bias` `[Cout]`; `config.bias` is ignored.
pub fn conv_transpose1d(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>, config: &ConvTranspose1dConfig) -> Result<Tensor> {
    check_ncl("conv_transpose1d", x)?;
    if weight.rank() != 3 {
        return Err(Error::config(
            "conv_transpose1d",
            format!("expected weight [Cin, Cout/groups, k], got {}", weight.shape()),
        ));
    }
    let y = conv_transpose2d_impl("conv_transpose1d", &x.unsqueeze(2)?, &weight.unsqueeze(2)?, bias, &config.to_2d())?;
    Ok(y.squeeze(2)?)
}

fn check_transposed_config(op: &'static str, cin: usize, cout: usize, c: &ConvTranspose2dConfig) -> Result<()> {
    check_groups(op, cin, cout, c.groups)?;
    for (axis, (op_pad, (s, d))) in [
        (c.output_padding.0, (c.stride.0, c.dilation.0)),
        (c.output_padding.1, (c.stride.1, c.dilation.1)),
    ]
    .into_iter()
    .enumerate()
    {
        if s == 0 || d == 0 {
            return Err(Error::config(
                op,
                format!("stride {s} and dilation {d} (axis {axis}) must be positive"),
            ));
        }
        check_output_padding(op, op_pad, s, d)?;
    }
    Ok(())
}

/// PyTorch's rule for transposed convolutions: the output padding picks among the `stride`
/// output sizes that map back to the same input size, so it must be below the stride (or the
/// dilation, which also spaces the taps).
fn check_output_padding(op: &'static str, output_padding: usize, stride: usize, dilation: usize) -> Result<()> {
    if output_padding >= stride && output_padding >= dilation {
        return Err(Error::config(
            op,
            format!("output_padding {output_padding} must be smaller than either stride {stride} or dilation {dilation}"),
        ));
    }
    Ok(())
}

/// 2-d transposed convolution ("deconvolution") over `[N, C, H, W]` with weight
/// `[in, out/groups, kH, kW]`, as `torch.nn.ConvTranspose2d`: the gradient of [`Conv2d`] with
/// respect to its input, used for learned upsampling.
#[derive(Debug, Clone, Module)]
pub struct ConvTranspose2d {
    /// `[in_channels, out_channels / groups, kH, kW]`.
    pub weight: Var,
    /// `[out_channels]`.
    pub bias: Option<Var>,
    /// Stride, padding, output padding, dilation, groups.
    #[module(skip)]
    pub config: ConvTranspose2dConfig,
}

impl ConvTranspose2d {
    /// A new layer with PyTorch's default initialisation (uniform `±1/sqrt(fan_in)`, where PyTorch
    /// takes the fan-in from the weight's dim 1, `out_channels / groups · kH · kW`).
    pub fn new(
        vs: &VarStore,
        in_channels: usize,
        out_channels: usize,
        kernel: (usize, usize),
        config: ConvTranspose2dConfig,
    ) -> Result<ConvTranspose2d> {
        check_transposed_config("ConvTranspose2d", in_channels, out_channels, &config)?;
        let og = out_channels / config.groups;
        let (weight, bias) = conv_params(vs, &[in_channels, og, kernel.0, kernel.1], out_channels, config.bias)?;
        Ok(ConvTranspose2d { weight, bias, config })
    }
}

/// The `output_padding` that makes a transposed convolution produce `output_size` (PyTorch's
/// `_output_padding`): `output_size` is the spatial sizes, or the full shape (batch and channel
/// first) whose trailing spatial sizes are used. Each size must lie between the smallest output
/// (no output padding) and that plus `stride − 1`, the sizes strided convolutions map back to
/// the input's size.
fn output_padding_for(
    op: &'static str,
    x: &Tensor,
    kernel: &[usize],
    stride: &[usize],
    padding: &[usize],
    dilation: &[usize],
    output_size: &[usize],
) -> Result<Vec<usize>> {
    let k = kernel.len();
    let spatial = if output_size.len() == k + 2 {
        &output_size[2..]
    } else {
        output_size
    };
    if spatial.len() != k || x.rank() != k + 2 {
        return Err(Error::config(
            op,
            format!(
                "output_size {output_size:?} must have {k} spatial sizes (or {} with batch and channels) for input {}",
                k + 2,
                x.shape()
            ),
        ));
    }
    let mut out = Vec::with_capacity(k);
    for d in 0..k {
        let len = x.dims()[2 + d];
        let (min, _) = transposed_out_len(op, len, kernel[d], stride[d], padding[d], 0, dilation[d])?;
        let max = min + stride[d] - 1;
        if !(min..=max).contains(&spatial[d]) {
            return Err(Error::config(
                op,
                format!(
                    "requested output size {} (spatial dim {d}) is not in [{min}, {max}], the sizes input {} can produce",
                    spatial[d],
                    x.shape()
                ),
            ));
        }
        out.push(spatial[d] - min);
    }
    Ok(out)
}

impl ConvTranspose2d {
    /// `forward(x, output_size=...)`: picks the `output_padding` that gives spatial size
    /// `output_size` (`[H, W]`, or `[N, C, H, W]`), overriding the configured one, since several
    /// input sizes of a strided convolution map to the same output size.
    ///
    /// ```
    /// use kiln_core::{DType, Tensor};
    /// use kiln_nn::{ConvTranspose2d, ConvTranspose2dConfig, VarStore};
    /// let vs = VarStore::new(DType::F32, 0);
    /// let cfg = ConvTranspose2dConfig { stride: (2, 2), padding: (1, 1), ..Default::default() };
    /// let up = ConvTranspose2d::new(&vs, 3, 2, (3, 3), cfg)?;
    /// let x = Tensor::zeros([1, 3, 4, 4], DType::F32)?;
    /// assert_eq!(up.forward_with_output_size(&x, &[8, 7])?.dims(), &[1, 2, 8, 7]);
    /// assert!(up.forward_with_output_size(&x, &[9, 7]).is_err()); // only 7 or 8 are reachable
    /// # Ok::<(), kiln_nn::Error>(())
    /// ```
    pub fn forward_with_output_size(&self, x: &Tensor, output_size: &[usize]) -> Result<Tensor> {
        const OP: &str = "ConvTranspose2d::forward";
        let c = &self.config;
        let wd = self.weight.shape().dims().to_vec();
        let op_pad = output_padding_for(
            OP,
            x,
            &wd[2..],
            &[c.stride.0, c.stride.1],
            &[c.padding.0, c.padding.1],
            &[c.dilation.0, c.dilation.1],
            output_size,
        )?;
        let cfg = ConvTranspose2dConfig {
            output_padding: (op_pad[0], op_pad[1]),
            ..*c
        };
        let b = self.bias.as_ref().map(|b| b.tensor());
        conv_transpose2d_impl(OP, x, &self.weight.tensor(), b.as_ref(), &cfg)
    }
}

impl ConvTranspose2d {
    /// The transposed convolution of `x` `[N, C, H, W]` with the configured output padding (what [`Module::forward`] runs).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let b = self.bias.as_ref().map(|b| b.tensor());
        conv_transpose2d_impl("ConvTranspose2d::forward", x, &self.weight.tensor(), b.as_ref(), &self.config)
    }
}

/// 1-d transposed convolution over `[N, C, L]` with weight `[in, out/groups, k]`, as
/// `torch.nn.ConvTranspose1d` (computed as a `1 × k` 2-d transposed convolution).
#[derive(Debug, Clone, Module)]
pub struct ConvTranspose1d {
    /// `[in_channels, out_channels / groups, k]`.
    pub weight: Var,
    /// `[out_channels]`.
    pub bias: Option<Var>,
    /// Stride, padding, output padding, dilation, groups.
    #[module(skip)]
    pub config: ConvTranspose1dConfig,
}

impl ConvTranspose1d {
    /// A new layer with PyTorch's default initialisation.
    pub fn new(
        vs: &VarStore,
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        config: ConvTranspose1dConfig,
    ) -> Result<ConvTranspose1d> {
        check_transposed_config("ConvTranspose1d", in_channels, out_channels, &config.to_2d())?;
        let og = out_channels / config.groups;
        let (weight, bias) = conv_params(vs, &[in_channels, og, kernel], out_channels, config.bias)?;
        Ok(ConvTranspose1d { weight, bias, config })
    }
}

impl ConvTranspose1d {
    /// `forward(x, output_size=...)`: picks the `output_padding` that gives length `output_size`
    /// (`[L]`, or `[N, C, L]`), overriding the configured one (see
    /// [`ConvTranspose2d::forward_with_output_size`]).
    pub fn forward_with_output_size(&self, x: &Tensor, output_size: &[usize]) -> Result<Tensor> {
        const OP: &str = "ConvTranspose1d::forward";
        check_ncl(OP, x)?;
        let c = &self.config;
        let k = self.weight.shape().dims()[2];
        let op_pad = output_padding_for(OP, x, &[k], &[c.stride], &[c.padding], &[c.dilation], output_size)?;
        let cfg = ConvTranspose1dConfig {
            output_padding: op_pad[0],
            ..*c
        };
        let w = self.weight.tensor().unsqueeze(2)?;
        let b = self.bias.as_ref().map(|b| b.tensor());
        let y = conv_transpose2d_impl(OP, &x.unsqueeze(2)?, &w, b.as_ref(), &cfg.to_2d())?;
        Ok(y.squeeze(2)?)
    }
}

impl ConvTranspose1d {
    /// The transposed convolution of `x` `[N, C, L]` with the configured output padding (what [`Module::forward`] runs).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        check_ncl("ConvTranspose1d::forward", x)?;
        let w = self.weight.tensor().unsqueeze(2)?;
        let b = self.bias.as_ref().map(|b| b.tensor());
        let y = conv_transpose2d_impl("ConvTranspose1d::forward", &x.unsqueeze(2)?, &w, b.as_ref(), &self.config.to_2d())?;
        Ok(y.squeeze(2)?)
    }
}

fn check_nchw(op: &'static str, x: &Tensor) -> Result<()> {
    if x.rank() != 4 {
        return Err(Error::config(op, format!("expected input [N, C, H, W], got {}", x.shape())));
    }
    Ok(())
}

fn check_ncl(op: &'static str, x: &Tensor) -> Result<()> {
    if x.rank() != 3 {
        return Err(Error::config(op, format!("expected input [N, C, L], got {}", x.shape())));
    }
    Ok(())
}

/// Window count of pooling along one axis, and how many positions past the padded input the last
/// window reaches (`ceil_mode` only; 0 in floor mode).
///
/// `ceil_mode` rounds the window count up, as PyTorch does, but drops a last window that would
/// start in the right padding: every window must start inside the input or the left padding.
/// Built on [`window_out_len`], so the geometry is checked the same way.
pub fn pool_out_len(
    op: &'static str,
    len: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    dilation: usize,
    ceil_mode: bool,
) -> Result<(usize, usize)> {
    let floor = window_out_len(op, len, kernel, stride, padding, dilation)?;
    if !ceil_mode {
        return Ok((floor, 0));
    }
    // window_out_len succeeded, so neither sum overflows and the span fits the padded length.
    let padded = len + 2 * padding;
    let span = dilation * (kernel - 1) + 1;
    let room = padded - span;
    let mut out = room.div_ceil(stride) + 1;
    // The last start is below `room + stride`, which may exceed usize::MAX only in u128.
    let last_start = |out: usize| (out - 1) as u128 * stride as u128;
    if last_start(out) >= len as u128 + padding as u128 {
        out -= 1;
    }
    let reach = last_start(out) + span as u128;
    let extra = usize::try_from(reach.saturating_sub(padded as u128))
        .map_err(|_| Error::config(op, format!("ceil_mode window overflows usize over length {len}")))?;
    if padded.checked_add(extra).is_none() {
        return Err(Error::config(op, format!("ceil_mode window overflows usize over length {len}")));
    }
    Ok((out, extra))
}

/// PyTorch's requirement of a padding of at most half the kernel on each axis, stated without
/// doubling the padding (which wraps for a huge one).
fn check_half_kernel_padding(op: &'static str, kernel: (usize, usize), padding: (usize, usize)) -> Result<()> {
    if padding.0 > kernel.0 / 2 || padding.1 > kernel.1 / 2 {
        return Err(Error::config(
            op,
            format!("padding {padding:?} must be at most half the kernel {kernel:?}"),
        ));
    }
    Ok(())
}

/// Geometry shared by the 1-d and 2-d pooling layers, all per `(H, W)` axis.
#[derive(Debug, Clone, Copy)]
struct PoolGeometry {
    kernel: (usize, usize),
    stride: (usize, usize),
    padding: (usize, usize),
    dilation: (usize, usize),
    ceil_mode: bool,
}

impl PoolGeometry {
    /// `(oh, ow)` and the extra bottom/right padding ceil mode needs, for an `[N, C, H, W]` input.
    fn out_lens(&self, op: &'static str, x: &Tensor) -> Result<((usize, usize), (usize, usize))> {
        let d = x.dims();
        let (oh, eh) = pool_out_len(
            op,
            d[2],
            self.kernel.0,
            self.stride.0,
            self.padding.0,
            self.dilation.0,
            self.ceil_mode,
        )?;
        let (ow, ew) = pool_out_len(
            op,
            d[3],
            self.kernel.1,
            self.stride.1,
            self.padding.1,
            self.dilation.1,
            self.ceil_mode,
        )?;
        Ok(((oh, ow), (eh, ew)))
    }

    fn max_pool(&self, op: &'static str, x: &Tensor) -> Result<Tensor> {
        check_half_kernel_padding(op, self.kernel, self.padding)?;
        check_nchw(op, x)?;
        let (_, (eh, ew)) = self.out_lens(op, x)?;
        // Ceil mode's last windows hang past the padded input; −∞ there never wins, so kiln-core's
        // symmetric-padding kernel computes them once the input is extended on the far side.
        let x = if eh + ew > 0 {
            x.pad(&[(0, 0), (0, 0), (0, eh), (0, ew)], f64::NEG_INFINITY)?
        } else {
            x.clone()
        };
        // One pass that also records each window's argmax; the gradient is a scatter of the output
        // gradient to those positions (kiln-core's max_pool2d_with_indices).
        Ok(x.max_pool2d_with_indices(self.kernel, self.stride, self.padding, self.dilation)?.0)
    }

    /// Average pooling: window sums over zero padding divided by PyTorch's divisor, which is the
    /// window clipped to the padded input (`count_include_pad`) or to the input itself, unless
    /// `divisor_override` replaces it. The divisor is a constant, so the gradient is that of the sum.
    fn avg_pool(&self, op: &'static str, x: &Tensor, count_include_pad: bool, divisor_override: Option<usize>) -> Result<Tensor> {
        check_half_kernel_padding(op, self.kernel, self.padding)?;
        check_nchw(op, x)?;
        if divisor_override == Some(0) {
            return Err(Error::config(op, "divisor_override must be positive"));
        }
        let ((oh, ow), (eh, ew)) = self.out_lens(op, x)?;
        let d = x.dims().to_vec();
        let xp = if eh + ew > 0 {
            x.pad(&[(0, 0), (0, 0), (0, eh), (0, ew)], 0.0)?
        } else {
            x.clone()
        };
        let (k, s, p) = (self.kernel, self.stride, self.padding);
        let cols = xp.unfold2d(k, s, p, (1, 1))?; // [N, C*kh*kw, L]
        let sums = cols.reshape([d[0], d[1], k.0 * k.1, oh * ow])?.sum(&[2], false)?;
        // Per-axis window sizes; their product is PyTorch's divisor (the clipping is separable).
        // window_out_len bounded every position, so the signed arithmetic is exact in i128.
        let counts = |out: usize, len: usize, k: usize, s: usize, p: usize| -> Vec<f64> {
            (0..out)
                .map(|o| {
                    let start = o as i128 * s as i128 - p as i128;
                    let end = (start + k as i128).min(len as i128 + p as i128);
                    let n = if count_include_pad {
                        end - start
                    } else {
                        end.min(len as i128) - start.max(0)
                    };
                    n as f64
                })
                .collect()
        };
        let y = if let Some(dv) = divisor_override {
            sums.div_scalar(dv as f64)?
        } else {
            let (ch, cw) = (counts(oh, d[2], k.0, s.0, p.0), counts(ow, d[3], k.1, s.1, p.1));
            let div: Vec<f64> = ch.iter().flat_map(|a| cw.iter().map(move |b| a * b)).collect();
            if div.iter().all(|&v| v == div[0]) {
                sums.div_scalar(div[0])?
            } else {
                let div = Tensor::from_vec(div, [oh * ow])?.to_dtype(x.dtype())?.to_device(x.device())?;
                sums.div(&div)?
            }
        };
        Ok(y.reshape([d[0], d[1], oh, ow])?)
    }
}

/// Max over `kernel` windows of `[N, C, H, W]` (`torch.nn.MaxPool2d`; padding acts as −∞; stride
/// defaults to the kernel size).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxPool2d {
    /// Window size.
    pub kernel: (usize, usize),
    /// Step between windows.
    pub stride: (usize, usize),
    /// Implicit −∞ padding on each side.
    pub padding: (usize, usize),
    /// Spacing of window taps.
    pub dilation: (usize, usize),
    /// Round the window count up (keeping a partial last window) instead of down.
    pub ceil_mode: bool,
}

impl MaxPool2d {
    /// `MaxPool2d(kernel_size=k)`: square window, stride `k`.
    pub fn new(k: usize) -> MaxPool2d {
        MaxPool2d::with(k, k, 0)
    }
    /// `MaxPool2d(kernel_size=k, stride=s, padding=p)`.
    pub fn with(k: usize, s: usize, p: usize) -> MaxPool2d {
        MaxPool2d {
            kernel: (k, k),
            stride: (s, s),
            padding: (p, p),
            dilation: (1, 1),
            ceil_mode: false,
        }
    }
    /// Sets `ceil_mode` (builder style).
    pub fn ceil_mode(mut self, on: bool) -> Self {
        self.ceil_mode = on;
        self
    }
}

impl Module for MaxPool2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        PoolGeometry {
            kernel: self.kernel,
            stride: self.stride,
            padding: self.padding,
            dilation: self.dilation,
            ceil_mode: self.ceil_mode,
        }
        .max_pool("MaxPool2d::forward", x)
    }
}

/// Max over windows of `[N, C, L]` (`torch.nn.MaxPool1d`; padding acts as −∞; stride defaults to
/// the kernel size).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxPool1d {
    /// Window size.
    pub kernel: usize,
    /// Step between windows.
    pub stride: usize,
    /// Implicit −∞ padding on each side.
    pub padding: usize,
    /// Spacing of window taps.
    pub dilation: usize,
    /// Round the window count up instead of down.
    pub ceil_mode: bool,
}

impl MaxPool1d {
    /// `MaxPool1d(kernel_size=k)`: stride `k`.
    pub fn new(k: usize) -> MaxPool1d {
        MaxPool1d::with(k, k, 0)
    }
    /// `MaxPool1d(kernel_size=k, stride=s, padding=p)`.
    pub fn with(k: usize, s: usize, p: usize) -> MaxPool1d {
        MaxPool1d {
            kernel: k,
            stride: s,
            padding: p,
            dilation: 1,
            ceil_mode: false,
        }
    }
    /// Sets `ceil_mode` (builder style).
    pub fn ceil_mode(mut self, on: bool) -> Self {
        self.ceil_mode = on;
        self
    }
}

impl Module for MaxPool1d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        const OP: &str = "MaxPool1d::forward";
        check_ncl(OP, x)?;
        let g = PoolGeometry {
            kernel: (1, self.kernel),
            stride: (1, self.stride),
            padding: (0, self.padding),
            dilation: (1, self.dilation),
            ceil_mode: self.ceil_mode,
        };
        Ok(g.max_pool(OP, &x.unsqueeze(2)?)?.squeeze(2)?)
    }
}

/// Mean over `kernel` windows of `[N, C, H, W]` (`torch.nn.AvgPool2d`; stride defaults to the
/// kernel size). By default zero padding counts in the divisor and the window count rounds down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AvgPool2d {
    /// Window size.
    pub kernel: (usize, usize),
    /// Step between windows.
    pub stride: (usize, usize),
    /// Zero padding on each side (at most half the kernel).
    pub padding: (usize, usize),
    /// Round the window count up instead of down; the partial last window averages only the
    /// positions inside the padded input.
    pub ceil_mode: bool,
    /// Whether padding positions count in the divisor (PyTorch's default true).
    pub count_include_pad: bool,
    /// A fixed divisor for every window instead of the window size.
    pub divisor_override: Option<usize>,
}

impl AvgPool2d {
    /// `AvgPool2d(kernel_size=k)`.
    pub fn new(k: usize) -> AvgPool2d {
        AvgPool2d::with(k, k, 0)
    }
    /// `AvgPool2d(kernel_size=k, stride=s, padding=p)`.
    pub fn with(k: usize, s: usize, p: usize) -> AvgPool2d {
        AvgPool2d {
            kernel: (k, k),
            stride: (s, s),
            padding: (p, p),
            ceil_mode: false,
            count_include_pad: true,
            divisor_override: None,
        }
    }
    /// Sets `ceil_mode` (builder style).
    pub fn ceil_mode(mut self, on: bool) -> Self {
        self.ceil_mode = on;
        self
    }
    /// Sets `count_include_pad` (builder style).
    pub fn count_include_pad(mut self, on: bool) -> Self {
        self.count_include_pad = on;
        self
    }
}

impl Module for AvgPool2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        PoolGeometry {
            kernel: self.kernel,
            stride: self.stride,
            padding: self.padding,
            dilation: (1, 1),
            ceil_mode: self.ceil_mode,
        }
        .avg_pool("AvgPool2d::forward", x, self.count_include_pad, self.divisor_override)
    }
}

/// Mean over windows of `[N, C, L]` (`torch.nn.AvgPool1d`; stride defaults to the kernel size).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AvgPool1d {
    /// Window size.
    pub kernel: usize,
    /// Step between windows.
    pub stride: usize,
    /// Zero padding on each side (at most half the kernel).
    pub padding: usize,
    /// Round the window count up instead of down.
    pub ceil_mode: bool,
    /// Whether padding positions count in the divisor (PyTorch's default true).
    pub count_include_pad: bool,
}

impl AvgPool1d {
    /// `AvgPool1d(kernel_size=k)`.
    pub fn new(k: usize) -> AvgPool1d {
        AvgPool1d::with(k, k, 0)
    }
    /// `AvgPool1d(kernel_size=k, stride=s, padding=p)`.
    pub fn with(k: usize, s: usize, p: usize) -> AvgPool1d {
        AvgPool1d {
            kernel: k,
            stride: s,
            padding: p,
            ceil_mode: false,
            count_include_pad: true,
        }
    }
    /// Sets `ceil_mode` (builder style).
    pub fn ceil_mode(mut self, on: bool) -> Self {
        self.ceil_mode = on;
        self
    }
    /// Sets `count_include_pad` (builder style).
    pub fn count_include_pad(mut self, on: bool) -> Self {
        self.count_include_pad = on;
        self
    }
}

impl Module for AvgPool1d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        const OP: &str = "AvgPool1d::forward";
        check_ncl(OP, x)?;
        let g = PoolGeometry {
            kernel: (1, self.kernel),
            stride: (1, self.stride),
            padding: (0, self.padding),
            dilation: (1, 1),
            ceil_mode: self.ceil_mode,
        };
        Ok(g.avg_pool(OP, &x.unsqueeze(2)?, self.count_include_pad, None)?.squeeze(2)?)
    }
}

/// Average pooling to a fixed output size (`torch.nn.AdaptiveAvgPool2d`): output cell `i` averages
/// input rows `floor(i*H/oh) .. ceil((i+1)*H/oh)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdaptiveAvgPool2d {
    /// `(oh, ow)`.
    pub output_size: (usize, usize),
}

impl AdaptiveAvgPool2d {
    /// Square output `s × s`.
    pub fn new(s: usize) -> AdaptiveAvgPool2d {
        AdaptiveAvgPool2d { output_size: (s, s) }
    }
}

impl Module for AdaptiveAvgPool2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        check_nchw("AdaptiveAvgPool2d::forward", x)?;
        let (oh, ow) = self.output_size;
        let d = x.dims().to_vec();
        let (h, w) = (d[2], d[3]);
        if oh == 0 || ow == 0 {
            return Err(Error::config(
                "AdaptiveAvgPool2d::forward",
                format!("output size {:?} must be positive", self.output_size),
            ));
        }
        // As PyTorch: every window would be empty, and their means NaN.
        if h == 0 || w == 0 {
            return Err(Error::config(
                "AdaptiveAvgPool2d::forward",
                format!("input {} has an empty spatial dimension", x.shape()),
            ));
        }
        if (oh, ow) == (1, 1) {
            return Ok(x.mean(&[2, 3], true)?);
        }
        if h.is_multiple_of(oh) && w.is_multiple_of(ow) {
            let k = (h / oh, w / ow);
            return AvgPool2d {
                kernel: k,
                stride: k,
                ..AvgPool2d::new(1)
            }
            .forward(x);
        }
        // Uneven windows: a window's mean is separable, the mean over its rows of the means over
        // its columns, so the pooling is `P_h · x · P_wᵀ` with averaging matrices of shape
        // `[oh, h]` and `[ow, w]`: two products, whatever the output size, and their gradients
        // come with them (one narrow+mean per output cell had cost oh·ow ops). Window bounds are
        // `i * H / oh`, computed in u128 (exact: both factors fit in u64), as the product can
        // overflow for an output size far past the input's.
        const OP: &str = "AdaptiveAvgPool2d::forward";
        kiln_core::Shape::new(&[d[0], d[1], oh, ow]).checked_elem_count_for(x.dtype().size_in_bytes(), OP)?;
        let bound = |i: usize, len: usize, out: usize, up: bool| -> usize {
            let (num, den) = (i as u128 * len as u128, out as u128);
            // The result is at most `len`, so it fits back in usize.
            (if up { num.div_ceil(den) } else { num / den }) as usize
        };
        let averaging = |out: usize, len: usize| -> Result<Tensor> {
            let n = out
                .checked_mul(len)
                .ok_or_else(|| Error::config(OP, format!("an averaging matrix of {out} x {len} overflows")))?;
            let mut m: Vec<f64> = Vec::new();
            m.try_reserve_exact(n)
                .map_err(|_| Error::config(OP, format!("cannot allocate an averaging matrix of {out} x {len}")))?;
            m.resize(n, 0.0);
            for (i, row) in m.chunks_mut(len).enumerate() {
                let (a, b) = (bound(i, len, out, false), bound(i + 1, len, out, true));
                row[a..b].fill(1.0 / (b - a) as f64);
            }
            Ok(Tensor::from_vec(m, [out, len])?.to_dtype(x.dtype())?)
        };
        let cols = x.matmul(&averaging(ow, w)?.t()?)?;
        Ok(averaging(oh, h)?.matmul(&cols)?)
    }
}
