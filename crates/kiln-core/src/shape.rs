//! Shapes, strided layouts and numpy-style broadcasting.

use crate::{Error, Result};
use smallvec::SmallVec;
use std::fmt;

/// Dimension sizes, inline for rank ≤ 4 so tiny tensors never allocate for their shape.
pub type Dims = SmallVec<[usize; 4]>;

/// The sizes of a tensor's dimensions.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Shape(pub(crate) Dims);

impl Shape {
    /// A shape from its dimension sizes.
    pub fn new(dims: &[usize]) -> Self {
        Shape(Dims::from_slice(dims))
    }
    /// The shape of a scalar (rank 0, one element).
    pub fn scalar() -> Self {
        Shape(Dims::new())
    }
    /// Dimension sizes.
    pub fn dims(&self) -> &[usize] {
        &self.0
    }
    /// Number of dimensions.
    pub fn rank(&self) -> usize {
        self.0.len()
    }
    /// Number of elements (1 for a scalar).
    ///
    /// Every shape a tensor holds has passed [`Shape::checked_elem_count`], so this is exact for
    /// them. For any other shape it saturates at `usize::MAX` rather than wrapping (a wrapped
    /// product can be 0 and make a huge shape look empty); use the checked form to get an error.
    pub fn elem_count(&self) -> usize {
        self.0.iter().fold(1usize, |a, &d| a.saturating_mul(d))
    }
    /// The product of the non-zero dims, or `None` when it exceeds `isize::MAX`.
    ///
    /// Zero dims are skipped because they do not bound the others: `[0, 2^40, 2^40]` holds no
    /// element, yet its contiguous strides (products of trailing dims) would overflow.
    fn nonzero_product(&self) -> Option<usize> {
        self.0
            .iter()
            .filter(|&&d| d != 0)
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .filter(|&p| p <= isize::MAX as usize)
    }
    /// Number of elements, or an error naming `op` and the shape when the product of the dims
    /// (ignoring zero dims) does not fit in `isize`.
    ///
    /// This bound keeps every stride and offset of a layout of this shape representable, also for
    /// shapes with a zero dim, whose plain product would wrap to 0 unnoticed.
    pub fn checked_elem_count(&self, op: &'static str) -> Result<usize> {
        let p = self
            .nonzero_product()
            .ok_or_else(|| Error::shape(op, format!("shape {self} is too large: its element count overflows isize")))?;
        Ok(if self.0.contains(&0) { 0 } else { p })
    }
    /// Number of elements, checked as [`Shape::checked_elem_count`] and also against
    /// `elem_bytes` bytes per element: the byte size of a buffer of this shape (ignoring zero
    /// dims) must fit in `isize`, the most any allocation may hold.
    pub fn checked_elem_count_for(&self, elem_bytes: usize, op: &'static str) -> Result<usize> {
        let n = self.checked_elem_count(op)?;
        let p = self.nonzero_product().unwrap_or(usize::MAX);
        if p.checked_mul(elem_bytes).is_none_or(|b| b > isize::MAX as usize) {
            // An empty tensor holds nothing, but its strides still span its non-empty dims.
            let what = if n == 0 {
                format!("it is empty, but the strides of its non-empty dims span {p} elements of {elem_bytes} bytes, which overflow isize")
            } else {
                format!("{p} elements of {elem_bytes} bytes overflow isize")
            };
            return Err(Error::shape(op, format!("shape {self} is too large: {what}")));
        }
        Ok(n)
    }
    /// Row-major (C-order) strides of this shape, in elements.
    pub fn contiguous_strides(&self) -> Dims {
        let r = self.rank();
        if r <= 4 {
            // Fill a fixed array first: this runs for every op result, and the generic SmallVec
            // path costs more than the arithmetic.
            let mut buf = [0usize; 4];
            let mut acc = 1usize;
            // Exact for validated shapes; saturating keeps other shapes from panicking or wrapping.
            for i in (0..r).rev() {
                buf[i] = acc;
                acc = acc.saturating_mul(self.0[i]);
            }
            return Dims::from_buf_and_len(buf, r);
        }
        let mut strides = Dims::from_elem(0, r);
        let mut acc = 1usize;
        for i in (0..r).rev() {
            strides[i] = acc;
            acc = acc.saturating_mul(self.0[i]);
        }
        strides
    }
    /// Turns a possibly negative dimension index into `0..rank`.
    pub fn dim(&self, dim: isize, op: &'static str) -> Result<usize> {
        let rank = self.rank() as isize;
        let d = if dim < 0 { dim + rank } else { dim };
        if d < 0 || d >= rank {
            return Err(Error::Dim {
                op,
                dim,
                shape: self.clone(),
            });
        }
        Ok(d as usize)
    }
    /// Normalises the position of a new dimension (`unsqueeze`, `stack`): `0..=rank`, negative
    /// values counting from the end of the longer shape, or an error naming `op`.
    pub fn new_dim(&self, dim: isize, op: &'static str) -> Result<usize> {
        let rank = self.rank() as isize;
        let d = if dim < 0 { dim + rank + 1 } else { dim };
        if d < 0 || d > rank {
            return Err(Error::Dim {
                op,
                dim,
                shape: self.clone(),
            });
        }
        Ok(d as usize)
    }
    /// Normalises a list of dims, rejecting duplicates; an empty list means every dimension.
    pub fn reduce_dims(&self, dims: &[isize], op: &'static str) -> Result<Vec<usize>> {
        if dims.is_empty() {
            return Ok((0..self.rank()).collect());
        }
        let mut out = Vec::with_capacity(dims.len());
        for &d in dims {
            let d = self.dim(d, op)?;
            if out.contains(&d) {
                return Err(Error::shape(op, format!("dimension {d} appears twice in {dims:?}")));
            }
            out.push(d);
        }
        out.sort_unstable();
        Ok(out)
    }
    /// The shape numpy broadcasting gives `self` and `other`.
    pub fn broadcast(&self, other: &Shape, op: &'static str) -> Result<Shape> {
        let (a, b) = (self.dims(), other.dims());
        if a == b {
            return Ok(self.clone());
        }
        if b.iter().all(|&d| d == 1) && b.len() <= a.len() {
            return Ok(self.clone());
        }
        let rank = a.len().max(b.len());
        let mut out = Dims::from_elem(1, rank);
        for i in 0..rank {
            let da = if i < rank - a.len() { 1 } else { a[i - (rank - a.len())] };
            let db = if i < rank - b.len() { 1 } else { b[i - (rank - b.len())] };
            out[i] = if da == db || db == 1 {
                da
            } else if da == 1 {
                db
            } else {
                return Err(Error::Broadcast {
                    op,
                    lhs: self.clone(),
                    rhs: other.clone(),
                    lhs_dim: da,
                    rhs_dim: db,
                });
            };
        }
        let out = Shape(out);
        // Both inputs may be valid while their broadcast is not ([2^40, 1] with [1, 2^40]).
        out.checked_elem_count(op)?;
        Ok(out)
    }
}

