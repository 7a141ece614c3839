//! Multi-head attention (`torch.nn.MultiheadAttention`): self- and cross-attention, key/value
//! dimensions other than the embedding's, key-padding and attention masks, attention dropout,
//! `add_bias_kv` / `add_zero_attn` and unbatched `[L, E]` inputs.

use crate::container::Dropout;
use crate::init::Init;
use crate::linear::Linear;
use crate::module::VarStore;
use crate::Module;
use crate::{Error, Result};
use kiln_core::{DType, Tensor, Var};

/// `torch.nn.MultiheadAttention` keyword arguments besides `embed_dim` and `num_heads`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MultiheadAttentionConfig {
    /// Dropout probability on the attention weights (training mode only), default 0.
    pub dropout: f64,
    /// Input and output projection biases, default true.
    pub bias: bool,
    /// Feature size of keys, default `embed_dim`.
    pub kdim: Option<usize>,
    /// Feature size of values, default `embed_dim`.
    pub vdim: Option<usize>,
    /// Inputs are `[B, L, E]` (true, the default here; PyTorch's default is false) or `[L, B, E]`.
    pub batch_first: bool,
    /// Learned key and value biases `bias_k`, `bias_v` `[1, 1, E]` appended to the projected keys
    /// and values as one extra position every query can attend to. Default false.
    pub add_bias_kv: bool,
    /// A zero key and value appended (after `bias_k`/`bias_v`) as one more position, so attention
    /// can put weight on "nothing". Default false.
    pub add_zero_attn: bool,
}

impl Default for MultiheadAttentionConfig {
    fn default() -> Self {
        MultiheadAttentionConfig {
            dropout: 0.0,
            bias: true,
            kdim: None,
            vdim: None,
            batch_first: true,
            add_bias_kv: false,
            add_zero_attn: false,
        }
    }
}

/// Masks and options of one attention call ([`MultiheadAttention::attention`]).
#[derive(Debug, Clone, Copy)]
pub struct AttentionOptions<'a> {
    /// `[B, S]`: u8 with 1 = this key is padding (ignored), or float values added to the scores.
    pub key_padding_mask: Option<&'a Tensor>,
    /// `[L, S]` or `[B·num_heads, L, S]`: u8 with 1 = query `i` may not attend to key `j`, or float
    /// values added to the scores.
    pub attn_mask: Option<&'a Tensor>,
    /// Also mask keys after each query's own position (`j > i`).
    pub causal: bool,
    /// Return the weights averaged over heads `[B, L, S]` (default) or per head `[B, H, L, S]`.
    pub average_attn_weights: bool,
}

impl Default for AttentionOptions<'_> {
    fn default() -> Self {
        AttentionOptions {
            key_padding_mask: None,
            attn_mask: None,
            causal: false,
            average_attn_weights: true,
        }
    }
}

/// Multi-head scaled dot-product attention with PyTorch's parameter layout: `in_proj_weight`
/// `[3E, E]` (rows `[W_q; W_k; W_v]`) when keys and values have `E` features, otherwise
/// `q_proj_weight` `[E, E]`, `k_proj_weight` `[E, kdim]`, `v_proj_weight` `[E, vdim]`; then
/// `in_proj_bias` `[3E]` and `out_proj` (a [`Linear`]). Heads split the projected features into
/// `num_heads` contiguous groups of `E / num_heads`.
///
/// [`Module::forward`] is self-attention of `[B, L, E]` (`batch_first`, the default here) or
/// `[L, B, E]`, or of an unbatched `[L, E]`, with the causal mask when `causal` is set; [`MultiheadAttention::attention`] takes
/// separate query, key and value and the masks.
#[derive(Module)]
pub struct MultiheadAttention {
    /// `E`.
    pub embed_dim: usize,
    /// Number of heads.
    pub num_heads: usize,
    /// Key features.
    pub kdim: usize,
    /// Value features.
    pub vdim: usize,
    /// `[3E, E]` when `kdim == vdim == E`.
    pub in_proj_weight: Option<Var>,
    /// `[E, E]` when `kdim` or `vdim` differs from `E`.
    pub q_proj_weight: Option<Var>,
    /// `[E, kdim]` when `kdim` or `vdim` differs from `E`.
    pub k_proj_weight: Option<Var>,
    /// `[E, vdim]` when `kdim` or `vdim` differs from `E`.
    pub v_proj_weight: Option<Var>,
    /// `[3E]`.
    pub in_proj_bias: Option<Var>,
    /// `[1, 1, E]`, appended to the projected keys (`add_bias_kv`).
    pub bias_k: Option<Var>,
    /// `[1, 1, E]`, appended to the projected values (`add_bias_kv`).
    pub bias_v: Option<Var>,
    /// Output projection `E → E`.
    pub out_proj: Linear,
    /// Inputs are `[B, L, E]` (true) or `[L, B, E]` (false).
    pub batch_first: bool,
    /// Whether [`Module::forward`] masks future positions.
    pub causal: bool,
    /// Append a zero key and value position (`add_zero_attn`).
    pub add_zero_attn: bool,
    dropout: Dropout,
}

