//! Data: the [`Dataset`] trait, an in-memory [`TensorDataset`], a [`DataLoader`] that shuffles with
//! a seeded generator and prepares the next batch on a background thread, and readers for CSV,
//! IDX (MNIST's format) and the bundled digits set.

use crate::{Error, Result};
use kiln_core::{DType, Rng, Tensor};
use std::io::Read;
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

/// A batch: inputs and targets.
pub type Batch = (Tensor, Tensor);

/// A source of `(input, target)` samples, indexable like `torch.utils.data.Dataset`.
pub trait Dataset: Send + Sync {
    /// Number of samples.
    fn len(&self) -> usize;
    /// True when empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Sample `i` (input, target), without a batch dim.
    fn get(&self, i: usize) -> Result<Batch>;
    /// The samples at `indices`, stacked along a new dim 0. Override for a faster gather.
    fn get_batch(&self, indices: &[usize]) -> Result<Batch> {
        let mut xs = Vec::with_capacity(indices.len());
        let mut ys = Vec::with_capacity(indices.len());
        for &i in indices {
            let (x, y) = self.get(i)?;
            xs.push(x);
            ys.push(y);
        }
        Ok((Tensor::stack(&xs, 0)?, Tensor::stack(&ys, 0)?))
    }
}

/// Inputs and targets held in memory, indexed along dim 0 (`torch.utils.data.TensorDataset`).
#[derive(Debug, Clone)]
pub struct TensorDataset {
    /// `[N, ...]` inputs.
    pub x: Tensor,
    /// `[N, ...]` targets.
    pub y: Tensor,
}

impl TensorDataset {
    /// Pairs `x` and `y`, which must have the same length along dim 0.
    pub fn new(x: Tensor, y: Tensor) -> Result<TensorDataset> {
        if x.rank() == 0 || y.rank() == 0 || x.dims()[0] != y.dims()[0] {
            return Err(Error::config(
                "TensorDataset",
                format!("inputs {} and targets {} need the same size in dim 0", x.shape(), y.shape()),
            ));
        }
        Ok(TensorDataset {
            x: x.detach(),
            y: y.detach(),
        })
    }
    /// The samples at `indices` as a new data set (for splits).
    pub fn subset(&self, indices: &[usize]) -> Result<TensorDataset> {
        let (x, y) = self.get_batch(indices)?;
        TensorDataset::new(x, y)
    }
}

fn index_tensor(op: &'static str, indices: &[usize], n: usize) -> Result<Tensor> {
    if let Some(&bad) = indices.iter().find(|&&i| i >= n) {
        return Err(Error::config(
            op,
            format!("index {bad} is out of range for a data set of {n} samples"),
        ));
    }
    Ok(Tensor::from_vec(
        indices.iter().map(|&i| i as i64).collect::<Vec<i64>>(),
        [indices.len()],
    )?)
}

impl Dataset for TensorDataset {
    fn len(&self) -> usize {
        self.x.dims()[0]
    }
    fn get(&self, i: usize) -> Result<Batch> {
        if i >= self.len() {
            return Err(Error::config(
                "TensorDataset::get",
                format!("index {i} is out of range for {} samples", self.len()),
            ));
        }
        Ok((self.x.select(0, i)?, self.y.select(0, i)?))
    }
    fn get_batch(&self, indices: &[usize]) -> Result<Batch> {
        let idx = index_tensor("TensorDataset::get_batch", indices, self.len())?;
        Ok((self.x.index_select(0, &idx)?, self.y.index_select(0, &idx)?))
    }
}