impl fmt::Debug for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.dims())
    }
}
impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.dims())
    }
}
impl From<&[usize]> for Shape {
    fn from(d: &[usize]) -> Self {
        Shape::new(d)
    }
}
impl<const N: usize> From<[usize; N]> for Shape {
    fn from(d: [usize; N]) -> Self {
        Shape::new(&d)
    }
}
impl<const N: usize> From<&[usize; N]> for Shape {
    fn from(d: &[usize; N]) -> Self {
        Shape::new(d)
    }
}
impl From<Vec<usize>> for Shape {
    fn from(d: Vec<usize>) -> Self {
        Shape::new(&d)
    }
}
impl From<&Vec<usize>> for Shape {
    fn from(d: &Vec<usize>) -> Self {
        Shape::new(d)
    }
}
impl From<()> for Shape {
    fn from(_: ()) -> Self {
        Shape::scalar()
    }
}
impl From<usize> for Shape {
    fn from(d: usize) -> Self {
        Shape::new(&[d])
    }
}
impl From<&Shape> for Shape {
    fn from(s: &Shape) -> Self {
        s.clone()
    }
}

/// Where a tensor's elements sit in its storage: shape, strides (in elements) and offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    pub(crate) shape: Shape,
    pub(crate) strides: Dims,
    pub(crate) offset: usize,
}

