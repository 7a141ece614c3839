//! Checkpoints in the safetensors format: tensors by name, written atomically (temporary file +
//! rename, so a crash never leaves a half-written checkpoint under the real name).
//!
//! Loading checks everything before changing anything: a missing tensor, an unexpected one, a
//! shape mismatch or a corrupt file is an error naming the tensor (and shapes) and the model is
//! left untouched.

use crate::module::{Buffer, Module, VarStore};
use crate::optim::Optimizer;
use crate::{Error, Result};
use kiln_core::{DType, Tensor, Var};
use safetensors::tensor::{Dtype as StDtype, SafeTensors, TensorView};
use std::collections::HashMap;
use std::path::Path;

fn st_dtype(d: DType) -> StDtype {
    match d {
        DType::F16 => StDtype::F16,
        DType::BF16 => StDtype::BF16,
        DType::F32 => StDtype::F32,
        DType::F64 => StDtype::F64,
        DType::I64 => StDtype::I64,
        DType::U8 => StDtype::U8,
    }
}

/// Tensors with their names, in order.
pub type NamedTensors = Vec<(String, Tensor)>;

/// Serialises named tensors (plus optional string metadata) to safetensors bytes.
pub fn to_safetensors_bytes(tensors: &[(String, Tensor)], metadata: Option<HashMap<String, String>>) -> Result<Vec<u8>> {
    // The safetensors crate indexes out of bounds (a panic) on a repeated name.
    let mut seen = std::collections::HashSet::with_capacity(tensors.len());
    if let Some((n, _)) = tensors.iter().find(|(n, _)| !seen.insert(n.as_str())) {
        return Err(Error::format("save_safetensors", n, "two tensors have this name"));
    }
    let mut bufs = Vec::with_capacity(tensors.len());
    for (n, t) in tensors {
        bufs.push((n.clone(), t.dtype(), t.dims().to_vec(), t.to_le_bytes()?));
    }
    let mut views = Vec::with_capacity(bufs.len());
    for (n, d, s, b) in &bufs {
        let v = TensorView::new(st_dtype(*d), s.clone(), b)
            .map_err(|e| Error::format("save_safetensors", n, format!("cannot encode tensor: {e}")))?;
        views.push((n.clone(), v));
    }
    safetensors::serialize(views, metadata).map_err(|e| Error::format("save_safetensors", "<buffer>", e.to_string()))
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, flushed, then renamed.
pub fn write_atomic(path: impl AsRef<Path>, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let path = path.as_ref();
    let name = path
        .file_name()
        .ok_or_else(|| Error::format("write_atomic", path.display(), "not a file path"))?;
    let tmp = path.with_file_name(format!(".{}.tmp{}", name.to_string_lossy(), std::process::id()));
    let res = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = res {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io("write_atomic", path, e));
    }
    Ok(())
}

/// Saves named tensors to a safetensors file (atomically).
pub fn save_safetensors(path: impl AsRef<Path>, tensors: &[(String, Tensor)], metadata: Option<HashMap<String, String>>) -> Result<()> {
    write_atomic(path, &to_safetensors_bytes(tensors, metadata)?)
}

fn decode(name: &str, path: &str, v: &TensorView<'_>) -> Result<Tensor> {
    let shape = v.shape().to_vec();
    let data = v.data();
    // safetensors stores little-endian bytes, which is exactly what `from_le_bytes` reads.
    let t = match v.dtype() {
        StDtype::F16 => Tensor::from_le_bytes(data, DType::F16, shape)?,
        StDtype::BF16 => Tensor::from_le_bytes(data, DType::BF16, shape)?,
        StDtype::F32 => Tensor::from_le_bytes(data, DType::F32, shape)?,
        StDtype::F64 => Tensor::from_le_bytes(data, DType::F64, shape)?,
        StDtype::I64 => Tensor::from_le_bytes(data, DType::I64, shape)?,
        StDtype::I32 => Tensor::from_vec(
            data.chunks_exact(4)
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64)
                .collect::<Vec<i64>>(),
            shape,
        )?,
        StDtype::U8 | StDtype::BOOL => Tensor::from_vec(data.to_vec(), shape)?,
        other => {
            return Err(Error::format(
                "load_safetensors",
                path,
                format!("tensor `{name}` has dtype {other:?}, which kiln does not support"),
            ))
        }
    };
    Ok(t)
}

/// Parses safetensors bytes into named tensors (in file order) and the metadata.
pub fn from_safetensors_bytes(bytes: &[u8], origin: &str) -> Result<(NamedTensors, HashMap<String, String>)> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| {
        Error::format(
            "load_safetensors",
            origin,
            format!("not a valid safetensors file (truncated or corrupt?): {e}"),
        )
    })?;
    let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| Error::format("load_safetensors", origin, e.to_string()))?;
    let mut out = Vec::new();
    for (name, v) in st.tensors() {
        let t = decode(&name, origin, &v)?;
        out.push((name, t));
    }
    Ok((out, meta.metadata().clone().unwrap_or_default()))
}

/// Reads every tensor of a safetensors file.
pub fn load_safetensors(path: impl AsRef<Path>) -> Result<HashMap<String, Tensor>> {
    Ok(load_safetensors_with_metadata(path)?.0)
}

/// Reads every tensor and the string metadata of a safetensors file.
pub fn load_safetensors_with_metadata(path: impl AsRef<Path>) -> Result<(HashMap<String, Tensor>, HashMap<String, String>)> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::io("load_safetensors", path, e))?;
    let (ts, meta) = from_safetensors_bytes(&bytes, &path.display().to_string())?;
    Ok((ts.into_iter().collect(), meta))
}

enum Slot {
    Param(Var),
    Buf(Buffer),
}

