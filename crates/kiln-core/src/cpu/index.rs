//! Index-driven ops: index_select / index_add along one dim, gather / scatter_add / scatter
//! elementwise, and the sorting permutation behind sort / argsort / topk.

use super::{CpuElement, CpuStorage};
use crate::{Error, Float, Layout, Result, Shape};
use std::cmp::Ordering;

fn indices<'a>(op: &'static str, s: &'a CpuStorage, l: &Layout) -> Result<std::borrow::Cow<'a, [i64]>> {
    let CpuStorage::I64(v) = s else {
        return Err(Error::DType {
            op,
            expected: "i64 (indices)",
            got: s.dtype(),
        });
    };
    let n = l.shape.elem_count();
    Ok(match l.contiguous_offset() {
        Some(o) => std::borrow::Cow::Borrowed(&v[o..o + n]),
        None => std::borrow::Cow::Owned(super::map1(v, l, |x| x).map_err(|e| e.at(op))?),
    })
}

/// The elements of `x` under `l` as one row-major slice: borrowed when already so, else copied
/// (an allocation failure is reported as `op`'s).
fn contiguous<'a, T: Copy + Sync + Send>(x: &'a [T], l: &Layout, op: &'static str) -> Result<std::borrow::Cow<'a, [T]>> {
    let n = l.shape.elem_count();
    Ok(match l.contiguous_offset() {
        Some(o) => std::borrow::Cow::Borrowed(&x[o..o + n]),
        None => std::borrow::Cow::Owned(super::map1(x, l, |v| v).map_err(|e| e.at(op))?),
    })
}

/// A fresh vector of exactly `n` elements' capacity, or `op`'s allocation error.
fn with_capacity<T>(n: usize, op: &'static str) -> Result<Vec<T>> {
    super::pool::try_with_capacity(n).map_err(|e| e.at(op))
}

fn check(op: &'static str, i: i64, dim: usize, size: usize) -> Result<usize> {
    if i < 0 || i as usize >= size {
        return Err(Error::Index { op, index: i, dim, size });
    }
    Ok(i as usize)
}

fn split(shape: &Shape, dim: usize) -> (usize, usize, usize) {
    let d = shape.dims();
    (d[..dim].iter().product(), d[dim], d[dim + 1..].iter().product())
}

/// Row-major multi-index counter over `dims`, with the storage offsets of several strided operands.
fn for_each_index(dims: &[usize], mut f: impl FnMut(&[usize])) {
    let n: usize = dims.iter().product();
    let mut idx = vec![0usize; dims.len()];
    for _ in 0..n {
        f(&idx);
        for d in (0..dims.len()).rev() {
            idx[d] += 1;
            if idx[d] < dims[d] {
                break;
            }
            idx[d] = 0;
        }
    }
}

macro_rules! any_dtype_local {
    ($s:expr, $v:ident => $body:expr) => {
        match $s {
            CpuStorage::F32($v) => CpuStorage::F32($body),
            CpuStorage::F64($v) => CpuStorage::F64($body),
            CpuStorage::I64($v) => CpuStorage::I64($body),
            CpuStorage::U8($v) => CpuStorage::U8($body),
            CpuStorage::F16($v) => CpuStorage::F16($body),
            CpuStorage::BF16($v) => CpuStorage::BF16($body),
        }
    };
}

macro_rules! float_dispatch {
    ($op:expr, $s:expr, $v:ident => $body:expr) => {
        match $s {
            CpuStorage::F32($v) => CpuStorage::F32($body),
            CpuStorage::F64($v) => CpuStorage::F64($body),
            CpuStorage::F16($v) => CpuStorage::F16($body),
            CpuStorage::BF16($v) => CpuStorage::BF16($body),
            other => {
                return Err(Error::DType {
                    op: $op,
                    expected: "a float dtype (f16, bf16, f32 or f64)",
                    got: other.dtype(),
                })
            }
        }
    };
}

fn same_dtype<'a, T: CpuElement>(op: &'static str, s: &'a CpuStorage) -> Result<&'a [T]> {
    T::slice(s).ok_or(Error::DTypeMismatch {
        op,
        lhs: T::DTYPE,
        rhs: s.dtype(),
    })
}

/// Whether every element of `l` is the one at its offset (all strides 0: an expanded scalar).
fn is_broadcast_scalar(l: &Layout) -> bool {
    l.strides.iter().all(|&st| st == 0)
}

