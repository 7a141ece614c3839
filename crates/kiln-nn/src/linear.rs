//! `Linear`, `Embedding` and `Flatten`.

use crate::init::Init;
use crate::module::VarStore;
use crate::Module;
use crate::{Error, Result};
use kiln_core::{DType, Tensor, Var};

/// `y = x Wᵀ + b` with `W` of shape `[out_features, in_features]`, as `torch.nn.Linear`.
///
/// Inputs may have any number of leading dims (`[*, in_features]`).
#[derive(Debug, Clone, Module)]
pub struct Linear {
    /// `[out_features, in_features]`.
    pub weight: Var,
    /// `[out_features]`, if the layer has a bias.
    pub bias: Option<Var>,
}

impl Linear {
    /// A layer with bias, initialised like PyTorch (uniform in `±1/sqrt(in_features)`), with
    /// parameters `weight` and `bias` under `vs`'s prefix.
    pub fn new(vs: &VarStore, in_features: usize, out_features: usize) -> Result<Linear> {
        Linear::with_bias(vs, in_features, out_features, true)
    }

    /// As [`Linear::new`], with or without bias (`bias=False`).
    pub fn with_bias(vs: &VarStore, in_features: usize, out_features: usize, bias: bool) -> Result<Linear> {
        let weight = vs.var("weight", &[out_features, in_features], Init::DEFAULT_WEIGHT)?;
        let bias = if bias {
            Some(vs.var("bias", &[out_features], Init::default_bias(in_features))?)
        } else {
            None
        };
        Ok(Linear { weight, bias })
    }

    /// A layer around existing parameters (`weight` `[out, in]`, `bias` `[out]`).
    pub fn from_vars(weight: Var, bias: Option<Var>) -> Result<Linear> {
        let ws = weight.shape();
        if ws.rank() != 2 {
            return Err(Error::config("Linear", format!("weight must be [out, in], got {ws}")));
        }
        if let Some(b) = &bias {
            if b.shape().dims() != [ws.dims()[0]] {
                return Err(Error::config("Linear", format!("bias {} does not match weight {ws}", b.shape())));
            }
        }
        Ok(Linear { weight, bias })
    }

    /// `in_features`.
    pub fn in_features(&self) -> usize {
        self.weight.shape().dims()[1]
    }

    /// `out_features`.
    pub fn out_features(&self) -> usize {
        self.weight.shape().dims()[0]
    }
}

impl Linear {
    /// `x Wᵀ + b` for `x` of shape `[*, in_features]` (what [`Module::forward`] runs).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let inf = self.in_features();
        if x.rank() == 0 || x.dims()[x.rank() - 1] != inf {
            return Err(Error::config(
                "Linear::forward",
                format!(
                    "input {} does not end in in_features = {inf} (weight {})",
                    x.shape(),
                    self.weight.shape()
                ),
            ));
        }
        let y = x.matmul(&self.weight.tensor().t()?)?;
        Ok(match &self.bias {
            Some(b) => y.add(&b.tensor())?,
            None => y,
        })
    }
}

/// A lookup table `[num_embeddings, embedding_dim]` indexed by i64 tensors, as `torch.nn.Embedding`
/// (initialised from N(0, 1)). Output shape is the index shape plus `embedding_dim`.
#[derive(Debug, Clone, Module)]
pub struct Embedding {
    /// `[num_embeddings, embedding_dim]`.
    pub weight: Var,
    /// A row that receives no gradient (PyTorch's `padding_idx`), see [`Embedding::with_padding_idx`].
    pub padding_idx: Option<usize>,
}

impl Embedding {
    /// A new table with parameter `weight` under `vs`'s prefix.
    pub fn new(vs: &VarStore, num_embeddings: usize, embedding_dim: usize) -> Result<Embedding> {
        let weight = vs.var("weight", &[num_embeddings, embedding_dim], Init::Normal { mean: 0.0, std: 1.0 })?;
        Ok(Embedding { weight, padding_idx: None })
    }

