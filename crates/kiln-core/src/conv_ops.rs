//! The 2-d convolution as one op, with its two gradients (`torch.nn.grad.conv2d_input` and
//! `conv2d_weight`) as ops of their own. The three close under differentiation: each one's
//! gradients are the other two (and itself), so gradients of any order stay convolutions, which
//! the backend runs without materialising a whole batch's patches.

use crate::autograd::Op;
use crate::backend::Window2d;
use crate::ops::{float_check, mul_checked, out_shape, same_dtype, tracking};
use crate::{Error, Result, Tensor};

/// `[N, C, H, W]`-style rank check.
fn rank4(t: &Tensor, what: &str, expected: &str, op: &'static str) -> Result<()> {
    if t.rank() != 4 {
        return Err(Error::shape(op, format!("{what} must be {expected}, got shape {}", t.shape())));
    }
    Ok(())
}

/// Rejects a geometry whose patch matrix for one sample (`C·kh·kw` rows by `L` positions, the
/// unit the backend works in) does not fit `usize`.
fn patch_size(c: usize, kernel: (usize, usize), l: usize, op: &'static str) -> Result<()> {
    let taps = mul_checked(kernel.0, kernel.1, op, || format!("kernel {kernel:?}"))?;
    let rows = mul_checked(c, taps, op, || format!("channels times taps of kernel {kernel:?}"))?;
    mul_checked(rows, l, op, || "one sample's patches".to_string())?;
    Ok(())
}

impl Tensor {
    /// The 2-d convolution (cross-correlation) of this `[N, C, H, W]` tensor by `weight`
    /// `[O, C, kh, kw]`, plus `bias` `[O]` on each output channel when given: `[N, O, oh, ow]`,
    /// as `torch.nn.functional.conv2d(x, weight, bias, stride, padding, dilation)` (one group).
    /// Its gradients are [`Tensor::conv2d_input`], [`Tensor::conv2d_weight`] and the bias's sum
    /// of the output gradient, differentiable in turn to any order.
    ///
    /// ```
    /// use kiln_core::Tensor;
    /// let x = Tensor::arange(0.0, 9.0, 1.0, kiln_core::DType::F32)?.reshape([1, 1, 3, 3])?;
    /// let w = Tensor::ones([1, 1, 2, 2], kiln_core::DType::F32)?;
    /// let b = Tensor::from_slice(&[0.5f32], [1])?;
    /// let y = x.conv2d(&w, Some(&b), (1, 1), (0, 0), (1, 1))?;
    /// assert_eq!(y.to_vec::<f32>()?, vec![8.5, 12.5, 20.5, 24.5]);
    /// # Ok::<(), kiln_core::Error>(())
    /// ```
    pub fn conv2d(
        &self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        stride: (usize, usize),
        padding: (usize, usize),
        dilation: (usize, usize),
    ) -> Result<Tensor> {
        const OP: &str = "conv2d";
        rank4(weight, "the weight", "[O, C, kh, kw]", OP)?;
        let w = Tensor::window((weight.dims()[2], weight.dims()[3]), stride, padding, dilation, OP)?;
        self.conv2d_in(weight, bias, &w)
    }

    pub(crate) fn conv2d_in(&self, weight: &Tensor, bias: Option<&Tensor>, w: &Window2d) -> Result<Tensor> {
        const OP: &str = "conv2d";
        float_check(self, OP)?;
        same_dtype(self, weight, OP)?;
        rank4(weight, "the weight", "[O, C, kh, kw]", OP)?;
        let (oh, ow) = self.window_positions(w, OP)?;
        let (xd, wd) = (self.dims(), weight.dims());
        if wd[1] != xd[1] || (wd[2], wd[3]) != w.kernel {
            return Err(Error::shape(
                OP,
                format!(
                    "weight {} does not match input {} (expected [O, {}, {}, {}])",
                    weight.shape(),
                    self.shape(),
                    xd[1],
                    w.kernel.0,
                    w.kernel.1
                ),
            ));
        }
        if let Some(b) = bias {
            same_dtype(self, b, OP)?;
            if b.dims() != [wd[0]] {
                return Err(Error::shape(
                    OP,
                    format!("bias {} must be [{}], one per output channel", b.shape(), wd[0]),
                ));
            }
        }
        let l = mul_checked(oh, ow, OP, || format!("window positions over input {}", self.shape()))?;
        patch_size(xd[1], w.kernel, l, OP)?;
        let out = out_shape(&[xd[0], wd[0], oh, ow], self.dtype(), OP)?;
        let bias_storage = bias.map(|b| (&*b.0.storage, &b.0.layout));
        let storage = self
            .0
            .storage
            .conv2d(&self.0.layout, &weight.0.storage, &weight.0.layout, bias_storage, w)?;
        let inputs: &[&Tensor] = match bias {
            Some(b) => &[self, weight, b],
            None => &[self, weight],
        };
        let rec = tracking(inputs).then(|| Op::Conv2d(self.clone(), weight.clone(), bias.cloned(), *w));
        Tensor::make(storage, out, rec, OP)
    }