/// `[L, L]` u8 mask with 1 above the diagonal (position `i` may not attend to `j > i`).
pub fn causal_mask(len: usize) -> Result<Tensor> {
    causal_mask_rect(len, len)
}

fn causal_mask_rect(l: usize, s: usize) -> Result<Tensor> {
    // Built by comparing an iota column with an iota row, so a size too large for memory is the
    // tensor library's allocation error rather than an abort in a Vec.
    let rows = Tensor::arange(0.0, l as f64, 1.0, DType::I64)?.unsqueeze(1)?;
    let cols = Tensor::arange(0.0, s as f64, 1.0, DType::I64)?.unsqueeze(0)?;
    Ok(cols.gt(&rows)?.to_dtype(DType::U8)?)
}

impl MultiheadAttention {
    /// `MultiheadAttention(embed_dim, num_heads, bias=True, batch_first=True)` with PyTorch's
    /// initialisation (Xavier-uniform input projection, zero biases).
    pub fn new(vs: &VarStore, embed_dim: usize, num_heads: usize) -> Result<MultiheadAttention> {
        MultiheadAttention::with_config(vs, embed_dim, num_heads, &MultiheadAttentionConfig::default())
    }

    /// `MultiheadAttention(embed_dim, num_heads, dropout, bias, kdim=, vdim=, batch_first=)`.
    /// A dropout layer draws its seed from `vs` (only when `dropout > 0`, so other layers'
    /// initialisation does not move).
    pub fn with_config(vs: &VarStore, embed_dim: usize, num_heads: usize, cfg: &MultiheadAttentionConfig) -> Result<MultiheadAttention> {
        const OP: &str = "MultiheadAttention";
        if num_heads == 0 || !embed_dim.is_multiple_of(num_heads) {
            return Err(Error::config(
                OP,
                format!("embed_dim {embed_dim} must be divisible by num_heads {num_heads}"),
            ));
        }
        let (kdim, vdim) = (cfg.kdim.unwrap_or(embed_dim), cfg.vdim.unwrap_or(embed_dim));
        if kdim == 0 || vdim == 0 {
            return Err(Error::config(OP, format!("kdim {kdim} and vdim {vdim} must be positive")));
        }
        let xavier = Init::XavierUniform { gain: 1.0 };
        let same = kdim == embed_dim && vdim == embed_dim;
        let three_e = embed_dim
            .checked_mul(3)
            .ok_or_else(|| Error::config(OP, format!("3 · embed_dim {embed_dim} overflows")))?;
        let (in_proj_weight, q, k, v) = if same {
            (Some(vs.var("in_proj_weight", &[three_e, embed_dim], xavier)?), None, None, None)
        } else {
            (
                None,
                Some(vs.var("q_proj_weight", &[embed_dim, embed_dim], xavier)?),
                Some(vs.var("k_proj_weight", &[embed_dim, kdim], xavier)?),
                Some(vs.var("v_proj_weight", &[embed_dim, vdim], xavier)?),
            )
        };
        let in_proj_bias = if cfg.bias {
            Some(vs.var("in_proj_bias", &[three_e], Init::Const(0.0))?)
        } else {
            None
        };
        // PyTorch initialises bias_k and bias_v with xavier_normal_ ([1, 1, E]: fans 1·E and E).
        let (bias_k, bias_v) = if cfg.add_bias_kv {
            let normal = Init::XavierNormal { gain: 1.0 };
            (
                Some(vs.var("bias_k", &[1, 1, embed_dim], normal)?),
                Some(vs.var("bias_v", &[1, 1, embed_dim], normal)?),
            )
        } else {
            (None, None)
        };
        let op = vs.pp("out_proj");
        let out_bias = if cfg.bias {
            Some(op.var("bias", &[embed_dim], Init::Const(0.0))?)
        } else {
            None
        };
        let out_proj = Linear::from_vars(op.var("weight", &[embed_dim, embed_dim], Init::DEFAULT_WEIGHT)?, out_bias)?;
        let seed = if cfg.dropout > 0.0 { vs.next_seed() } else { 0 };
        let dropout =
            Dropout::new(cfg.dropout, seed).map_err(|_| Error::config(OP, format!("dropout must be in [0, 1], got {}", cfg.dropout)))?;
        Ok(MultiheadAttention {
            embed_dim,
            num_heads,
            kdim,
            vdim,
            in_proj_weight,
            q_proj_weight: q,
            k_proj_weight: k,
            v_proj_weight: v,
            in_proj_bias,
            bias_k,
            bias_v,
            out_proj,
            batch_first: cfg.batch_first,
            causal: false,
            add_zero_attn: cfg.add_zero_attn,
            dropout,
        })
    }

