//! `outer` and `einsum`: tensor contractions named by subscripts, lowered to `index_select`
//! (diagonals), `sum`, `permute`, `reshape`, `expand` and batched `matmul`. Every step is a
//! recorded op, so gradients of every order come from theirs.

use crate::ops::{float_check, mul_checked, out_shape, same_dtype};
use crate::{Error, Result, Tensor};
use std::borrow::Borrow;

const OP: &str = "einsum";

/// A parsed subscript string: one label list per operand, and the output's. Letters are their
/// ASCII codes; the dims an ellipsis covers get the labels from [`ELLIPSIS_FIRST`] up, numbered
/// from the left of the widest ellipsis, so that they broadcast right-aligned as in torch.
struct Spec {
    inputs: Vec<Vec<u8>>,
    output: Vec<u8>,
}

/// The label of the first (leftmost) dim under an ellipsis; letters are all below it.
const ELLIPSIS_FIRST: u8 = 128;

fn label(c: u8) -> String {
    if c >= ELLIPSIS_FIRST {
        format!("'...' (its dim {})", c - ELLIPSIS_FIRST)
    } else {
        format!("'{}'", c as char)
    }
}

/// One operand's (or the output's) subscripts: its letters and where its ellipsis stands, if any.
struct Part {
    before: Vec<u8>,
    after: Option<Vec<u8>>,
}

impl Part {
    fn letters(&self) -> impl Iterator<Item = &u8> {
        self.before.iter().chain(self.after.iter().flatten())
    }
    fn count(&self) -> usize {
        self.before.len() + self.after.as_ref().map_or(0, Vec::len)
    }
    /// The labels with the ellipsis standing for `ellipsis` (the labels it covers here).
    fn expand(&self, ellipsis: &[u8]) -> Vec<u8> {
        match &self.after {
            None => self.before.clone(),
            Some(after) => [&self.before[..], ellipsis, after].concat(),
        }
    }
}

fn parse(spec: &str, ranks: &[usize]) -> Result<Spec> {
    let s: String = spec.chars().filter(|c| !c.is_whitespace()).collect();
    let (lhs, rhs) = match s.split_once("->") {
        Some((l, r)) => (l, Some(r)),
        None => (s.as_str(), None),
    };
    let bad = |c: char| {
        Error::value(
            OP,
            format!("unexpected {c:?} in {spec:?}: subscripts are letters a-z and A-Z or one '...' per operand, operands are separated by ',' and the output follows a single '->'"),
        )
    };
    let letters = |part: &str| -> Result<Vec<u8>> {
        match part.chars().find(|c| !c.is_ascii_alphabetic()) {
            Some(c) => Err(bad(c)),
            None => Ok(part.bytes().collect()),
        }
    };
    let split = |part: &str| -> Result<Part> {
        Ok(match part.split_once("...") {
            Some((before, after)) => {
                if after.contains("...") {
                    return Err(Error::value(OP, format!("{part:?} in {spec:?} has more than one ellipsis ('...')")));
                }
                Part {
                    before: letters(before)?,
                    after: Some(letters(after)?),
                }
            }
            None => Part {
                before: letters(part)?,
                after: None,
            },
        })
    };
    let parts: Vec<Part> = lhs.split(',').map(split).collect::<Result<_>>()?;
    if parts.len() != ranks.len() {
        return Err(Error::value(
            OP,
            format!(
                "{spec:?} has subscripts for {} operands but {} were given",
                parts.len(),
                ranks.len()
            ),
        ));
    }
    // Each ellipsis covers the dims its operand's letters leave; the widest sets how many
    // ellipsis labels there are, and narrower ones take the rightmost of them.
    let mut covered = Vec::with_capacity(parts.len());
    for (i, (p, &rank)) in parts.iter().zip(ranks).enumerate() {
        covered.push(match p.after {
            Some(_) => rank.checked_sub(p.count()).ok_or_else(|| {
                Error::shape(
                    OP,
                    format!(
                        "subscripts of operand {i} in {spec:?} name {} dims besides '...' but it has only {rank}",
                        p.count()
                    ),
                )
            })?,
            None => 0,
        });
    }
    let widest = covered.iter().copied().max().unwrap_or(0);
    if widest > usize::from(u8::MAX - ELLIPSIS_FIRST) + 1 {
        return Err(Error::value(
            OP,
            format!(
                "'...' covers {widest} dims in {spec:?}; at most {} are supported",
                u8::MAX - ELLIPSIS_FIRST + 1
            ),
        ));
    }
    let all: Vec<u8> = (0..widest).map(|k| ELLIPSIS_FIRST + k as u8).collect();
    let inputs: Vec<Vec<u8>> = parts.iter().zip(&covered).map(|(p, &e)| p.expand(&all[widest - e..])).collect();
    let output = match rhs {
        Some(r) => {
            let part = split(r)?;
            let used: Vec<u8> = part.letters().copied().collect();
            for (i, &c) in used.iter().enumerate() {
                if used[..i].contains(&c) {
                    return Err(Error::value(OP, format!("output subscript {} appears twice in {spec:?}", label(c))));
                }
                if !inputs.iter().any(|t| t.contains(&c)) {
                    return Err(Error::value(
                        OP,
                        format!("output subscript {} in {spec:?} names no input dimension", label(c)),
                    ));
                }
            }
            // An explicit output without '...' sums the ellipsis dims away (torch's rule).
            part.expand(&all)
        }
        // Implicit output, as numpy and torch: the ellipsis dims, then the labels used exactly
        // once, in ASCII order (upper case first).
        None => {
            let mut count = [0usize; 128];
            for p in &parts {
                for &c in p.letters() {
                    count[c as usize] += 1;
                }
            }
            all.iter().copied().chain((0u8..128).filter(|&c| count[c as usize] == 1)).collect()
        }
    };
    Ok(Spec { inputs, output })
}