/// Batches of a [`Dataset`] (`torch.utils.data.DataLoader`).
///
/// Each call to [`DataLoader::iter`] is one epoch. With `shuffle`, the epoch's order is a
/// Fisher–Yates shuffle of `0..n` drawn from the loader's SplitMix64 generator, which carries on
/// across epochs (so a seed fixes every epoch's order). A background thread prepares the next batch
/// while the current one is used.
///
/// ```
/// use kiln_nn::data::{DataLoader, TensorDataset};
/// use kiln_core::{DType, Tensor};
/// let ds = TensorDataset::new(Tensor::zeros([10, 3], DType::F32)?, Tensor::zeros([10], DType::I64)?)?;
/// let mut dl = DataLoader::new(ds, 4).shuffle(true, 7).drop_last(false);
/// let sizes: Vec<usize> = dl.iter().map(|b| b.unwrap().0.dims()[0]).collect();
/// assert_eq!(sizes, [4, 4, 2]);
/// # Ok::<(), kiln_nn::Error>(())
/// ```
pub struct DataLoader {
    dataset: Arc<dyn Dataset>,
    batch_size: usize,
    shuffle: bool,
    drop_last: bool,
    rng: Rng,
}

impl DataLoader {
    /// A loader over `dataset` in order, keeping the last partial batch.
    pub fn new(dataset: impl Dataset + 'static, batch_size: usize) -> DataLoader {
        DataLoader::from_arc(Arc::new(dataset), batch_size)
    }
    /// A loader over a shared data set.
    pub fn from_arc(dataset: Arc<dyn Dataset>, batch_size: usize) -> DataLoader {
        DataLoader {
            dataset,
            batch_size: batch_size.max(1),
            shuffle: false,
            drop_last: false,
            rng: Rng::new(0),
        }
    }
    /// Shuffles every epoch with a generator seeded with `seed`.
    pub fn shuffle(mut self, on: bool, seed: u64) -> DataLoader {
        self.shuffle = on;
        self.rng = Rng::new(seed);
        self
    }
    /// Drops the last batch when it is smaller than `batch_size`.
    pub fn drop_last(mut self, on: bool) -> DataLoader {
        self.drop_last = on;
        self
    }
    /// Batches per epoch.
    pub fn num_batches(&self) -> usize {
        let n = self.dataset.len();
        if self.drop_last {
            n / self.batch_size
        } else {
            n.div_ceil(self.batch_size)
        }
    }
    /// The data set.
    pub fn dataset(&self) -> &Arc<dyn Dataset> {
        &self.dataset
    }
    /// Samples per epoch actually served.
    pub fn num_samples(&self) -> usize {
        if self.drop_last {
            self.num_batches() * self.batch_size
        } else {
            self.dataset.len()
        }
    }
    /// One epoch of batches. A data set too long to hold its order in memory (a `len()` near
    /// `usize::MAX`) gives one error item instead of a batch.
    pub fn iter(&mut self) -> BatchIter {
        let n = self.dataset.len();
        let mut order: Vec<usize> = Vec::new();
        if order.try_reserve_exact(n).is_err() {
            return BatchIter {
                rx: None,
                handle: None,
                error: Some(Error::config(
                    "DataLoader::iter",
                    format!("cannot hold the order of {n} samples in memory (the data set's len())"),
                )),
            };
        }
        order.extend(0..n);
        if self.shuffle {
            self.rng.shuffle(&mut order);
        }
        let bs = self.batch_size;
        order.truncate(if self.drop_last { n / bs * bs } else { n });
        let (tx, rx) = sync_channel::<Result<Batch>>(1);
        let ds = self.dataset.clone();
        let handle = std::thread::spawn(move || {
            for c in order.chunks(bs) {
                let b = ds.get_batch(c);
                let failed = b.is_err();
                // A closed channel means the consumer stopped early: just finish.
                if tx.send(b).is_err() || failed {
                    return;
                }
            }
        });
        BatchIter {
            rx: Some(rx),
            handle: Some(handle),
            error: None,
        }
    }
}

/// The batches of one epoch (see [`DataLoader::iter`]).
pub struct BatchIter {
    rx: Option<Receiver<Result<Batch>>>,
    handle: Option<JoinHandle<()>>,
    /// An epoch that could not start: its one item.
    error: Option<Error>,
}