    /// Sets whether [`Module::forward`] applies the causal mask (builder style).
    pub fn causal(mut self, on: bool) -> Self {
        self.causal = on;
        self
    }

    /// The attention-weight dropout probability.
    pub fn dropout(&self) -> f64 {
        self.dropout.p()
    }

    /// Self-attention of `x`, returning the output and the attention weights averaged over heads
    /// (`[B, L, L]`). `mask` (`[L, L]` u8, 1 = masked) is combined with the causal mask if `causal`.
    pub fn attend(&self, x: &Tensor, mask: Option<&Tensor>, causal: bool) -> Result<(Tensor, Tensor)> {
        if let Some(m) = mask {
            let seq_dim = if self.batch_first && x.rank() == 3 { 1 } else { 0 };
            let l = x.dims().get(seq_dim).copied().unwrap_or(0);
            if m.dims() != [l, l] || m.dtype() != DType::U8 {
                return Err(Error::config(
                    "MultiheadAttention::forward",
                    format!("mask must be [{l}, {l}] u8, got {} ({})", m.shape(), m.dtype()),
                ));
            }
        }
        let opts = AttentionOptions {
            attn_mask: mask,
            causal,
            ..Default::default()
        };
        self.attention(x, x, x, &opts)
    }

    /// `query @ W_i^T + b_i` for projection `i` (0 = q, 1 = k, 2 = v).
    fn project(&self, x: &Tensor, i: usize) -> Result<Tensor> {
        let e = self.embed_dim;
        let w = match (
            &self.in_proj_weight,
            [&self.q_proj_weight, &self.k_proj_weight, &self.v_proj_weight][i],
        ) {
            (Some(w), _) => w.tensor().narrow(0, i * e, e)?,
            (None, Some(w)) => w.tensor(),
            (None, None) => unreachable!("the constructor creates one layout"),
        };
        let y = x.matmul(&w.t()?)?;
        Ok(match &self.in_proj_bias {
            Some(b) => y.add(&b.tensor().narrow(0, i * e, e)?)?,
            None => y,
        })
    }