    /// A table whose row `padding_idx` (negative counts from the end) starts at zeros and never
    /// receives a gradient, so it stays what it is set to (`nn.Embedding(..., padding_idx=p)`).
    /// Lookups of that row still return its values.
    ///
    /// ```
    /// use kiln_core::{DType, Tensor};
    /// use kiln_nn::{Embedding, Module, VarStore};
    /// let vs = VarStore::new(DType::F32, 0);
    /// let emb = Embedding::with_padding_idx(&vs, 5, 3, -1)?;
    /// let idx = Tensor::from_slice(&[4i64, 1], [2])?;
    /// let out = emb.forward(&idx)?;
    /// assert_eq!(out.to_vec2::<f32>()?[0], vec![0.0; 3]);
    /// let g = out.sum_all()?.backward()?;
    /// assert_eq!(emb.weight.grad(&g).unwrap().to_vec2::<f32>()?[4], vec![0.0; 3]);
    /// # Ok::<(), kiln_nn::Error>(())
    /// ```
    pub fn with_padding_idx(vs: &VarStore, num_embeddings: usize, embedding_dim: usize, padding_idx: i64) -> Result<Embedding> {
        let n = num_embeddings as i64;
        if !(-n..n).contains(&padding_idx) {
            return Err(Error::config(
                "Embedding",
                format!("padding_idx {padding_idx} is outside the table of {num_embeddings} rows"),
            ));
        }
        let p = padding_idx.rem_euclid(n) as usize;
        let emb = Embedding::new(vs, num_embeddings, embedding_dim)?;
        let w = emb.weight.tensor();
        let mut v = w.to_vec_f64()?;
        v[p * embedding_dim..(p + 1) * embedding_dim].fill(0.0);
        emb.weight.set(&Tensor::from_vec(v, w.shape().clone())?.to_dtype(w.dtype())?)?;
        Ok(Embedding {
            padding_idx: Some(p),
            ..emb
        })
    }
}

impl Embedding {
    /// Rows of `weight` for the i64 indices `idx`, shaped `idx.dims() + [embedding_dim]` (what
    /// [`Module::forward`] runs).
    pub fn forward(&self, idx: &Tensor) -> Result<Tensor> {
        if idx.dtype() != DType::I64 {
            return Err(Error::config(
                "Embedding::forward",
                format!("indices must be i64, got {} of shape {}", idx.dtype(), idx.shape()),
            ));
        }
        let w = self.weight.tensor();
        // `weight` is a public field: its rank is checked before its dims are read.
        if w.rank() != 2 {
            return Err(Error::config(
                "Embedding::forward",
                format!("weight {} must be [num_embeddings, embedding_dim]", w.shape()),
            ));
        }
        let flat = idx.flatten_all()?;
        let mut rows = w.index_select(0, &flat)?;
        if let Some(p) = self.padding_idx {
            // Same values, but the padding lookups come from a detached copy, so no gradient
            // reaches that row.
            let pad = flat.eq_scalar(p as f64)?.unsqueeze(1)?;
            rows = pad.where_cond(&rows.detach(), &rows)?;
        }
        let mut shape = idx.dims().to_vec();
        shape.push(w.dims()[1]);
        Ok(rows.reshape(shape)?)
    }
}

/// Flattens dims `start_dim..=end_dim` into one (`torch.nn.Flatten`, default `1..=-1`).
#[derive(Debug, Clone, Copy)]
pub struct Flatten {
    /// First dim flattened.
    pub start_dim: isize,
    /// Last dim flattened (negative counts from the end).
    pub end_dim: isize,
}

impl Default for Flatten {
    fn default() -> Self {
        Flatten { start_dim: 1, end_dim: -1 }
    }
}

impl Flatten {
    /// `Flatten(start_dim=1, end_dim=-1)`.
    pub fn new() -> Flatten {
        Flatten::default()
    }
}

impl Module for Flatten {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.flatten(self.start_dim, self.end_dim)?)
    }
}
