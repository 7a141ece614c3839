//! Convolutions (`Conv1d`, `Conv2d`) and pooling (`MaxPool2d`, `AvgPool2d`, `AdaptiveAvgPool2d`).
//! Convolutions and average pooling are kiln-core's `unfold2d` (im2col) followed by one matrix
//! product or reduction, so their gradients come from `unfold2d`'s backward (`fold2d`); max pooling
//! is kiln-core's direct `max_pool2d_with_indices` kernel, whose gradient is a gather/scatter.

use crate::init::Init;
use crate::module::{join, Module, VarStore};
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
#[derive(Debug, Clone)]
pub struct Conv2d {
    /// `[out_channels, in_channels / groups, kH, kW]`.
    pub weight: Var,
    /// `[out_channels]`.
    pub bias: Option<Var>,
    /// Stride, padding, dilation, groups.
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

impl Conv2d {
    /// A new layer with PyTorch's default initialisation (uniform `±1/sqrt(fan_in)`).
    pub fn new(vs: &VarStore, in_channels: usize, out_channels: usize, kernel: (usize, usize), config: Conv2dConfig) -> Result<Conv2d> {
        check_groups("Conv2d", in_channels, out_channels, config.groups)?;
        let cg = in_channels / config.groups;
        let weight = vs.var("weight", &[out_channels, cg, kernel.0, kernel.1], Init::DEFAULT_WEIGHT)?;
        let bias = if config.bias {
            Some(vs.var("bias", &[out_channels], Init::default_bias(cg * kernel.0 * kernel.1))?)
        } else {
            None
        };
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

/// The shared im2col convolution: `x` `[N, C, H, W]`, `w` `[O, C/g, kh, kw]`.
fn conv2d_impl(op: &'static str, x: &Tensor, w: &Tensor, b: Option<&Tensor>, cfg: &Conv2dConfig) -> Result<Tensor> {
    let (wd, xd) = (w.dims().to_vec(), x.dims().to_vec());
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
    let cols = x.unfold2d((kh, kw), cfg.stride, cfg.padding, cfg.dilation)?; // [N, C*kh*kw, L]
    let k = wd[1] * kh * kw;
    let l = oh * ow;
    let y = if g == 1 {
        w.reshape([o, k])?.matmul(&cols)? // [O, K] @ [N, K, L] -> [N, O, L]
    } else {
        // unfold's rows are channel-major, so each group's rows form one contiguous block.
        let cols = cols.reshape([n, g, k, l])?;
        let wg = w.reshape([g, o / g, k])?;
        wg.matmul(&cols)?.reshape([n, o, l])?
    };
    let y = match b {
        Some(b) => y.add(&b.reshape([o, 1])?)?,
        None => y,
    };
    Ok(y.reshape([n, o, oh, ow])?)
}

impl Module for Conv2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let b = self.bias.as_ref().map(|b| b.tensor());
        conv2d_impl("Conv2d::forward", x, &self.weight.tensor(), b.as_ref(), &self.config)
    }
    fn visit_parameters(&self, prefix: &str, f: &mut dyn FnMut(String, &Var)) {
        f(join(prefix, "weight"), &self.weight);
        if let Some(b) = &self.bias {
            f(join(prefix, "bias"), b);
        }
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
#[derive(Debug, Clone)]
pub struct Conv1d {
    /// `[out_channels, in_channels / groups, k]`.
    pub weight: Var,
    /// `[out_channels]`.
    pub bias: Option<Var>,
    /// Stride, padding, dilation, groups.
    pub config: Conv1dConfig,
}

impl Conv1d {
    /// A new layer with PyTorch's default initialisation.
    pub fn new(vs: &VarStore, in_channels: usize, out_channels: usize, kernel: usize, config: Conv1dConfig) -> Result<Conv1d> {
        check_groups("Conv1d", in_channels, out_channels, config.groups)?;
        let cg = in_channels / config.groups;
        let weight = vs.var("weight", &[out_channels, cg, kernel], Init::DEFAULT_WEIGHT)?;
        let bias = if config.bias {
            Some(vs.var("bias", &[out_channels], Init::default_bias(cg * kernel))?)
        } else {
            None
        };
        Ok(Conv1d { weight, bias, config })
    }
}

impl Module for Conv1d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
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
    fn visit_parameters(&self, prefix: &str, f: &mut dyn FnMut(String, &Var)) {
        f(join(prefix, "weight"), &self.weight);
        if let Some(b) = &self.bias {
            f(join(prefix, "bias"), b);
        }
    }
}

fn check_nchw(op: &'static str, x: &Tensor) -> Result<()> {
    if x.rank() != 4 {
        return Err(Error::config(op, format!("expected input [N, C, H, W], got {}", x.shape())));
    }
    Ok(())
}

/// Windows of `x` as `[N, C, kh*kw, oh, ow]`-ordered `[N, C, kh*kw, L]` plus `(oh, ow)`.
fn windows(
    op: &'static str,
    x: &Tensor,
    k: (usize, usize),
    s: (usize, usize),
    p: (usize, usize),
    d: (usize, usize),
) -> Result<(Tensor, usize, usize)> {
    check_nchw(op, x)?;
    let dims = x.dims().to_vec();
    let oh = window_out_len(op, dims[2], k.0, s.0, p.0, d.0)?;
    let ow = window_out_len(op, dims[3], k.1, s.1, p.1, d.1)?;
    let cols = x.unfold2d(k, s, p, d)?; // zero padding, counted in the average as in PyTorch
    Ok((cols.reshape([dims[0], dims[1], k.0 * k.1, oh * ow])?, oh, ow))
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
}

impl MaxPool2d {
    /// `MaxPool2d(kernel_size=k)`: square window, stride `k`.
    pub fn new(k: usize) -> MaxPool2d {
        MaxPool2d {
            kernel: (k, k),
            stride: (k, k),
            padding: (0, 0),
            dilation: (1, 1),
        }
    }
    /// `MaxPool2d(kernel_size=k, stride=s, padding=p)`.
    pub fn with(k: usize, s: usize, p: usize) -> MaxPool2d {
        MaxPool2d {
            kernel: (k, k),
            stride: (s, s),
            padding: (p, p),
            dilation: (1, 1),
        }
    }
}

impl Module for MaxPool2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        // `p > k / 2` is `2p > k` without the doubling, which wraps for a huge padding.
        if self.padding.0 > self.kernel.0 / 2 || self.padding.1 > self.kernel.1 / 2 {
            return Err(Error::config(
                "MaxPool2d::forward",
                format!("padding {:?} must be at most half the kernel {:?}", self.padding, self.kernel),
            ));
        }
        check_nchw("MaxPool2d::forward", x)?;
        let d = x.dims();
        let (k, st, p, dl) = (self.kernel, self.stride, self.padding, self.dilation);
        window_out_len("MaxPool2d::forward", d[2], k.0, st.0, p.0, dl.0)?;
        window_out_len("MaxPool2d::forward", d[3], k.1, st.1, p.1, dl.1)?;
        // One pass over the input that also records each window's argmax; the gradient is a
        // scatter of the output gradient to those positions (kiln-core's max_pool2d_with_indices).
        Ok(x.max_pool2d_with_indices(k, st, p, dl)?.0)
    }
}