    /// Attention of `query` `[B, L, E]` over `key` `[B, S, kdim]` / `value` `[B, S, vdim]` (or
    /// sequence-first when `batch_first` is false), as `torch.nn.MultiheadAttention.forward`
    /// with `need_weights=True`. Returns the output `[B, L, E]` and the attention weights (after
    /// dropout, as PyTorch returns them). Float masks are added to the scores; u8 masks become
    /// `−∞` there, so a query whose every key is masked gets NaN, as in PyTorch.
    ///
    /// Unbatched inputs (query `[L, E]`, key `[S, kdim]`, value `[S, vdim]`, all three 2-d) are
    /// one batch, as in PyTorch: `key_padding_mask` is then `[S]`, `attn_mask` `[L, S]` or
    /// `[num_heads, L, S]`, and the batch dim is absent from the output `[L, E]` and the weights
    /// (`[L, S]`, or `[num_heads, L, S]` per head). With `add_bias_kv` / `add_zero_attn` the
    /// weights have one more key column for each.
    pub fn attention(&self, query: &Tensor, key: &Tensor, value: &Tensor, opts: &AttentionOptions) -> Result<(Tensor, Tensor)> {
        const OP: &str = "MultiheadAttention::forward";
        let ranks = [query.rank(), key.rank(), value.rank()];
        if !ranks.contains(&2) {
            return self.attention_batched(query, key, value, opts, self.batch_first);
        }
        if ranks != [2, 2, 2] {
            return Err(Error::config(
                OP,
                format!(
                    "query {}, key {} and value {} must all be unbatched (2-d) or all batched (3-d)",
                    query.shape(),
                    key.shape(),
                    value.shape()
                ),
            ));
        }
        let kpm = match opts.key_padding_mask {
            Some(m) if m.rank() == 1 => Some(m.unsqueeze(0)?),
            Some(m) => {
                return Err(Error::config(
                    OP,
                    format!("key_padding_mask of unbatched input must be [S], got {}", m.shape()),
                ))
            }
            None => None,
        };
        let batched = AttentionOptions {
            key_padding_mask: kpm.as_ref(),
            ..*opts
        };
        let one = |t: &Tensor| t.unsqueeze(0);
        let (out, w) = self.attention_batched(&one(query)?, &one(key)?, &one(value)?, &batched, true)?;
        Ok((out.squeeze(0)?, w.squeeze(0)?))
    }

    /// [`MultiheadAttention::attention`] of 3-d inputs, laid out `[B, len, feat]` when
    /// `batch_first`, else `[len, B, feat]`.
    fn attention_batched(
        &self,
        query: &Tensor,
        key: &Tensor,
        value: &Tensor,
        opts: &AttentionOptions,
        batch_first: bool,
    ) -> Result<(Tensor, Tensor)> {
        const OP: &str = "MultiheadAttention::forward";
        let (e, h) = (self.embed_dim, self.num_heads);
        let bad = |what: &str, t: &Tensor, feat: usize| {
            Error::config(
                OP,
                format!("expected {what} [B, len, {feat}] (or [len, B, {feat}]), got {}", t.shape()),
            )
        };
        for (what, t, feat) in [("query", query, e), ("key", key, self.kdim), ("value", value, self.vdim)] {
            if t.rank() != 3 || t.dims()[2] != feat {
                return Err(bad(what, t, feat));
            }
        }
        let bf = |t: &Tensor| -> Result<Tensor> { Ok(if batch_first { t.clone() } else { t.transpose(0, 1)? }) };
        let (q, k, v) = (bf(query)?, bf(key)?, bf(value)?);
        let (b, l, s) = (q.dims()[0], q.dims()[1], k.dims()[1]);
        if k.dims()[0] != b || v.dims()[0] != b || v.dims()[1] != s {
            return Err(Error::config(
                OP,
                format!(
                    "query {}, key {} and value {} disagree on batch size or key/value length",
                    query.shape(),
                    key.shape(),
                    value.shape()
                ),
            ));
        }
        let d = e / h;
        let heads = |t: Tensor, len: usize| -> Result<Tensor> { Ok(t.reshape([b, len, h, d])?.permute(&[0, 2, 1, 3])?) };
        let (mut kp, mut vp) = (self.project(&k, 1)?, self.project(&v, 2)?); // [B, S, E]
                                                                             // Extra key/value positions (PyTorch's add_bias_kv, then add_zero_attn): every query may
                                                                             // attend to them, so the masks get zero (unmasked) columns for them below.
        let mut extra = 0;
        if let (Some(bk), Some(bv)) = (&self.bias_k, &self.bias_v) {
            kp = Tensor::cat(&[kp, bk.tensor().broadcast_to([b, 1, e])?], 1)?;
            vp = Tensor::cat(&[vp, bv.tensor().broadcast_to([b, 1, e])?], 1)?;
            extra += 1;
        }
        if self.add_zero_attn {
            let zeros = Tensor::zeros([b, 1, e], kp.dtype())?;
            kp = Tensor::cat(&[kp, zeros.clone()], 1)?;
            vp = Tensor::cat(&[vp, zeros], 1)?;
            extra += 1;
        }
        let qh = heads(self.project(&q, 0)?, l)?;
        let kh = heads(kp, s + extra)?;
        let vh = heads(vp, s + extra)?;
        let mut scores = qh.matmul(&kh.transpose(-2, -1)?)?.mul_scalar(1.0 / (d as f64).sqrt())?; // [B, H, L, S']
        if let Some(mask) = self.additive_mask(opts, b, l, s, scores.dtype())? {
            let mask = if extra > 0 {
                let mut pads = vec![(0, 0); mask.rank()];
                pads[mask.rank() - 1] = (0, extra);
                mask.pad(&pads, 0.0)?
            } else {
                mask
            };
            scores = scores.add(&mask)?;
        }
        let attn = self.dropout.forward(&scores.softmax(-1)?)?;
        let ctx = attn.matmul(&vh)?.permute(&[0, 2, 1, 3])?.reshape([b, l, e])?;
        let mut out = self.out_proj.forward(&ctx)?;
        if !batch_first {
            out = out.transpose(0, 1)?;
        }
        let weights = if opts.average_attn_weights { attn.mean(&[1], false)? } else { attn };
        Ok((out, weights))
    }