    /// The gradient of [`Tensor::conv2d`] with respect to its input, as
    /// `torch.nn.grad.conv2d_input(input_size, weight, grad, stride, padding, dilation)`: given
    /// the weight `[O, C, kh, kw]` and the output's gradient `grad` `[N, O, oh, ow]`, the
    /// `[N, C, H, W]` gradient of an input of height and width `input_hw` (a strided window may
    /// leave some of the input's last rows or columns unread, so the size is not implied).
    ///
    /// ```
    /// use kiln_core::Tensor;
    /// let w = Tensor::ones([1, 1, 2, 2], kiln_core::DType::F32)?;
    /// let g = Tensor::ones([1, 1, 2, 2], kiln_core::DType::F32)?;
    /// let gx = Tensor::conv2d_input((3, 3), &w, &g, (1, 1), (0, 0), (1, 1))?;
    /// // How many windows cover each input element.
    /// assert_eq!(gx.to_vec::<f32>()?, vec![1.0, 2.0, 1.0, 2.0, 4.0, 2.0, 1.0, 2.0, 1.0]);
    /// # Ok::<(), kiln_core::Error>(())
    /// ```
    pub fn conv2d_input(
        input_hw: (usize, usize),
        weight: &Tensor,
        grad: &Tensor,
        stride: (usize, usize),
        padding: (usize, usize),
        dilation: (usize, usize),
    ) -> Result<Tensor> {
        const OP: &str = "conv2d_input";
        rank4(weight, "the weight", "[O, C, kh, kw]", OP)?;
        let w = Tensor::window((weight.dims()[2], weight.dims()[3]), stride, padding, dilation, OP)?;
        Tensor::conv2d_input_in(input_hw, weight, grad, &w)
    }

    pub(crate) fn conv2d_input_in(input_hw: (usize, usize), weight: &Tensor, grad: &Tensor, w: &Window2d) -> Result<Tensor> {
        const OP: &str = "conv2d_input";
        float_check(weight, OP)?;
        same_dtype(weight, grad, OP)?;
        rank4(weight, "the weight", "[O, C, kh, kw]", OP)?;
        rank4(grad, "the output's gradient", "[N, O, oh, ow]", OP)?;
        let (wd, gd) = (weight.dims(), grad.dims());
        let positions = Tensor::window_out_lens(w, input_hw, OP)?;
        if (wd[2], wd[3]) != w.kernel || gd[1] != wd[0] || positions != Some((gd[2], gd[3])) {
            return Err(Error::shape(
                OP,
                format!(
                    "gradient {} does not fit weight {} over an input of size {input_hw:?} (stride {:?}, padding {:?}, dilation {:?})",
                    grad.shape(),
                    weight.shape(),
                    w.stride,
                    w.padding,
                    w.dilation
                ),
            ));
        }
        patch_size(wd[1], w.kernel, gd[2] * gd[3], OP)?;
        let out = out_shape(&[gd[0], wd[1], input_hw.0, input_hw.1], weight.dtype(), OP)?;
        let storage = weight
            .0
            .storage
            .conv2d_input(&weight.0.layout, &grad.0.storage, &grad.0.layout, w, input_hw)?;
        let rec = tracking(&[weight, grad]).then(|| Op::Conv2dInput(weight.clone(), grad.clone(), *w));
        Tensor::make(storage, out, rec, OP)
    }

    /// The gradient of [`Tensor::conv2d`] with respect to its weight, as
    /// `torch.nn.grad.conv2d_weight(input, weight_size, grad, stride, padding, dilation)`: given
    /// the input `[N, C, H, W]` and the output's gradient `grad` `[N, O, oh, ow]`, the
    /// `[O, C, kh, kw]` gradient of a weight with `kernel = (kh, kw)`, summed over the batch.
    ///
    /// ```
    /// use kiln_core::Tensor;
    /// let x = Tensor::arange(0.0, 9.0, 1.0, kiln_core::DType::F32)?.reshape([1, 1, 3, 3])?;
    /// let g = Tensor::ones([1, 1, 2, 2], kiln_core::DType::F32)?;
    /// let gw = Tensor::conv2d_weight(&x, (2, 2), &g, (1, 1), (0, 0), (1, 1))?;
    /// // Each tap's sum over the window positions it reads.
    /// assert_eq!(gw.to_vec::<f32>()?, vec![8.0, 12.0, 20.0, 24.0]);
    /// # Ok::<(), kiln_core::Error>(())
    /// ```
    pub fn conv2d_weight(
        input: &Tensor,
        kernel: (usize, usize),
        grad: &Tensor,
        stride: (usize, usize),
        padding: (usize, usize),
        dilation: (usize, usize),
    ) -> Result<Tensor> {
        let w = Tensor::window(kernel, stride, padding, dilation, "conv2d_weight")?;
        Tensor::conv2d_weight_in(input, grad, &w)
    }

    pub(crate) fn conv2d_weight_in(input: &Tensor, grad: &Tensor, w: &Window2d) -> Result<Tensor> {
        const OP: &str = "conv2d_weight";
        float_check(input, OP)?;
        same_dtype(input, grad, OP)?;
        let (oh, ow) = input.window_positions(w, OP)?;
        rank4(grad, "the output's gradient", "[N, O, oh, ow]", OP)?;
        let (xd, gd) = (input.dims(), grad.dims());
        if gd[0] != xd[0] || (gd[2], gd[3]) != (oh, ow) {
            return Err(Error::shape(
                OP,
                format!(
                    "gradient {} does not fit input {} (expected [{}, O, {oh}, {ow}] for kernel {:?}, stride {:?}, padding {:?}, dilation {:?})",
                    grad.shape(),
                    input.shape(),
                    xd[0],
                    w.kernel,
                    w.stride,
                    w.padding,
                    w.dilation
                ),
            ));
        }
        let l = mul_checked(oh, ow, OP, || format!("window positions over input {}", input.shape()))?;
        patch_size(xd[1], w.kernel, l, OP)?;
        let out = out_shape(&[gd[1], xd[1], w.kernel.0, w.kernel.1], input.dtype(), OP)?;
        let storage = input.0.storage.conv2d_weight(&input.0.layout, &grad.0.storage, &grad.0.layout, w)?;
        let rec = tracking(&[input, grad]).then(|| Op::Conv2dWeight(input.clone(), grad.clone(), *w));
        Tensor::make(storage, out, rec, OP)
    }
}