/// A tensor with the label of each of its dims.
struct Labelled {
    t: Tensor,
    labels: Vec<u8>,
}

impl Labelled {
    fn size(&self, c: u8) -> Option<usize> {
        self.labels.iter().position(|&l| l == c).map(|p| self.t.dims()[p])
    }
    /// Sums away the dims whose label `keep` rejects.
    fn sum_unless(self, keep: impl Fn(u8) -> bool) -> Result<Labelled> {
        let gone: Vec<isize> = (0..self.labels.len())
            .filter(|&p| !keep(self.labels[p]))
            .map(|p| p as isize)
            .collect();
        if gone.is_empty() {
            return Ok(self);
        }
        let labels = self.labels.iter().copied().filter(|&c| keep(c)).collect();
        Ok(Labelled {
            t: self.t.sum(&gone, false)?,
            labels,
        })
    }
    /// Takes the diagonal over every label repeated within the operand (`"ii->i"`): the two dims
    /// are moved last, merged, and every `(n + 1)`-th element picked with `index_select`.
    fn diagonals(mut self) -> Result<Labelled> {
        while let Some((p, q)) =
            (0..self.labels.len()).find_map(|q| self.labels[..q].iter().position(|&c| c == self.labels[q]).map(|p| (p, q)))
        {
            let r = self.labels.len();
            let n = self.t.dims()[p];
            let mut perm: Vec<usize> = (0..r).filter(|&d| d != p && d != q).collect();
            perm.extend([p, q]);
            let mut shape: Vec<usize> = perm[..r - 2].iter().map(|&d| self.t.dims()[d]).collect();
            // Two dims of a valid shape: n * n fits (checked anyway, like any size product).
            shape.push(mul_checked(n, n, OP, || format!("the diagonal of shape {}", self.t.shape()))?);
            let step: Vec<i64> = (0..n).map(|i| (i * (n + 1)) as i64).collect();
            let t = self
                .t
                .permute(&perm)?
                .reshape(shape)?
                .index_select(-1, &Tensor::from_vec(step, [n])?)?;
            let c = self.labels[p];
            let mut labels: Vec<u8> = perm[..r - 2].iter().map(|&d| self.labels[d]).collect();
            labels.push(c);
            self = Labelled { t, labels };
        }
        Ok(self)
    }
    /// This tensor with its dims in the order of `labels`, size-1 dims stretched to `sizes`, and
    /// then merged into one dim per group of `groups` (the lengths of consecutive label runs).
    fn arrange(&self, labels: &[u8], sizes: &[usize], groups: &[usize]) -> Result<Tensor> {
        let perm: Vec<usize> = labels
            .iter()
            .map(|c| self.labels.iter().position(|l| l == c).expect("every label is present"))
            .collect();
        let mut t = self.t.permute(&perm)?;
        if t.dims() != sizes {
            t = t.expand(sizes.to_vec())?;
        }
        let mut merged = Vec::with_capacity(groups.len());
        let mut at = 0;
        for &g in groups {
            let part = &sizes[at..at + g];
            merged.push(
                part.iter()
                    .try_fold(1usize, |a, &b| mul_checked(a, b, OP, || format!("dims {part:?}")))?,
            );
            at += g;
        }
        t.reshape(merged)
    }
}