/// Gather/scatter along the last dim with the index contiguous, `self` contiguous or an expanded
/// scalar, and their leading dims equal (max-pool gradients, row-wise picks): `(rows, size, len)`
/// = rows, `self`'s last dim, the index's last dim. `None` when the general path is needed.
fn last_dim_rows(l: &Layout, dim: usize, il: &Layout) -> Option<(usize, usize, usize)> {
    let r = l.shape.rank();
    if r == 0
        || dim != r - 1
        || il.shape.rank() != r
        || (l.contiguous_offset().is_none() && !is_broadcast_scalar(l))
        || il.contiguous_offset().is_none()
    {
        return None;
    }
    let (d, id) = (l.shape.dims(), il.shape.dims());
    if d[..r - 1] != id[..r - 1] {
        return None;
    }
    Some((d[..r - 1].iter().product(), d[r - 1], id[r - 1]))
}

/// `(target, source)` offsets of every index position of a scatter along `dim`, in row-major order
/// of the index: targets in the contiguous output of shape `l`, sources in `src`'s storage. An
/// index outside `l`'s dim is `op`'s error.
fn scatter_pairs(op: &'static str, l: &Layout, dim: usize, ids: &[i64], il: &Layout, sl: &Layout) -> Result<Vec<(usize, usize)>> {
    let dims = il.shape.dims().to_vec();
    let size = l.shape.0[dim];
    let ostr = l.shape.contiguous_strides();
    let mut pairs = with_capacity(ids.len(), op)?;
    let mut k = 0;
    let mut err = None;
    for_each_index(&dims, |pos| {
        let i = ids[k];
        k += 1;
        match check(op, i, dim, size) {
            Ok(i) => {
                let t: usize = pos.iter().enumerate().map(|(d, &p)| if d == dim { i } else { p } * ostr[d]).sum();
                let s: usize = sl.offset + pos.iter().zip(sl.strides.iter()).map(|(p, s)| p * s).sum::<usize>();
                pairs.push((t, s));
            }
            Err(e) => {
                err.get_or_insert(e);
            }
        }
    });
    match err {
        Some(e) => Err(e),
        None => Ok(pairs),
    }
}

/// Ascending order with NaN above everything and NaNs equal to each other (PyTorch's sort order).
/// For integers, which have no NaN, this is their plain order.
fn nan_last<T: PartialOrd>(a: &T, b: &T) -> Ordering {
    a.partial_cmp(b).unwrap_or_else(|| {
        // Only NaN compares unordered, and only NaN is unordered with itself.
        let (a_nan, b_nan) = (a.partial_cmp(a).is_none(), b.partial_cmp(b).is_none());
        a_nan.cmp(&b_nan)
    })
}

impl CpuStorage {
    pub(crate) fn index_select(&self, l: &Layout, dim: usize, idx: &Self, il: &Layout) -> Result<Self> {
        let ids = indices("index_select", idx, il)?;
        let (outer, size, inner) = split(&l.shape, dim);
        let ids: Vec<usize> = ids.iter().map(|&i| check("index_select", i, dim, size)).collect::<Result<_>>()?;
        fn sel<T: Copy + Sync + Send + Default>(
            x: &[T],
            l: &Layout,
            ids: &[usize],
            outer: usize,
            size: usize,
            inner: usize,
        ) -> Result<Vec<T>> {
            let x = contiguous(x, l, "index_select")?;
            // The caller validated the output shape, so this product does not overflow.
            let mut out = with_capacity(outer * ids.len() * inner, "index_select")?;
            if inner == 1 {
                // Column gathers: one element per index, so skip the per-slice copy machinery.
                for o in 0..outer {
                    let row = &x[o * size..(o + 1) * size];
                    out.extend(ids.iter().map(|&i| row[i]));
                }
                return Ok(out);
            }
            for o in 0..outer {
                for &i in ids {
                    let s = (o * size + i) * inner;
                    out.extend_from_slice(&x[s..s + inner]);
                }
            }
            Ok(out)
        }
        Ok(match self {
            CpuStorage::F32(v) => CpuStorage::F32(sel(v, l, &ids, outer, size, inner)?),
            CpuStorage::F64(v) => CpuStorage::F64(sel(v, l, &ids, outer, size, inner)?),
            CpuStorage::I64(v) => CpuStorage::I64(sel(v, l, &ids, outer, size, inner)?),
            CpuStorage::U8(v) => CpuStorage::U8(sel(v, l, &ids, outer, size, inner)?),
            CpuStorage::F16(v) => CpuStorage::F16(sel(v, l, &ids, outer, size, inner)?),
            CpuStorage::BF16(v) => CpuStorage::BF16(sel(v, l, &ids, outer, size, inner)?),
        })
    }

