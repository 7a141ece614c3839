//! Multi-head self-attention (`torch.nn.MultiheadAttention` used as self-attention).

use crate::init::Init;
use crate::linear::Linear;
use crate::module::{join, Module, VarStore};
use crate::{Error, Result};
use kiln_core::{DType, Tensor, Var};

/// Multi-head scaled dot-product self-attention with PyTorch's parameter layout: `in_proj_weight`
/// `[3E, E]` (rows `[W_q; W_k; W_v]`), `in_proj_bias` `[3E]`, and `out_proj` (a [`Linear`]).
/// Heads split the projected features into `num_heads` contiguous groups of `E / num_heads`.
///
/// [`Module::forward`] takes `[B, L, E]` (`batch_first`, the default here) or `[L, B, E]` and
/// applies the causal mask when `causal` is set.
pub struct MultiheadAttention {
    /// `E`.
    pub embed_dim: usize,
    /// Number of heads.
    pub num_heads: usize,
    /// `[3E, E]`.
    pub in_proj_weight: Var,
    /// `[3E]`.
    pub in_proj_bias: Option<Var>,
    /// Output projection `E → E`.
    pub out_proj: Linear,
    /// Inputs are `[B, L, E]` (true) or `[L, B, E]` (false).
    pub batch_first: bool,
    /// Whether [`Module::forward`] masks future positions.
    pub causal: bool,
}

/// `[L, L]` u8 mask with 1 above the diagonal (position `i` may not attend to `j > i`).
pub fn causal_mask(len: usize) -> Result<Tensor> {
    let v: Vec<u8> = (0..len * len).map(|k| u8::from(k % len > k / len)).collect();
    Ok(Tensor::from_vec(v, [len, len])?)
}

impl MultiheadAttention {
    /// `MultiheadAttention(embed_dim, num_heads, bias=True, batch_first=True)` with PyTorch's
    /// initialisation (Xavier-uniform input projection, zero biases).
    pub fn new(vs: &VarStore, embed_dim: usize, num_heads: usize) -> Result<MultiheadAttention> {
        if num_heads == 0 || !embed_dim.is_multiple_of(num_heads) {
            return Err(Error::config(
                "MultiheadAttention",
                format!("embed_dim {embed_dim} must be divisible by num_heads {num_heads}"),
            ));
        }
        let in_proj_weight = vs.var("in_proj_weight", &[3 * embed_dim, embed_dim], Init::XavierUniform { gain: 1.0 })?;
        let in_proj_bias = Some(vs.var("in_proj_bias", &[3 * embed_dim], Init::Const(0.0))?);
        let op = vs.pp("out_proj");
        let out_proj = Linear::from_vars(
            op.var("weight", &[embed_dim, embed_dim], Init::DEFAULT_WEIGHT)?,
            Some(op.var("bias", &[embed_dim], Init::Const(0.0))?),
        )?;
        Ok(MultiheadAttention {
            embed_dim,
            num_heads,
            in_proj_weight,
            in_proj_bias,
            out_proj,
            batch_first: true,
            causal: false,
        })
    }

    /// Sets whether [`Module::forward`] applies the causal mask (builder style).
    pub fn causal(mut self, on: bool) -> Self {
        self.causal = on;
        self
    }

    /// Self-attention of `x`, returning the output and the attention weights averaged over heads
    /// (`[B, L, L]`). `mask` (`[L, L]` u8, 1 = masked) is combined with the causal mask if `causal`.
    pub fn attend(&self, x: &Tensor, mask: Option<&Tensor>, causal: bool) -> Result<(Tensor, Tensor)> {
        let e = self.embed_dim;
        if x.rank() != 3 || x.dims()[2] != e {
            return Err(Error::config(
                "MultiheadAttention::forward",
                format!("expected input [B, L, {e}] (or [L, B, {e}]), got {}", x.shape()),
            ));
        }
        let x = if self.batch_first { x.clone() } else { x.transpose(0, 1)? };
        let (b, l, h) = (x.dims()[0], x.dims()[1], self.num_heads);
        let d = e / h;
        let mut qkv = x.matmul(&self.in_proj_weight.tensor().t()?)?;
        if let Some(bias) = &self.in_proj_bias {
            qkv = qkv.add(&bias.tensor())?;
        }
        let heads = |i: usize| -> Result<Tensor> { Ok(qkv.narrow(2, i * e, e)?.reshape([b, l, h, d])?.permute(&[0, 2, 1, 3])?) };
        let (q, k, v) = (heads(0)?, heads(1)?, heads(2)?);
        let mut scores = q.matmul(&k.transpose(-2, -1)?)?.mul_scalar(1.0 / (d as f64).sqrt())?;
        let mut full_mask: Option<Tensor> = None;
        if causal {
            full_mask = Some(causal_mask(l)?);
        }
        if let Some(m) = mask {
            if m.dims() != [l, l] || m.dtype() != DType::U8 {
                return Err(Error::config(
                    "MultiheadAttention::forward",
                    format!("mask must be [{l}, {l}] u8, got {} ({})", m.shape(), m.dtype()),
                ));
            }
            full_mask = Some(match full_mask {
                Some(c) => c.add(m)?.gt_scalar(0.0)?,
                None => m.clone(),
            });
        }
        if let Some(m) = &full_mask {
            scores = scores.masked_fill(m, f64::NEG_INFINITY)?;
        }
        let attn = scores.softmax(-1)?;
        let ctx = attn.matmul(&v)?.permute(&[0, 2, 1, 3])?.reshape([b, l, e])?;
        let mut out = self.out_proj.forward(&ctx)?;
        if !self.batch_first {
            out = out.transpose(0, 1)?;
        }
        Ok((out, attn.mean(&[1], false)?))
    }
}

impl Module for MultiheadAttention {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.attend(x, None, self.causal)?.0)
    }
    fn visit_parameters(&self, prefix: &str, f: &mut dyn FnMut(String, &Var)) {
        f(join(prefix, "in_proj_weight"), &self.in_proj_weight);
        if let Some(b) = &self.in_proj_bias {
            f(join(prefix, "in_proj_bias"), b);
        }
        self.out_proj.visit_parameters(&join(prefix, "out_proj"), f);
    }
}
