//! A bounded cache of large host buffers, reused across ops.
//!
//! Every kernel writes a fresh output buffer. glibc serves large requests with `mmap` and returns
//! them to the kernel on free, so without a cache each op's output faults all its pages in again
//! (about 30 % of a small CNN's training step went to page faults and page clearing). Buffers of at
//! least [`MIN_POOLED_BYTES`] are therefore allocated in size classes (four per power of two) and,
//! when their [`super::CpuStorage`] is dropped, kept on a free list for the next request of the same
//! class, up to [`MAX_CACHED_BYTES`] in all. Smaller buffers go straight to the system allocator,
//! whose own bins already serve them without faults.
//!
//! A reused buffer holds stale values: [`take`] hands it out with length 0, so callers must write
//! every element (as [`super::build`] does) or ask [`filled`] for a buffer set to one value.

use std::alloc::Layout;
use std::collections::BTreeMap;
use std::ptr::NonNull;
use std::sync::Mutex;

/// Buffers smaller than this are not cached.
pub const MIN_POOLED_BYTES: usize = 64 << 10;
/// Upper bound on the bytes held in free lists (buffers in use are not counted).
pub const MAX_CACHED_BYTES: usize = 256 << 20;

/// A cached allocation, type-erased: any element type with the same alignment and a size that
/// divides `bytes` can take it back (f64 and i64 share buffers; so could f32 and a future i32).
struct Raw(NonNull<u8>);
// SAFETY: a cached buffer is owned by the pool alone; no reference to it exists while it is cached.
unsafe impl Send for Raw {}

struct State {
    /// Keyed by (alignment, size in bytes); sizes are always a size class times the element size.
    lists: BTreeMap<(usize, usize), Vec<Raw>>,
    bytes: usize,
}

static POOL: Mutex<State> = Mutex::new(State {
    lists: BTreeMap::new(),
    bytes: 0,
});

fn lock() -> std::sync::MutexGuard<'static, State> {
    // The state stays consistent even if a holder panicked (every update is a single push/pop).
    POOL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The smallest size class holding `n` elements: `n` rounded up to a quarter of its power of two
/// (at most 25 % slack).
fn class_of(n: usize) -> usize {
    if n <= 4 {
        return n;
    }
    let step = (usize::BITS - 1 - n.leading_zeros()) - 2; // a quarter of n's power of two
    let q = 1usize << step;
    // Rounding up past usize::MAX (n above 7/8 of it) keeps n itself: no buffer that large
    // exists, and the allocator reports the failure for n.
    n.div_ceil(q).checked_mul(q).unwrap_or(n)
}

fn pooled_size<T>(n: usize) -> bool {
    std::mem::size_of::<T>() > 0 && n.saturating_mul(std::mem::size_of::<T>()) >= MIN_POOLED_BYTES
}

/// A failed buffer allocation: the request was larger than `isize::MAX` bytes or the allocator
/// refused it. Kernels do not know the user-facing op name, so their callers attach it with
/// [`AllocError::at`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct AllocError {
    /// Elements requested.
    pub(crate) elems: usize,
    /// Bytes per element.
    pub(crate) elem_bytes: usize,
}

impl AllocError {
    /// The user-facing error of op `op`.
    pub(crate) fn at(self, op: &'static str) -> crate::Error {
        crate::Error::Alloc {
            op,
            elems: self.elems,
            elem_bytes: self.elem_bytes,
        }
    }
}

/// A fresh empty vector with capacity for exactly `n` elements, or an error instead of the abort
/// (allocator failure) or panic (capacity overflow) of `Vec::with_capacity`.
pub(crate) fn try_with_capacity<T>(n: usize) -> Result<Vec<T>, AllocError> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| AllocError {
        elems: n,
        elem_bytes: std::mem::size_of::<T>(),
    })?;
    Ok(v)
}

/// An empty vector with room for at least `n` elements, reused from the cache when one of the
/// right size class is free. Its spare capacity may hold stale values: write before reading.
/// A request the allocator cannot serve is an error, never an abort.
pub(crate) fn take<T: Copy>(n: usize) -> Result<Vec<T>, AllocError> {
    if !pooled_size::<T>(n) {
        return try_with_capacity(n);
    }
    let class = class_of(n);
    // Rounding up to the class must not overflow the byte size either; a request that large is
    // refused by the allocator anyway, so ask for exactly `n` and let it report the failure.
    let Some(bytes) = class.checked_mul(std::mem::size_of::<T>()).filter(|&b| b <= isize::MAX as usize) else {
        return try_with_capacity(n);
    };
    let key = (std::mem::align_of::<T>(), bytes);
    let reused = {
        let mut s = lock();
        let r = s.lists.get_mut(&key).and_then(|l| l.pop());
        if r.is_some() {
            s.bytes -= key.1;
        }
        r
    };
    match reused {
        // SAFETY: the buffer was allocated by the global allocator as a Vec of an element type with
        // T's alignment and `key.1 = class * size_of::<T>()` bytes (checked above not to overflow),
        // exactly the layout of a `Vec<T>` of capacity `class`; length 0 means no element is
        // assumed initialised.
        Some(Raw(p)) => Ok(unsafe { Vec::from_raw_parts(p.as_ptr().cast::<T>(), 0, class) }),
        // Report the request, not the rounded-up class, when the allocator refuses.
        None => try_with_capacity(class).map_err(|e| AllocError { elems: n, ..e }),
    }
}