/// `a` times `b` summed over the labels they share that `keep` does not need later, as one
/// batched matmul: shared labels still needed are the batch, the others are contracted.
fn contract(a: Labelled, b: Labelled, keep: &[u8]) -> Result<Labelled> {
    let shared = |c: &u8| b.labels.contains(c);
    let batch: Vec<u8> = a.labels.iter().copied().filter(|c| shared(c) && keep.contains(c)).collect();
    let summed: Vec<u8> = a.labels.iter().copied().filter(|c| shared(c) && !keep.contains(c)).collect();
    let a_only: Vec<u8> = a.labels.iter().copied().filter(|c| !shared(c)).collect();
    let b_only: Vec<u8> = b.labels.iter().copied().filter(|c| !a.labels.contains(c)).collect();
    // Shared dims broadcast: a size-1 side takes the other's size.
    let size = |c: u8| match (a.size(c), b.size(c)) {
        (Some(x), Some(y)) => x.max(y),
        (Some(x), None) | (None, Some(x)) => x,
        (None, None) => unreachable!("labels come from a or b"),
    };
    let sizes = |ls: &[&[u8]]| -> Vec<usize> { ls.iter().flat_map(|l| l.iter().map(|&c| size(c))).collect() };
    let a_order: Vec<u8> = [&batch[..], &a_only, &summed].concat();
    let b_order: Vec<u8> = [&batch[..], &summed, &b_only].concat();
    let lhs = a.arrange(
        &a_order,
        &sizes(&[&batch, &a_only, &summed]),
        &[batch.len(), a_only.len(), summed.len()],
    )?;
    let rhs = b.arrange(
        &b_order,
        &sizes(&[&batch, &summed, &b_only]),
        &[batch.len(), summed.len(), b_only.len()],
    )?;
    let t = lhs.matmul(&rhs)?.reshape(sizes(&[&batch, &a_only, &b_only]))?;
    Ok(Labelled {
        t,
        labels: [batch, a_only, b_only].concat(),
    })
}

impl Tensor {
    /// The outer product of two 1-d tensors (`torch.outer`): `out[i][j] = self[i] * rhs[j]`.
    ///
    /// ```
    /// use kiln_core::Tensor;
    /// let a = Tensor::from_slice(&[1.0f64, 2.0], [2])?;
    /// let b = Tensor::from_slice(&[3.0f64, 4.0, 5.0], [3])?;
    /// assert_eq!(a.outer(&b)?.to_vec2::<f64>()?, vec![vec![3.0, 4.0, 5.0], vec![6.0, 8.0, 10.0]]);
    /// # Ok::<(), kiln_core::Error>(())
    /// ```
    pub fn outer(&self, rhs: &Tensor) -> Result<Tensor> {
        if self.rank() != 1 || rhs.rank() != 1 {
            return Err(Error::shape(
                "outer",
                format!("expects two 1-d tensors, got shapes {} and {}", self.shape(), rhs.shape()),
            ));
        }
        same_dtype(self, rhs, "outer")?;
        out_shape(&[self.dims()[0], rhs.dims()[0]], self.dtype(), "outer")?;
        self.unsqueeze(1)?.mul(&rhs.unsqueeze(0)?)
    }