impl Iterator for BatchIter {
    type Item = Result<Batch>;
    fn next(&mut self) -> Option<Result<Batch>> {
        if let Some(e) = self.error.take() {
            return Some(Err(e));
        }
        let r = self.rx.as_ref()?.recv().ok();
        if r.is_none() {
            if let Some(h) = self.handle.take() {
                if h.join().is_err() {
                    return Some(Err(Error::config("DataLoader", "the batch-preparation thread panicked")));
                }
            }
        }
        r
    }
}

impl Drop for BatchIter {
    fn drop(&mut self) {
        // Closing the receiver makes the producer's next send fail, so it exits promptly.
        self.rx.take();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Most bytes a file may inflate to when nothing tighter is known (1 GiB): a small gzip "bomb"
/// would otherwise be inflated until memory runs out.
pub const MAX_INFLATED_BYTES: u64 = 1 << 30;

/// Reads `path`, inflating gzip (detected by its magic bytes) to at most `max` bytes.
fn open_maybe_gz(op: &'static str, path: &Path, max: u64) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| Error::io(op, path, e))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        // One byte past the bound tells "exactly at the limit" from "over it".
        flate2::read::GzDecoder::new(&raw[..])
            .take(max.saturating_add(1))
            .read_to_end(&mut out)
            .map_err(|e| Error::format(op, path.display(), format!("bad gzip data: {e}")))?;
        if out.len() as u64 > max {
            return Err(Error::format(
                op,
                path.display(),
                format!("inflates to more than {max} bytes; refusing to read it whole"),
            ));
        }
        Ok(out)
    } else {
        // Already in memory at its own size: nothing to bound.
        Ok(raw)
    }
}

/// The size an IDX file's header promises (header plus values), read from its first bytes
/// (inflated if gzip); `None` when the header is unreadable, which the parser then reports.
fn idx_promised_size(path: &Path) -> Option<u64> {
    let raw = std::fs::read(path).ok()?;
    let mut head = Vec::new();
    if raw.starts_with(&[0x1f, 0x8b]) {
        flate2::read::GzDecoder::new(&raw[..])
            .take(4 + 4 * 255)
            .read_to_end(&mut head)
            .ok()?;
    } else {
        head = raw[..raw.len().min(4 + 4 * 255)].to_vec();
    }
    let esize: u64 = match *head.get(2)? {
        0x08 | 0x09 => 1,
        0x0B => 2,
        0x0C | 0x0D => 4,
        0x0E => 8,
        _ => return None,
    };
    let nd = *head.get(3)? as usize;
    let mut count = esize;
    for i in 0..nd {
        let d = head.get(4 + 4 * i..8 + 4 * i)?;
        count = count.checked_mul(u64::from(u32::from_be_bytes([d[0], d[1], d[2], d[3]])))?;
    }
    count.checked_add(4 + 4 * nd as u64)
}

/// A numeric CSV table: `values` `[rows, cols]` (f64) and the header if there was one.
#[derive(Debug, Clone)]
pub struct CsvTable {
    /// Column names (empty without a header).
    pub header: Vec<String>,
    /// `[rows, cols]` f64.
    pub values: Tensor,
}

impl CsvTable {
    /// Splits off column `label_col` (negative counts from the end) as i64 class labels; returns
    /// `(features [rows, cols-1] as `dtype`, labels [rows] i64)`.
    pub fn split_labels(&self, label_col: isize, dtype: DType) -> Result<(Tensor, Tensor)> {
        let cols = self.values.dims()[1];
        let c = if label_col < 0 { cols as isize + label_col } else { label_col };
        if c < 0 || c as usize >= cols {
            return Err(Error::config(
                "CsvTable::split_labels",
                format!("label column {label_col} is out of range for {cols} columns"),
            ));
        }
        let c = c as usize;
        let labels = self.values.narrow(1, c, 1)?.squeeze(1)?;
        // A class label is an integer: a cast would make 2.7 class 2 and NaN class 0.
        let lv = labels.to_dtype(DType::F64)?.to_vec::<f64>()?;
        if let Some((row, v)) = lv
            .iter()
            .enumerate()
            .find(|(_, v)| !(v.is_finite() && v.fract() == 0.0 && v.abs() <= 9.0e15))
        {
            return Err(Error::config(
                "CsvTable::split_labels",
                format!("row {} of column {c} holds {v}, which is not an integer class label", row + 1),
            ));
        }
        let y = labels.to_dtype(DType::I64)?;
        let left = self.values.narrow(1, 0, c)?;
        let right = self.values.narrow(1, c + 1, cols - c - 1)?;
        let x = Tensor::cat(&[left, right], 1)?.to_dtype(dtype)?;
        Ok((x, y))
    }
}

/// Reads a numeric CSV file (gzip-compressed if it starts with the gzip magic). Every row must
/// have the same number of fields and every field must parse as a number; errors name the line.
pub fn read_csv(path: impl AsRef<Path>, has_header: bool) -> Result<CsvTable> {
    let path = path.as_ref();
    let bytes = open_maybe_gz("read_csv", path, MAX_INFLATED_BYTES)?;
    parse_csv(&bytes, has_header, &path.display().to_string())
}

/// [`read_csv`] on bytes in memory.
pub fn parse_csv(bytes: &[u8], has_header: bool, origin: &str) -> Result<CsvTable> {
    let mut rdr = csv::ReaderBuilder::new().has_headers(has_header).flexible(false).from_reader(bytes);
    let header = if has_header {
        rdr.headers()
            .map_err(|e| Error::format("read_csv", origin, e.to_string()))?
            .iter()
            .map(|s| s.to_string())
            .collect()
    } else {
        Vec::new()
    };
    let mut vals = Vec::new();
    let mut cols = None;
    let mut rows = 0;
    for rec in rdr.records() {
        let rec = rec.map_err(|e| Error::format("read_csv", origin, e.to_string()))?;
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        if *cols.get_or_insert(rec.len()) != rec.len() {
            return Err(Error::format(
                "read_csv",
                origin,
                format!("line {line} has {} fields, expected {:?}", rec.len(), cols),
            ));
        }
        for (j, f) in rec.iter().enumerate() {
            let v: f64 = f
                .trim()
                .parse()
                .map_err(|_| Error::format("read_csv", origin, format!("line {line}, field {j}: `{f}` is not a number")))?;
            vals.push(v);
        }
        rows += 1;
    }
    let cols = cols.unwrap_or(header.len());
    Ok(CsvTable {
        header,
        values: Tensor::from_vec(vals, [rows, cols])?,
    })
}

/// Reads an IDX file (the MNIST format; gzip-compressed files are accepted): magic `0 0 type ndim`,
/// `ndim` big-endian u32 sizes, then the values big-endian. u8 data gives a u8 tensor, i8/i16/i32
/// give i64, f32 gives f32 and f64 gives f64. Truncated or corrupt files are errors.
pub fn read_idx(path: impl AsRef<Path>) -> Result<Tensor> {
    let path = path.as_ref();
    // The header says how big the data is; inflating more than that would only feed a bomb.
    let max = idx_promised_size(path).map_or(MAX_INFLATED_BYTES, |n| n.min(MAX_INFLATED_BYTES * 8));
    let bytes = open_maybe_gz("read_idx", path, max)?;
    parse_idx(&bytes, &path.display().to_string())
}

/// [`read_idx`] on bytes in memory.
pub fn parse_idx(b: &[u8], origin: &str) -> Result<Tensor> {
    let err = |m: String| Error::format("read_idx", origin, m);
    if b.len() < 4 {
        return Err(err(format!("{} bytes is too short for an IDX header", b.len())));
    }
    if b[0] != 0 || b[1] != 0 {
        return Err(err(format!(
            "bad magic {:02x} {:02x} (an IDX file starts with two zero bytes)",
            b[0], b[1]
        )));
    }
    let (ty, nd) = (b[2], b[3] as usize);
    let esize = match ty {
        0x08 | 0x09 => 1,
        0x0B => 2,
        0x0C | 0x0D => 4,
        0x0E => 8,
        t => return Err(err(format!("unknown element type code 0x{t:02x}"))),
    };
    let hdr = 4 + 4 * nd;
    if b.len() < hdr {
        return Err(err(format!("truncated header: {nd} dims need {hdr} bytes, file has {}", b.len())));
    }
    let dims: Vec<usize> = (0..nd)
        .map(|i| u32::from_be_bytes([b[4 + 4 * i], b[5 + 4 * i], b[6 + 4 * i], b[7 + 4 * i]]) as usize)
        .collect();
    let n = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| err(format!("dims {dims:?} overflow")))?;
    let need = n
        .checked_mul(esize)
        .and_then(|x| x.checked_add(hdr))
        .ok_or_else(|| err(format!("dims {dims:?} overflow")))?;
    if b.len() != need {
        return Err(err(format!(
            "dims {dims:?} of {esize}-byte values need {need} bytes, file has {} ({})",
            b.len(),
            if b.len() < need { "truncated" } else { "trailing data" }
        )));
    }
    let d = &b[hdr..];
    let t = match ty {
        0x08 => Tensor::from_vec(d.to_vec(), dims)?,
        0x09 => Tensor::from_vec(d.iter().map(|&v| v as i8 as i64).collect::<Vec<_>>(), dims)?,
        0x0B => Tensor::from_vec(
            d.chunks_exact(2)
                .map(|c| i16::from_be_bytes([c[0], c[1]]) as i64)
                .collect::<Vec<_>>(),
            dims,
        )?,
        0x0C => Tensor::from_vec(
            d.chunks_exact(4)
                .map(|c| i32::from_be_bytes([c[0], c[1], c[2], c[3]]) as i64)
                .collect::<Vec<_>>(),
            dims,
        )?,
        0x0D => Tensor::from_vec(
            d.chunks_exact(4)
                .map(|c| f32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                .collect::<Vec<_>>(),
            dims,
        )?,
        _ => Tensor::from_vec(
            d.chunks_exact(8)
                .map(|c| f64::from_be_bytes(c.try_into().unwrap_or([0; 8])))
                .collect::<Vec<_>>(),
            dims,
        )?,
    };
    Ok(t)
}

/// Loads an MNIST-style pair of IDX files: images `[N, H, W]` u8 scaled to `[0, 1]` f32 and
/// labels `[N]` as i64.
pub fn read_mnist(images: impl AsRef<Path>, labels: impl AsRef<Path>) -> Result<TensorDataset> {
    let x = read_idx(images)?;
    let y = read_idx(labels)?;
    if x.rank() < 2 || y.rank() != 1 || x.dims()[0] != y.dims()[0] {
        return Err(Error::config(
            "read_mnist",
            format!("images {} and labels {} do not pair up", x.shape(), y.shape()),
        ));
    }
    let x = x.to_dtype(DType::F32)?.mul_scalar(1.0 / 255.0)?;
    TensorDataset::new(x, y.to_dtype(DType::I64)?)
}

/// Path of the bundled digits file.
pub fn digits_path() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/digits.csv.gz")
}

/// The bundled digits set (1797 8×8 images) with the W4 benchmark split: pixels divided by 16 as
/// f32 `[N, 64]`, labels i64; `perm` = SplitMix64(`seed`) shuffle of `0..1797`, train = the first
/// 1438 of `perm`, test = the remaining 359 (with `seed` 42 this is the benchmark's split).
pub fn digits_split(seed: u64) -> Result<(TensorDataset, TensorDataset)> {
    let table = read_csv(digits_path(), false)?;
    let (x, y) = table.split_labels(-1, DType::F32)?;
    let n = x.dims()[0];
    if n != 1797 || x.dims()[1] != 64 {
        return Err(Error::format(
            "digits_split",
            digits_path().display(),
            format!("expected 1797 rows of 64 pixels, got {}", x.shape()),
        ));
    }
    let all = TensorDataset::new(x.mul_scalar(1.0 / 16.0)?, y)?;
    let mut perm: Vec<usize> = (0..n).collect();
    Rng::new(seed).shuffle(&mut perm);
    Ok((all.subset(&perm[..1438])?, all.subset(&perm[1438..])?))
}