    pub(crate) fn index_add(&self, l: &Layout, dim: usize, idx: &Self, il: &Layout, src: &Self, sl: &Layout) -> Result<Self> {
        let ids = indices("index_add", idx, il)?;
        let (outer, size, inner) = split(&l.shape, dim);
        let ids: Vec<usize> = ids.iter().map(|&i| check("index_add", i, dim, size)).collect::<Result<_>>()?;
        fn add<T: Float + CpuElement>(
            x: &[T],
            l: &Layout,
            ids: &[usize],
            src: &CpuStorage,
            sl: &Layout,
            dims: (usize, usize, usize),
        ) -> Result<Vec<T>> {
            let (outer, size, inner) = dims;
            let mut out = contiguous(x, l, "index_add")?.into_owned();
            let s = contiguous(same_dtype::<T>("index_add", src)?, sl, "index_add")?;
            for o in 0..outer {
                for (j, &i) in ids.iter().enumerate() {
                    let d = (o * size + i) * inner;
                    let so = (o * ids.len() + j) * inner;
                    for t in 0..inner {
                        out[d + t] += s[so + t];
                    }
                }
            }
            Ok(out)
        }
        Ok(float_dispatch!("index_add", self, v => add(v, l, &ids, src, sl, (outer, size, inner))?))
    }

    pub(crate) fn gather(&self, l: &Layout, dim: usize, idx: &Self, il: &Layout) -> Result<Self> {
        let ids = indices("gather", idx, il)?;
        if let Some((rows, size, len)) = last_dim_rows(l, dim, il) {
            for &i in ids.iter() {
                check("gather", i, dim, size)?;
            }
            fn rowwise<T: Copy>(x: &[T], o: usize, ids: &[i64], rows: usize, size: usize, len: usize) -> Result<Vec<T>> {
                let mut out = super::pool::take(rows * len).map_err(|e| e.at("gather"))?;
                for r in 0..rows {
                    let row = &x[o + r * size..o + (r + 1) * size];
                    out.extend(ids[r * len..(r + 1) * len].iter().map(|&i| row[i as usize]));
                }
                Ok(out)
            }
            let o = l.offset;
            return Ok(any_dtype_local!(self, v => rowwise(v, o, &ids, rows, size, len)?));
        }
        let dims = il.shape.dims().to_vec();
        let size = l.shape.0[dim];
        let mut offs = with_capacity(ids.len(), "gather")?;
        let mut k = 0;
        let mut err = None;
        for_each_index(&dims, |pos| {
            let i = ids[k];
            k += 1;
            match check("gather", i, dim, size) {
                Ok(i) => {
                    let o: usize = pos
                        .iter()
                        .enumerate()
                        .map(|(d, &p)| if d == dim { i } else { p } * l.strides[d])
                        .sum();
                    offs.push(l.offset + o);
                }
                Err(e) => {
                    err.get_or_insert(e);
                }
            }
        });
        if let Some(e) = err {
            return Err(e);
        }
        fn pick<T: Copy>(x: &[T], offs: &[usize]) -> Result<Vec<T>> {
            let mut out = with_capacity(offs.len(), "gather")?;
            out.extend(offs.iter().map(|&o| x[o]));
            Ok(out)
        }
        Ok(match self {
            CpuStorage::F32(v) => CpuStorage::F32(pick(v, &offs)?),
            CpuStorage::F64(v) => CpuStorage::F64(pick(v, &offs)?),
            CpuStorage::I64(v) => CpuStorage::I64(pick(v, &offs)?),
            CpuStorage::U8(v) => CpuStorage::U8(pick(v, &offs)?),
            CpuStorage::F16(v) => CpuStorage::F16(pick(v, &offs)?),
            CpuStorage::BF16(v) => CpuStorage::BF16(pick(v, &offs)?),
        })
    }