    /// Einstein summation (`torch.einsum`) over f32 or f64 operands of one dtype.
    ///
    /// Supported: subscripts `a-z`, `A-Z` (whitespace ignored); an explicit output after `->`, or
    /// the implicit one (the labels used exactly once, in ASCII order, as in torch); any number of
    /// operands; a label repeated within an operand takes the diagonal (`"ii->i"`, `"ii->"`);
    /// labels missing from the output are summed over; dims of size 1 broadcast against the
    /// same label's size elsewhere. An ellipsis (`...`, at most one per operand) stands for the
    /// dims the letters leave, broadcast right-aligned across operands as in torch; the implicit
    /// output puts them first, and an explicit output without `...` sums them away.
    ///
    /// Operands are contracted left to right, each pair as one batched matmul, after summing
    /// away the labels no later step needs. Every step is a recorded op, so the gradient (of
    /// every order) is exact.
    ///
    /// ```
    /// use kiln_core::Tensor;
    /// let a = Tensor::from_slice(&[1.0f64, 2.0, 3.0, 4.0], [2, 2])?;
    /// let b = Tensor::from_slice(&[5.0f64, 6.0, 7.0, 8.0], [2, 2])?;
    /// let ab = Tensor::einsum("ij,jk->ik", &[&a, &b])?;
    /// assert_eq!(ab.to_vec::<f64>()?, a.matmul(&b)?.to_vec::<f64>()?);
    /// assert_eq!(Tensor::einsum("ii", &[&a])?.to_vec::<f64>()?, vec![5.0]); // the trace
    /// // Batched matmul over any leading dims.
    /// let x = Tensor::ones([4, 3, 2, 2], kiln_core::DType::F64)?;
    /// assert_eq!(Tensor::einsum("...ij,jk->...ik", &[&x, &b])?.dims(), &[4, 3, 2, 2]);
    /// # Ok::<(), kiln_core::Error>(())
    /// ```
    pub fn einsum<T: Borrow<Tensor>>(spec: &str, operands: &[T]) -> Result<Tensor> {
        let first = operands
            .first()
            .ok_or_else(|| Error::value(OP, format!("needs at least one operand for {spec:?}")))?
            .borrow();
        float_check(first, OP)?;
        for t in operands {
            same_dtype(first, t.borrow(), OP)?;
        }
        let ranks: Vec<usize> = operands.iter().map(|t| t.borrow().rank()).collect();
        let spec_p = parse(spec, &ranks)?;
        // Every label's size must agree between and within operands, up to size-1 broadcasting
        // between operands (a diagonal needs equal sizes).
        let mut sizes: Vec<(u8, usize, usize)> = Vec::new();
        for (i, (t, labels)) in operands.iter().zip(&spec_p.inputs).enumerate() {
            let t = t.borrow();
            if labels.len() != t.rank() {
                return Err(Error::shape(
                    OP,
                    format!(
                        "subscripts {:?} name {} dims but operand {i} has shape {}",
                        labels.iter().map(|&c| c as char).collect::<String>(),
                        labels.len(),
                        t.shape()
                    ),
                ));
            }
            for (p, &c) in labels.iter().enumerate() {
                let n = t.dims()[p];
                if let Some(q) = labels[..p].iter().position(|&l| l == c) {
                    if t.dims()[q] != n {
                        return Err(Error::shape(
                            OP,
                            format!(
                                "subscript {} is repeated in operand {i} (shape {}) over dims of sizes {} and {n}",
                                label(c),
                                t.shape(),
                                t.dims()[q]
                            ),
                        ));
                    }
                }
                match sizes.iter_mut().find(|(l, ..)| *l == c) {
                    Some((_, seen, at)) if *seen != n && *seen != 1 && n != 1 => {
                        return Err(Error::shape(
                            OP,
                            format!("subscript {} has size {seen} in operand {at} but {n} in operand {i}", label(c)),
                        ));
                    }
                    Some((_, seen, at)) => {
                        if *seen == 1 {
                            (*seen, *at) = (n, i);
                        }
                    }
                    None => sizes.push((c, n, i)),
                }
            }
        }
        let parts: Vec<Labelled> = operands
            .iter()
            .zip(spec_p.inputs)
            .map(|(t, labels)| {
                Labelled {
                    t: t.borrow().clone(),
                    labels,
                }
                .diagonals()
            })
            .collect::<Result<_>>()?;
        let output = spec_p.output;
        // Labels still needed after contracting with operand j: the output's and those of the
        // operands after j.
        let mut needed_after: Vec<Vec<u8>> = vec![output.clone(); parts.len()];
        for j in (0..parts.len().saturating_sub(1)).rev() {
            let later = [&needed_after[j + 1][..], &parts[j + 1].labels].concat();
            needed_after[j] = later;
        }
        let mut parts = parts.into_iter().zip(needed_after);
        let (mut acc, _) = parts.next().expect("at least one operand");
        for (b, keep) in parts {
            let a = acc.sum_unless(|c| keep.contains(&c) || b.labels.contains(&c))?;
            let b = b.sum_unless(|c| keep.contains(&c) || a.labels.contains(&c))?;
            acc = contract(a, b, &keep)?;
        }
        let acc = acc.sum_unless(|c| output.contains(&c))?;
        let perm: Vec<usize> = output
            .iter()
            .map(|c| acc.labels.iter().position(|l| l == c).expect("output labels come from the inputs"))
            .collect();
        // Shared labels took their broadcast size in `contract`, so no dim is left to stretch.
        acc.t.permute(&perm)
    }
}