impl Slot {
    fn current(&self) -> Tensor {
        match self {
            Slot::Param(v) => v.tensor(),
            Slot::Buf(b) => b.get(),
        }
    }
}

/// Checks `file` against `slots` (all present, no extra, same shapes, compatible dtypes), then
/// assigns. Nothing is modified unless everything matches.
fn assign(op: &'static str, origin: &str, slots: Vec<(String, Slot)>, mut file: HashMap<String, Tensor>, strict: bool) -> Result<()> {
    let mut plan = Vec::with_capacity(slots.len());
    for (name, slot) in slots {
        let cur = slot.current();
        let Some(t) = file.remove(&name) else {
            return Err(Error::MissingTensor {
                op,
                name,
                path: origin.to_string(),
            });
        };
        let dtype_ok = t.dtype() == cur.dtype() || (t.dtype().is_float() && cur.dtype().is_float());
        if t.dims() != cur.dims() || !dtype_ok {
            return Err(Error::TensorMismatch(Box::new(crate::error::TensorMismatch {
                op,
                name,
                path: origin.to_string(),
                expected: cur.dims().to_vec(),
                expected_dtype: cur.dtype().to_string(),
                found: t.dims().to_vec(),
                found_dtype: t.dtype().to_string(),
            })));
        }
        let t = t.to_dtype(cur.dtype())?;
        plan.push((slot, t));
    }
    if strict {
        if let Some(extra) = file.keys().min() {
            return Err(Error::format(
                op,
                origin,
                format!("unexpected tensor `{extra}` (not a parameter or buffer of the model)"),
            ));
        }
    }
    for (slot, t) in plan {
        match slot {
            Slot::Param(v) => v.set(&t)?,
            Slot::Buf(b) => b.set(&t)?,
        }
    }
    Ok(())
}

/// The module's parameters and buffers by hierarchical name (PyTorch's `state_dict()`).
pub fn state_dict(model: &dyn Module) -> Vec<(String, Tensor)> {
    let mut out: Vec<(String, Tensor)> = model
        .named_parameters()
        .into_iter()
        .map(|(n, v)| (n, v.tensor().detach()))
        .collect();
    out.extend(model.named_buffers().into_iter().map(|(n, b)| (n, b.get())));
    out
}

/// Saves a module's parameters and buffers (PyTorch names) to a safetensors file, atomically.
pub fn save_module(model: &dyn Module, path: impl AsRef<Path>) -> Result<()> {
    save_safetensors(path, &state_dict(model), None)
}

/// Loads a module's parameters and buffers from a safetensors file (such as a PyTorch
/// `state_dict()` saved with `safetensors.torch.save_file`). Strict: every parameter and buffer
/// must be present with the same shape, and the file may hold nothing else. Float dtypes are
/// converted to the model's.
pub fn load_module(model: &dyn Module, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let file = load_safetensors(path)?;
    load_module_from(model, file, &path.display().to_string(), true)
}

/// [`load_module`] from tensors already in memory; `strict = false` ignores extra tensors.
pub fn load_module_from(model: &dyn Module, tensors: HashMap<String, Tensor>, origin: &str, strict: bool) -> Result<()> {
    let mut slots: Vec<(String, Slot)> = model.named_parameters().into_iter().map(|(n, v)| (n, Slot::Param(v))).collect();
    slots.extend(model.named_buffers().into_iter().map(|(n, b)| (n, Slot::Buf(b))));
    assign("load_module", origin, slots, tensors, strict)
}

impl VarStore {
    /// Saves every parameter and buffer of the store (full names) to a safetensors file, atomically.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let mut ts: Vec<(String, Tensor)> = self.named_vars().into_iter().map(|(n, v)| (n, v.tensor().detach())).collect();
        ts.extend(self.named_buffers().into_iter().map(|(n, b)| (n, b.get())));
        save_safetensors(path, &ts, None)
    }

    /// Loads every parameter and buffer of the store from a safetensors file (strict).
    pub fn load(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let file = load_safetensors(path)?;
        let mut slots: Vec<(String, Slot)> = self.named_vars().into_iter().map(|(n, v)| (n, Slot::Param(v))).collect();
        slots.extend(self.named_buffers().into_iter().map(|(n, b)| (n, Slot::Buf(b))));
        assign("VarStore::load", &path.display().to_string(), slots, file, true)
    }
}

/// Saves an optimiser's state (moments, step counts, learning rate) to a safetensors file.
pub fn save_optimizer(opt: &dyn Optimizer, path: impl AsRef<Path>) -> Result<()> {
    let mut meta = HashMap::new();
    meta.insert("lr".to_string(), format!("{:e}", opt.learning_rate()));
    meta.insert("num_params".to_string(), opt.vars().len().to_string());
    save_safetensors(path, &opt.state_tensors(), Some(meta))
}

/// Restores an optimiser's state saved by [`save_optimizer`]; the optimiser must have been built
/// over the same parameters in the same order.
pub fn load_optimizer(opt: &mut dyn Optimizer, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let (ts, meta) = load_safetensors_with_metadata(path)?;
    let origin = path.display().to_string();
    if let Some(n) = meta.get("num_params") {
        if n.parse::<usize>().ok() != Some(opt.vars().len()) {
            return Err(Error::format(
                "load_optimizer",
                &origin,
                format!("state is for {n} parameters, the optimiser has {}", opt.vars().len()),
            ));
        }
    }
    opt.load_state_tensors(&ts)?;
    if let Some(lr) = meta.get("lr") {
        match lr.parse::<f64>() {
            Ok(v) if crate::optim::valid_lr(v) => opt.set_learning_rate(v),
            _ => {
                return Err(Error::format(
                    "load_optimizer",
                    &origin,
                    format!("metadata lr {lr:?} is not a learning rate"),
                ))
            }
        }
    }
    Ok(())
}