    pub(crate) fn scatter_add(&self, l: &Layout, dim: usize, idx: &Self, il: &Layout, src: &Self, sl: &Layout) -> Result<Self> {
        let ids = indices("scatter_add", idx, il)?;
        if let Some((rows, size, len)) = last_dim_rows(l, dim, il).filter(|_| sl.shape == il.shape && sl.contiguous_offset().is_some()) {
            for &i in ids.iter() {
                check("scatter_add", i, dim, size)?;
            }
            fn rowwise<T: Float + CpuElement>(
                x: &[T],
                l: &Layout,
                src: &CpuStorage,
                sl: &Layout,
                ids: &[i64],
                dims: (usize, usize, usize),
            ) -> Result<Vec<T>> {
                let (rows, size, len) = dims;
                let s = same_dtype::<T>("scatter_add", src)?;
                let s = &s[sl.offset..sl.offset + rows * len];
                let mut out = if is_broadcast_scalar(l) {
                    // One value everywhere (the zeros a gather's gradient starts from): filled,
                    // not materialised and then copied.
                    super::pool::filled(rows * size, x[l.offset])
                } else {
                    super::pool::take(rows * size).map(|mut v| {
                        v.extend_from_slice(&x[l.offset..l.offset + rows * size]);
                        v
                    })
                }
                .map_err(|e| e.at("scatter_add"))?;
                for r in 0..rows {
                    let row = &mut out[r * size..(r + 1) * size];
                    for (&i, &v) in ids[r * len..(r + 1) * len].iter().zip(&s[r * len..(r + 1) * len]) {
                        row[i as usize] += v;
                    }
                }
                Ok(out)
            }
            return Ok(float_dispatch!("scatter_add", self, v => rowwise(v, l, src, sl, &ids, (rows, size, len))?));
        }
        let pairs = scatter_pairs("scatter_add", l, dim, &ids, il, sl)?;
        fn scat<T: Float + CpuElement>(x: &[T], l: &Layout, src: &CpuStorage, pairs: &[(usize, usize)]) -> Result<Vec<T>> {
            let mut out = contiguous(x, l, "scatter_add")?.into_owned();
            let s = same_dtype::<T>("scatter_add", src)?;
            for &(t, so) in pairs {
                out[t] += s[so];
            }
            Ok(out)
        }
        Ok(float_dispatch!("scatter_add", self, v => scat(v, l, src, &pairs)?))
    }

    /// `self` with `src[pos]` written at `pos` with `dim` replaced by `index[pos]`, for every index
    /// position (`torch.scatter`). Positions are written in row-major order of the index, so for
    /// a duplicated target the last write wins.
    pub(crate) fn scatter(&self, l: &Layout, dim: usize, idx: &Self, il: &Layout, src: &Self, sl: &Layout) -> Result<Self> {
        let ids = indices("scatter", idx, il)?;
        let pairs = scatter_pairs("scatter", l, dim, &ids, il, sl)?;
        fn put<T: CpuElement>(x: &[T], l: &Layout, src: &CpuStorage, pairs: &[(usize, usize)]) -> Result<Vec<T>> {
            let mut out = contiguous(x, l, "scatter")?.into_owned();
            let s = same_dtype::<T>("scatter", src)?;
            for &(t, so) in pairs {
                out[t] = s[so];
            }
            Ok(out)
        }
        Ok(any_dtype_local!(self, v => put(v, l, src, &pairs)?))
    }

    /// For each slice along `dim`, the positions of its `k` first elements in sorted order (NaN
    /// above everything), as i64 of `l`'s shape with `dim` of size `k` (the caller checked
    /// `k <= size` and the output's size). Equal elements keep their original order: breaking ties
    /// by position makes the order total, so an unstable sort (and, for `k < size`, a selection
    /// first) gives exactly the stable result.
    pub(crate) fn sort_indices(&self, l: &Layout, dim: usize, descending: bool, k: usize) -> Result<Self> {
        fn kern<T: Copy + PartialOrd + Send + Sync>(x: &[T], l: &Layout, dim: usize, descending: bool, k: usize) -> Result<Vec<i64>> {
            let x = contiguous(x, l, "sort")?;
            let (outer, n, inner) = split(&l.shape, dim);
            let mut out = with_capacity::<i64>(outer * k * inner, "sort")?;
            out.resize(outer * k * inner, 0);
            let mut perm: Vec<usize> = with_capacity(n, "sort")?;
            for o in 0..outer {
                for i in 0..inner {
                    let at = |j: usize| &x[(o * n + j) * inner + i];
                    let cmp = |a: &usize, b: &usize| {
                        let by_value = nan_last(at(*a), at(*b));
                        let by_value = if descending { by_value.reverse() } else { by_value };
                        by_value.then(a.cmp(b))
                    };
                    perm.clear();
                    perm.extend(0..n);
                    if k < n {
                        if k > 0 {
                            perm.select_nth_unstable_by(k - 1, cmp);
                        }
                        perm.truncate(k);
                    }
                    perm.sort_unstable_by(cmp);
                    for (j, &p) in perm.iter().enumerate() {
                        out[(o * k + j) * inner + i] = p as i64;
                    }
                }
            }
            Ok(out)
        }
        Ok(CpuStorage::I64(match self {
            CpuStorage::F32(v) => kern(v, l, dim, descending, k)?,
            CpuStorage::F64(v) => kern(v, l, dim, descending, k)?,
            CpuStorage::I64(v) => kern(v, l, dim, descending, k)?,
            CpuStorage::U8(v) => kern(v, l, dim, descending, k)?,
            CpuStorage::F16(v) => kern(v, l, dim, descending, k)?,
            CpuStorage::BF16(v) => kern(v, l, dim, descending, k)?,
        }))
    }
}