    /// The masks of `opts` merged into one additive mask broadcastable to `[B, H, L, S]` (PyTorch
    /// turns boolean masks into `−∞` entries and adds the key-padding mask to the attention mask).
    fn additive_mask(&self, opts: &AttentionOptions, b: usize, l: usize, s: usize, dt: DType) -> Result<Option<Tensor>> {
        const OP: &str = "MultiheadAttention::forward";
        let h = self.num_heads;
        let additive = |m: &Tensor, what: &str| -> Result<Tensor> {
            match m.dtype() {
                DType::U8 => Ok(Tensor::zeros(m.shape().clone(), dt)?.masked_fill(m, f64::NEG_INFINITY)?),
                t if t.is_float() => Ok(m.to_dtype(dt)?),
                t => Err(Error::config(OP, format!("{what} must be u8 (1 = masked) or float, got {t}"))),
            }
        };
        let mut total: Option<Tensor> = None;
        let mut add = |m: Tensor| -> Result<()> {
            total = Some(match total.take() {
                Some(t) => t.add(&m)?,
                None => m,
            });
            Ok(())
        };
        if let Some(m) = opts.attn_mask {
            let shaped = if m.dims() == [l, s] {
                additive(m, "attn_mask")?.reshape([1, 1, l, s])?
            } else if m.rank() == 3 && m.dims() == [b * h, l, s] {
                additive(m, "attn_mask")?.reshape([b, h, l, s])?
            } else {
                return Err(Error::config(
                    OP,
                    format!("attn_mask must be [{l}, {s}] or [{}, {l}, {s}], got {}", b * h, m.shape()),
                ));
            };
            add(shaped)?;
        }
        if let Some(m) = opts.key_padding_mask {
            if m.dims() != [b, s] {
                return Err(Error::config(OP, format!("key_padding_mask must be [{b}, {s}], got {}", m.shape())));
            }
            add(additive(m, "key_padding_mask")?.reshape([b, 1, 1, s])?)?;
        }
        if opts.causal {
            add(additive(&causal_mask_rect(l, s)?, "causal mask")?.reshape([1, 1, l, s])?)?;
        }
        Ok(total)
    }
}

impl MultiheadAttention {
    /// Self-attention of `x` (with the causal mask when `causal` is set), the attention output
    /// only (what [`Module::forward`] runs).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.attend(x, None, self.causal)?.0)
    }
}