impl Layout {
    /// A row-major layout starting at offset 0.
    pub fn contiguous(shape: Shape) -> Self {
        let strides = shape.contiguous_strides();
        Layout { shape, strides, offset: 0 }
    }
    /// The shape.
    pub fn shape(&self) -> &Shape {
        &self.shape
    }
    /// The strides, in elements.
    pub fn strides(&self) -> &[usize] {
        &self.strides
    }
    /// The offset of the first element.
    pub fn offset(&self) -> usize {
        self.offset
    }
    /// True when the elements are exactly `offset..offset+n` in row-major order.
    pub fn is_contiguous(&self) -> bool {
        let mut acc = 1usize;
        for i in (0..self.shape.rank()).rev() {
            let d = self.shape.0[i];
            if d != 1 && self.strides[i] != acc {
                return false;
            }
            // Exact for the validated shapes tensors hold; saturating for any other.
            acc = acc.saturating_mul(d);
        }
        true
    }
    /// `Some(start)` when the elements form one contiguous row-major run.
    pub fn contiguous_offset(&self) -> Option<usize> {
        self.is_contiguous().then_some(self.offset)
    }
    /// Strides that read this layout as if it had been broadcast to `target` (0 for stretched dims).
    pub(crate) fn broadcast_strides(&self, target: &Shape) -> Dims {
        let rank = target.rank();
        let own = self.shape.rank();
        let mut out = Dims::from_elem(0, rank);
        for i in 0..own {
            let t = rank - own + i;
            out[t] = if self.shape.0[i] == 1 && target.0[t] != 1 {
                0
            } else {
                self.strides[i]
            };
        }
        out
    }
}

/// Merges adjacent dimensions that are laid out contiguously for *every* operand, so that
/// strided loops run over as few, as long, rows as possible.
pub(crate) fn coalesce(shape: &[usize], strides: &mut [Dims]) -> Dims {
    let mut out_shape = Dims::new();
    let mut out_strides: Vec<Dims> = strides.iter().map(|_| Dims::new()).collect();
    for i in 0..shape.len() {
        if shape[i] == 1 {
            continue;
        }
        if let Some(&last) = out_shape.last() {
            let mergeable = strides
                .iter()
                .zip(out_strides.iter())
                .all(|(s, o)| *o.last().unwrap() == s[i] * shape[i]);
            if mergeable {
                let n = out_shape.len();
                out_shape[n - 1] = last * shape[i];
                for (s, o) in strides.iter().zip(out_strides.iter_mut()) {
                    let m = o.len();
                    o[m - 1] = s[i];
                }
                continue;
            }
        }
        out_shape.push(shape[i]);
        for (s, o) in strides.iter().zip(out_strides.iter_mut()) {
            o.push(s[i]);
        }
    }
    if out_shape.is_empty() {
        out_shape.push(1);
        for o in out_strides.iter_mut() {
            o.push(0);
        }
    }
    for (s, o) in strides.iter_mut().zip(out_strides) {
        *s = o;
    }
    out_shape
}

/// Walks a row-major index space of `shape`, yielding for each inner row the storage offsets of
/// `N` operands at the row start. The inner dimension (length `shape.last()`) is left to the caller
/// so that it can run a tight loop.
pub(crate) struct RowWalker<const N: usize> {
    shape: Dims,
    strides: [Dims; N],
    index: Dims,
    offsets: [usize; N],
    rows_left: usize,
}

impl<const N: usize> RowWalker<N> {
    /// Starts at row `first_row` (rows are counted over all but the last dimension).
    pub(crate) fn new(shape: Dims, strides: [Dims; N], base: [usize; N], first_row: usize, rows: usize) -> Self {
        let rank = shape.len();
        let mut index = Dims::from_elem(0, rank);
        let mut offsets = base;
        let mut r = first_row;
        for d in (0..rank.saturating_sub(1)).rev() {
            let i = r % shape[d];
            r /= shape[d];
            index[d] = i;
            for k in 0..N {
                offsets[k] += i * strides[k][d];
            }
        }
        RowWalker {
            shape,
            strides,
            index,
            offsets,
            rows_left: rows,
        }
    }
}

impl<const N: usize> Iterator for RowWalker<N> {
    type Item = [usize; N];
    #[inline]
    fn next(&mut self) -> Option<[usize; N]> {
        if self.rows_left == 0 {
            return None;
        }
        self.rows_left -= 1;
        let cur = self.offsets;
        let rank = self.shape.len();
        // Advance the multi-index over the outer dims (odometer).
        let mut d = rank.saturating_sub(1);
        while d > 0 {
            d -= 1;
            self.index[d] += 1;
            for k in 0..N {
                self.offsets[k] += self.strides[k][d];
            }
            if self.index[d] < self.shape[d] {
                break;
            }
            for k in 0..N {
                self.offsets[k] -= self.strides[k][d] * self.shape[d];
            }
            self.index[d] = 0;
        }
        Some(cur)
    }
}