/// Mean over `kernel` windows of `[N, C, H, W]` (`torch.nn.AvgPool2d`: zero padding counted in the
/// divisor, floor mode; stride defaults to the kernel size).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AvgPool2d {
    /// Window size.
    pub kernel: (usize, usize),
    /// Step between windows.
    pub stride: (usize, usize),
    /// Zero padding on each side.
    pub padding: (usize, usize),
}

impl AvgPool2d {
    /// `AvgPool2d(kernel_size=k)`.
    pub fn new(k: usize) -> AvgPool2d {
        AvgPool2d {
            kernel: (k, k),
            stride: (k, k),
            padding: (0, 0),
        }
    }
    /// `AvgPool2d(kernel_size=k, stride=s, padding=p)`.
    pub fn with(k: usize, s: usize, p: usize) -> AvgPool2d {
        AvgPool2d {
            kernel: (k, k),
            stride: (s, s),
            padding: (p, p),
        }
    }
}

impl Module for AvgPool2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (w, oh, ow) = windows("AvgPool2d::forward", x, self.kernel, self.stride, self.padding, (1, 1))?;
        let d = x.dims();
        Ok(w.mean(&[2], false)?.reshape([d[0], d[1], oh, ow])?)
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
        if (oh, ow) == (1, 1) {
            return Ok(x.mean(&[2, 3], true)?);
        }
        if h.is_multiple_of(oh) && w.is_multiple_of(ow) {
            return AvgPool2d {
                kernel: (h / oh, w / ow),
                stride: (h / oh, w / ow),
                padding: (0, 0),
            }
            .forward(x);
        }
        // Uneven windows: one narrow+mean per output cell (rare; small outputs). Window bounds are
        // `i * H / oh`, whose product can overflow for an output size far past the input's, so it
        // is computed in u128 (exact, since both factors fit in u64) and the output shape checked.
        kiln_core::Shape::new(&[d[0], d[1], oh, ow]).checked_elem_count_for(x.dtype().size_in_bytes(), "AdaptiveAvgPool2d::forward")?;
        let bound = |i: usize, len: usize, out: usize, up: bool| -> usize {
            let (num, den) = (i as u128 * len as u128, out as u128);
            // The result is at most `len`, so it fits back in usize.
            (if up { num.div_ceil(den) } else { num / den }) as usize
        };
        let mut rows = Vec::new();
        for i in 0..oh {
            let (r0, r1) = (bound(i, h, oh, false), bound(i + 1, h, oh, true));
            let mut cells = Vec::new();
            for j in 0..ow {
                let (c0, c1) = (bound(j, w, ow, false), bound(j + 1, w, ow, true));
                cells.push(x.narrow(2, r0, r1 - r0)?.narrow(3, c0, c1 - c0)?.mean(&[2, 3], true)?);
            }
            rows.push(Tensor::cat(&cells, 3)?);
        }
        Ok(Tensor::cat(&rows, 2)?)
    }
}