/// `n` copies of `value` in a (possibly reused) buffer, or an error when it cannot be allocated.
pub(crate) fn filled<T: Copy>(n: usize, value: T) -> Result<Vec<T>, AllocError> {
    let mut v = take(n)?;
    v.resize(n, value);
    Ok(v)
}

fn free(r: Raw, key: (usize, usize)) {
    // The key came from a live Vec's layout, so this cannot fail; if it ever did, leaking the
    // buffer is safe where freeing it with a wrong layout would not be.
    let Ok(layout) = Layout::from_size_align(key.1, key.0) else {
        return;
    };
    // SAFETY: `r` was allocated by the global allocator with exactly this size and alignment (see
    // `give`, which keys it by the Vec's capacity in bytes and alignment) and is owned here alone.
    unsafe { std::alloc::dealloc(r.0.as_ptr(), layout) }
}

/// Keeps `v`'s allocation for reuse when it is large, of an exact size class and fits the budget;
/// otherwise frees it.
pub(crate) fn give<T: Copy>(v: Vec<T>) {
    let cap = v.capacity();
    if !pooled_size::<T>(cap) || class_of(cap) != cap {
        return;
    }
    let key = (std::mem::align_of::<T>(), cap * std::mem::size_of::<T>());
    if key.1 > MAX_CACHED_BYTES / 4 {
        return;
    }
    let mut v = std::mem::ManuallyDrop::new(v);
    // A Vec's pointer is never null; the checked constructor avoids an unsafe block for it.
    let Some(ptr) = NonNull::new(v.as_mut_ptr().cast::<u8>()) else {
        return;
    };
    let raw = Raw(ptr);
    let mut evicted = Vec::new();
    {
        let mut s = lock();
        // Over budget: free cached buffers, largest first, until this one fits.
        while s.bytes + key.1 > MAX_CACHED_BYTES {
            let Some(mut e) = s.lists.last_entry() else { break };
            let k = *e.key();
            let b = e.get_mut().pop();
            if e.get().is_empty() {
                e.remove();
            }
            if let Some(b) = b {
                s.bytes -= k.1;
                evicted.push((b, k));
            }
        }
        s.bytes += key.1;
        s.lists.entry(key).or_default().push(raw);
    }
    // Freed outside the lock.
    for (b, k) in evicted {
        free(b, k);
    }
}

/// Bytes currently held in free lists.
#[cfg(test)]
pub(crate) fn cached_bytes() -> usize {
    lock().bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_cover_and_bound_slack() {
        for n in [0, 1, 4, 5, 7, 8, 9, 100, 1000, 16384, 16385, 1 << 20, (1 << 20) + 1, 3 << 20] {
            let c = class_of(n);
            assert!(c >= n && c * 4 <= n * 5 + 16, "n {n} class {c}");
            assert_eq!(class_of(c), c, "class {c} of {n} is not a fixed point");
        }
    }

    #[test]
    fn reuse_returns_empty_vectors_of_the_class() {
        let n = 100_003;
        let mut v: Vec<f64> = take(n).unwrap();
        assert!(v.is_empty() && v.capacity() == class_of(n));
        v.resize(n, 7.0);
        let p = v.as_ptr();
        give(v);
        let w: Vec<f64> = take(n).unwrap();
        assert!(w.is_empty(), "a reused buffer must come back with length 0");
        // Another thread may have taken it in between, so only check the pointer when it matches.
        if w.as_ptr() == p {
            assert!(w.capacity() >= n);
        }
        let z = filled(n, 0.0f64).unwrap();
        assert!(z.iter().all(|&x| x == 0.0));
        give(w);
        give(z);
        assert!(cached_bytes() <= MAX_CACHED_BYTES);
    }

    #[test]
    fn impossible_requests_are_errors_not_aborts() {
        // Over isize::MAX bytes: a capacity overflow, which `Vec::with_capacity` would panic on.
        let e = take::<f64>(usize::MAX / 4).unwrap_err();
        assert_eq!((e.elems, e.elem_bytes), (usize::MAX / 4, 8));
        // Representable but far beyond any machine's memory: the allocator refuses (an abort
        // through `handle_alloc_error` before).
        let e = filled::<f32>((1 << 60) + 3, 0.0).unwrap_err();
        assert_eq!((e.elems, e.elem_bytes), ((1 << 60) + 3, 4));
        assert!(try_with_capacity::<u8>(usize::MAX).is_err());
        // Near usize::MAX the size class itself would overflow.
        let e = take::<u8>(usize::MAX - 1).unwrap_err();
        assert_eq!((e.elems, e.elem_bytes), (usize::MAX - 1, 1));
        assert_eq!(class_of(usize::MAX), usize::MAX);
    }

    #[test]
    fn small_and_odd_buffers_are_not_cached() {
        let v: Vec<f32> = take(10).unwrap();
        assert!(v.capacity() < MIN_POOLED_BYTES / 4);
        give(v);
        // A user vector with an odd capacity is freed, not cached under a wrong class.
        let odd: Vec<f32> = Vec::with_capacity(class_of(1 << 20) + 1);
        give(odd);
    }
}
