//! kiln's own packed matrix product for f32 and f64 (`C = alpha·A·B + beta·C`), with AVX-512 and
//! AVX2 + FMA micro-kernels chosen at run time ([`Isa`]) and the `gemm` crate as the fallback on
//! CPUs with neither.
//!
//! The structure is the one BLIS made standard (Goto's algorithm). Columns of B are taken `nc` at
//! a time, the shared dimension `kc` at a time; that `kc x nc` block of B is packed into panels of
//! `NR` columns (it stays in L3), then rows of A are taken `mc` at a time and packed into panels
//! of `MR` rows (the `mc x kc` block stays in L2), and the micro-kernel multiplies one A panel by
//! one B panel into an `MR x NR` tile of C held in registers. Unlike BLIS's usual rule (a B panel
//! in L1), `kc` is sized so that one `MR x kc` A panel fills L1 and the B panel streams from L2:
//! deeper blocks touch each C tile fewer times, which measured faster (see [`blocking_for`]). Packing makes every operand layout (row-major, transposed, any strides) look the
//! same to the kernel, pads edges with zeros so the kernel only ever sees whole tiles, and turns
//! the kernel's reads into unit-stride streams.
//!
//! `kc`, `mc` and `nc` come from the cache sizes the OS reports at run time (Linux sysfs), so
//! one binary is blocked for the machine it runs on; `KILN_GEMM_BLOCKING=kc,mc,nc` overrides them
//! (used to tune). Two or more threads split the rows of C, each thread packing its own blocks:
//! no synchronisation inside the product.

/// One k step of a register tile, for each listed row `r`: broadcast `$bcast($ld(r, o))` (row
/// `r`'s A value at step offset `o`) and two FMAs into `acc[r]` against the B vectors `b0`, `b1`.
/// Written out per row: a loop over `acc` made LLVM keep the tile in memory.
#[cfg(target_arch = "x86_64")]
macro_rules! tile_step {
    ($bcast:expr, $fma:ident, $ld:ident, $o:expr, $b0:expr, $b1:expr, $acc:ident; $($r:tt)+) => {
        $(
            let ar = $bcast($ld($r, $o));
            $acc[$r][0] = $fma(ar, $b0, $acc[$r][0]);
            $acc[$r][1] = $fma(ar, $b1, $acc[$r][1]);
        )+
    };
}

/// Stores each listed row `r` of a full tile to `c` (row stride `ldc`, two vectors of `lanes`
/// per row) as `$st(address, $f(address, acc[r][v]))`.
#[cfg(target_arch = "x86_64")]
macro_rules! tile_store {
    ($st:ident, $c:expr, $ldc:expr, $lanes:expr, $acc:ident, $f:ident; $($r:tt)+) => {
        $(
            let q0 = $c.add($r * $ldc);
            let q1 = q0.add($lanes);
            $st(q0, $f(q0, $acc[$r][0]));
            $st(q1, $f(q1, $acc[$r][1]));
        )+
    };
}

/// The body of a block kernel: one `$kernel` call per `$mr`-row tile of the block column, tile `q`
/// on A panel `q` (strides `$a_strides` = panel, row, step) and C rows `q * $mr..`, the last tile
/// of `mc % $mr` rows when the block ends short. Expanded inside each ISA's `#[target_feature]`
/// function so the kernel inlines with that function's features.
#[cfg(target_arch = "x86_64")]
macro_rules! for_each_tile {
    ($kernel:expr, $mr:expr; $kc:ident, $mc:ident, $a:ident, $a_strides:ident, $b:ident, $c:ident, $ldc:ident, $nr:ident, $alpha:ident, $beta:ident) => {
        let (a_ps, a_rs, a_cs) = $a_strides;
        for (q, ir) in (0..$mc).step_by($mr).enumerate() {
            // SAFETY: tile q reads A rows ir..ir+h (panel q) and writes C rows ir..ir+h, inside
            // the extents the caller checked for the whole block.
            unsafe {
                $kernel(
                    $kc,
                    $a.add(q * a_ps),
                    a_rs,
                    a_cs,
                    $b,
                    $c.add(ir * $ldc),
                    $ldc,
                    $mr.min($mc - ir),
                    $nr,
                    $alpha,
                    $beta,
                )
            }
        }
    };
}

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(target_arch = "x86_64")]
mod dots;
/// The row counts at which a product through [`GemmScalar::dots`] may be split between threads
/// without a block straddling two parts.
#[cfg(target_arch = "x86_64")]
pub(crate) const DOTS_ROWS_UNIT: usize = dots::ROWS_UNIT;
#[cfg(not(target_arch = "x86_64"))]
pub(crate) const DOTS_ROWS_UNIT: usize = 4;
mod pack;

use crate::{Error, Float, Result};
use rayon::prelude::*;
use std::cell::RefCell;
use std::mem::MaybeUninit;
use std::sync::OnceLock;

/// A read-only strided matrix: element `(i, j)` is `data[off + i * rs + j * cs]`.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a, T> {
    /// The buffer holding the matrix.
    pub data: &'a [T],
    /// Offset of element `(0, 0)`.
    pub off: usize,
    /// Row stride, in elements.
    pub rs: usize,
    /// Column stride, in elements.
    pub cs: usize,
}

impl<T> MatRef<'_, T> {
    /// True when every element of a `rows x cols` matrix lies inside `data` (checked arithmetic: an
    /// offset that overflows lies outside any buffer).
    pub fn fits(&self, rows: usize, cols: usize) -> bool {
        fits(self.off, self.rs, self.cs, rows, cols, self.data.len())
    }
}

fn fits(off: usize, rs: usize, cs: usize, rows: usize, cols: usize, len: usize) -> bool {
    if rows == 0 || cols == 0 {
        return true;
    }
    let last = (rows - 1)
        .checked_mul(rs)
        .and_then(|r| (cols - 1).checked_mul(cs).and_then(|c| r.checked_add(c)))
        .and_then(|rc| rc.checked_add(off));
    let strides_fit = isize::try_from(rs).is_ok() && isize::try_from(cs).is_ok();
    strides_fit && last.is_some_and(|e| e < len)
}

/// Cache blocking of the packed product, in elements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Blocking {
    /// Depth of a packed block (the shared dimension): one `MR x kc` panel of A fills about 3/4 of L1.
    pub kc: usize,
    /// Rows of A packed at once: the `mc x kc` block fills about 3/4 of L2. A multiple of `MR`.
    pub mc: usize,
    /// Columns of B packed at once: the `kc x nc` block fits in a quarter of L3. A multiple of `NR`.
    pub nc: usize,
}

/// The data and unified caches Linux reports for CPU 0, in index order: each one's level and
/// sysfs folder.
fn sysfs_data_caches() -> Vec<(String, String)> {
    (0..8)
        .filter_map(|idx| {
            let dir = format!("/sys/devices/system/cpu/cpu0/cache/index{idx}");
            let (level, kind) = (sysfs_value(&dir, "level")?, sysfs_value(&dir, "type")?);
            (kind != "Instruction").then_some((level, dir))
        })
        .collect()
}

/// The trimmed text of `dir/file`, when it can be read.
fn sysfs_value(dir: &str, file: &str) -> Option<String> {
    std::fs::read_to_string(format!("{dir}/{file}")).ok().map(|v| v.trim().to_string())
}

/// Data-cache sizes in bytes (L1d, L2, L3) as Linux reports them for CPU 0, with defaults for
/// each level it does not report (32 KiB, 512 KiB, 8 MiB: a conservative current x86 core).
pub fn cache_sizes() -> (usize, usize, usize) {
    static SIZES: OnceLock<(usize, usize, usize)> = OnceLock::new();
    *SIZES.get_or_init(|| {
        let mut sizes = (32 << 10, 512 << 10, 8 << 20);
        for (level, dir) in sysfs_data_caches() {
            let Some(bytes) = sysfs_value(&dir, "size").and_then(|v| parse_size(&v)) else {
                continue;
            };
            match level.as_str() {
                "1" => sizes.0 = bytes,
                "2" => sizes.1 = bytes,
                "3" => sizes.2 = bytes,
                _ => {}
            }
        }
        sizes
    })
}

/// The geometry of an L1 data cache: which lines share a set, and how many a set holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct L1Geometry {
    /// Sets: line `l` (address / `line`) goes to set `l mod sets`.
    pub sets: usize,
    /// Bytes per line.
    pub line: usize,
    /// Lines per set.
    pub ways: usize,
}

/// The L1 data cache's geometry as Linux reports it for CPU 0; 64 sets of 8 lines of 64 bytes
/// (32 KiB, the most aliasing current x86 cores show) where it is not reported.
pub fn l1_geometry() -> L1Geometry {
    static GEOMETRY: OnceLock<L1Geometry> = OnceLock::new();
    *GEOMETRY.get_or_init(|| {
        let l1 = sysfs_data_caches().into_iter().find(|(level, _)| level == "1");
        // A fully associative cache reports 0 ways: left to the default.
        let number = |dir: &str, f: &str| sysfs_value(dir, f).and_then(|v| v.parse::<usize>().ok()).filter(|&v| v > 0);
        l1.and_then(|(_, dir)| {
            Some(L1Geometry {
                sets: number(&dir, "number_of_sets")?,
                line: number(&dir, "coherency_line_size")?,
                ways: number(&dir, "ways_of_associativity")?,
            })
        })
        .unwrap_or(L1Geometry {
            sets: 64,
            line: 64,
            ways: 8,
        })
    })
}

/// Whether `rows` rows `stride` bytes apart, read side by side, fit in an L1 of geometry `l1`:
/// the lines under the rows' current positions (taken from a line-aligned first row; moving
/// along the rows shifts every line alike) put no more lines in one set than it has ways.
/// Otherwise the rows evict one another at every step.
fn rows_fit_l1_sets(rows: usize, stride: usize, l1: L1Geometry) -> bool {
    if rows <= l1.ways || l1.sets == 0 || l1.line == 0 {
        return true;
    }
    // u128: `rows * stride` may exceed usize for strides no buffer could have (only compared).
    let mut lines: Vec<u128> = (0..rows).map(|r| r as u128 * stride as u128 / l1.line as u128).collect();
    lines.dedup();
    let mut sets: Vec<u128> = lines.iter().map(|l| l % l1.sets as u128).collect();
    sets.sort_unstable();
    let most = sets.chunk_by(|a, b| a == b).map(<[u128]>::len).max().unwrap_or(0);
    most <= l1.ways
}

/// Parses sysfs cache sizes such as `32K`, `1M` or `1024`.
fn parse_size(s: &str) -> Option<usize> {
    let (num, mul) = match s.as_bytes().last()? {
        b'K' => (&s[..s.len() - 1], 1 << 10),
        b'M' => (&s[..s.len() - 1], 1 << 20),
        b'G' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<usize>().ok()?.checked_mul(mul).filter(|&b| b > 0)
}

/// The blocking for tiles of `mr x nr` elements of `elem` bytes on caches of the given sizes.
///
/// Deep blocks measured best on a Zen core (32 KiB L1d, 512 KiB L2), by CPU time on a shared
/// machine, n = 256 to 2048: kc = 1024, mc = 96 reached 88-90 % of the FMA peak where BLIS's
/// L1-sized rule (kc = 256, the B panel in L1) gave 80-87 %: each C tile is then read and written
/// 4x less often, the A panel (6 x kc) stays in L1 and the B panel streams from L2.
pub fn blocking_for(caches: (usize, usize, usize), elem: usize, mr: usize, nr: usize) -> Blocking {
    let (l1, l2, l3) = caches;
    let kc = ((l1 / 4 * 3) / (mr * elem)).clamp(64, 1024) / 8 * 8;
    let mc = ((l2 / 4 * 3) / (kc * elem)).clamp(mr, 1024) / mr * mr;
    let nc = ((l3 / 4) / (kc * elem)).clamp(nr, 4096) / nr * nr;
    Blocking { kc, mc, nc }
}

/// `KILN_GEMM_BLOCKING=kc,mc,nc`, rounded to whole tiles, when set and well formed.
fn blocking_override(mr: usize, nr: usize) -> Option<Blocking> {
    let v = std::env::var("KILN_GEMM_BLOCKING").ok()?;
    let p: Vec<usize> = v.split(',').map(|s| s.trim().parse().ok()).collect::<Option<_>>()?;
    let [kc, mc, nc] = p[..] else { return None };
    (kc > 0 && mc >= mr && nc >= nr).then_some(Blocking {
        kc,
        mc: mc / mr * mr,
        nc: nc / nr * nr,
    })
}

/// The micro-kernel families of kiln's packed product, widest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Isa {
    /// 512-bit vectors (`avx512f`): 12x32 f32 and 12x16 f64 tiles in 24 zmm registers.
    Avx512,
    /// 512-bit vectors with a 6x64 f32 tile (f64 keeps the 12x16 one), also 24 zmm registers.
    /// [`gemm()`] takes it instead of [`Isa::Avx512`] for a row-major A read in place whose twelve
    /// tile rows would fall in more L1 lines per set than the L1 has ways, as at 1024 columns on
    /// an 8-way L1, where the 12-row tile needs A packed.
    Avx512Wide,
    /// 256-bit vectors (`avx2` + `fma`): 6x16 f32 and 6x8 f64 tiles in 12 ymm registers.
    Avx2,
}

impl Isa {
    /// Every family, widest first.
    pub const ALL: [Isa; 3] = [Isa::Avx512, Isa::Avx512Wide, Isa::Avx2];

    /// True when this CPU runs this family's kernels.
    pub fn available(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            match self {
                Isa::Avx512 | Isa::Avx512Wide => avx512::available(),
                Isa::Avx2 => avx2::available(),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    }

    /// The CPU features the family needs, as `is_x86_feature_detected!` names them.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Avx512 | Isa::Avx512Wide => "avx512f",
            Isa::Avx2 => "avx2+fma",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The family [`gemm()`] uses on this CPU: the widest available, or the one `KILN_GEMM_ISA=avx2`
/// (or `avx512`, `avx512wide`) names when the CPU has it (used to compare them on one machine). None when the
/// CPU has neither (then the `gemm` crate runs).
pub fn selected_isa() -> Option<Isa> {
    static ISA: OnceLock<Option<Isa>> = OnceLock::new();
    *ISA.get_or_init(|| {
        let forced = match std::env::var("KILN_GEMM_ISA").as_deref() {
            Ok("avx2") => Some(Isa::Avx2),
            Ok("avx512") => Some(Isa::Avx512),
            Ok("avx512wide") => Some(Isa::Avx512Wide),
            _ => None,
        };
        forced
            .filter(|i| i.available())
            .or_else(|| Isa::ALL.into_iter().find(|i| i.available()))
    })
}

/// An element type the packed product supports (f32 and f64). The hidden items are the per-type
/// kernels, buffers and blocking; they are safe to call (the kernels check their arguments).
pub trait GemmScalar: Float + Send + Sync {
    /// Rows and columns of `isa`'s micro-kernel register tile for this type.
    fn tile(isa: Isa) -> (usize, usize);
    /// `isa`'s micro-kernel over one column of tiles: `C[..mc, ..nr] = alpha * A_block · B_panel
    /// + beta * C` over `kc` steps, A's row `i` at step `p` at
    /// `a[(i / MR) * a_ps + (i % MR) * a_rs + p * a_cs]`, B packed. Panics when the CPU lacks
    /// `isa` or an extent is short.
    #[doc(hidden)]
    #[allow(clippy::too_many_arguments)]
    fn block(
        isa: Isa,
        kc: usize,
        mc: usize,
        a: &[Self],
        a_strides: (usize, usize, usize),
        b: &[Self],
        c: &mut [MaybeUninit<Self>],
        ldc: usize,
        nr: usize,
        alpha: Self,
        beta: Self,
    );
    /// Runs `f` with two scratch buffers of `na` and `nb` elements (64-byte aligned when possible),
    /// reused per thread so that a product allocates nothing after the first call. The cost: each
    /// thread that ran a packed product keeps up to `(mc + nc) * kc` elements (about 9 MB for f32
    /// with the Zen blocking) until it exits.
    #[doc(hidden)]
    fn with_buffers<R>(na: usize, nb: usize, f: impl FnOnce(&mut [Self], &mut [Self]) -> R) -> R;
    /// This type's blocking for `isa`'s tile on this machine.
    fn blocking(isa: Isa) -> Blocking;
    /// Packs `h` rows of a row-major block (row `i` at `src[base + i * rs..][..kc]`) into a panel
    /// of `mr` rows per step with a register transpose, when this type and CPU have one; false
    /// (nothing written) otherwise, and the caller packs element by element.
    #[doc(hidden)]
    #[allow(clippy::too_many_arguments)]
    fn transpose_pack(src: &[Self], base: usize, rs: usize, h: usize, kc: usize, mr: usize, dst: &mut [Self]) -> bool;
    /// Writes the transpose of the `rows x cols` matrix `src` (row `i` at `src[i * lds..]`) into
    /// `dst`, row `j` of the transpose at `dst[j * ldd..]`: through the CPU's register transpose
    /// when this type and CPU have one, element by element in 8x8 tiles otherwise.
    #[doc(hidden)]
    fn transpose_into(src: &[Self], lds: usize, rows: usize, cols: usize, dst: &mut [MaybeUninit<Self>], ldd: usize);
    /// `c[i * ldc + j] = Σ_p a[i * lda + p] · w[j * ldw + p]` (`i < m`, `j < n`, `p < k`): a
    /// product with a row-major A and a transposed, narrow W, as dot products of rows, when this
    /// type and CPU have a kernel for it; false (nothing written) otherwise. Panics when an
    /// operand is too short for its extent.
    #[doc(hidden)]
    #[allow(clippy::too_many_arguments)]
    fn dots(a: &[Self], lda: usize, w: &[Self], ldw: usize, mnk: (usize, usize, usize), c: &mut [MaybeUninit<Self>], ldc: usize) -> bool;
}

/// The sub-slice of `v` of `n` elements starting at a 64-byte boundary (grows `v` as needed).
fn aligned<T: Float>(v: &mut Vec<T>, n: usize) -> &mut [T] {
    let slack = 64 / std::mem::size_of::<T>();
    if v.len() < n + slack {
        v.resize(n + slack, T::zero());
    }
    // `align_offset` may in principle decline (usize::MAX); then an unaligned start is still correct.
    let off = v.as_ptr().align_offset(64).min(slack);
    &mut v[off..off + n]
}

macro_rules! scalar {
    ($t:ty, $tls:ident, $block:ident, avx2: ($mr2:expr, $nr2:expr), avx512: ($mr5:expr, $nr5:expr), wide: ($mrw:expr, $nrw:expr, $blockw:ident), transpose: $tp:expr, transpose_into: $ti:expr, dots: $dots:expr) => {
        thread_local! {
            static $tls: RefCell<(Vec<$t>, Vec<$t>)> = const { RefCell::new((Vec::new(), Vec::new())) };
        }
        impl GemmScalar for $t {
            fn tile(isa: Isa) -> (usize, usize) {
                match isa {
                    Isa::Avx2 => ($mr2, $nr2),
                    Isa::Avx512 => ($mr5, $nr5),
                    Isa::Avx512Wide => ($mrw, $nrw),
                }
            }
            #[allow(clippy::too_many_arguments)]
            fn block(
                isa: Isa,
                kc: usize,
                mc: usize,
                a: &[Self],
                a_strides: (usize, usize, usize),
                b: &[Self],
                c: &mut [MaybeUninit<Self>],
                ldc: usize,
                nr: usize,
                alpha: Self,
                beta: Self,
            ) {
                #[cfg(target_arch = "x86_64")]
                match isa {
                    Isa::Avx2 => avx2::$block(kc, mc, a, a_strides, b, c, ldc, nr, alpha, beta),
                    Isa::Avx512 => avx512::$block(kc, mc, a, a_strides, b, c, ldc, nr, alpha, beta),
                    Isa::Avx512Wide => avx512::$blockw(kc, mc, a, a_strides, b, c, ldc, nr, alpha, beta),
                }
                #[cfg(not(target_arch = "x86_64"))]
                {
                    let _ = (isa, kc, mc, a, a_strides, b, c, ldc, nr, alpha, beta);
                    unreachable!("the packed kernels are only selected on x86-64");
                }
            }
            fn with_buffers<R>(na: usize, nb: usize, f: impl FnOnce(&mut [Self], &mut [Self]) -> R) -> R {
                $tls.with(|cell| match cell.try_borrow_mut() {
                    Ok(mut bufs) => {
                        let (va, vb) = &mut *bufs;
                        f(aligned(va, na), aligned(vb, nb))
                    }
                    // Re-entered on this thread (a rayon worker that picked up another product
                    // while waiting inside this one): use fresh buffers.
                    Err(_) => {
                        let (mut va, mut vb) = (Vec::new(), Vec::new());
                        f(aligned(&mut va, na), aligned(&mut vb, nb))
                    }
                })
            }
            #[allow(clippy::too_many_arguments)]
            fn transpose_pack(src: &[Self], base: usize, rs: usize, h: usize, kc: usize, mr: usize, dst: &mut [Self]) -> bool {
                let tp: fn(&[Self], usize, usize, usize, usize, usize, &mut [Self]) -> bool = $tp;
                tp(src, base, rs, h, kc, mr, dst)
            }
            fn transpose_into(src: &[Self], lds: usize, rows: usize, cols: usize, dst: &mut [MaybeUninit<Self>], ldd: usize) {
                let ti: fn(&[Self], usize, usize, usize, &mut [MaybeUninit<Self>], usize) -> bool = $ti;
                if !ti(src, lds, rows, cols, dst, ldd) {
                    transpose_tiled(src, lds, rows, cols, dst, ldd);
                }
            }
            #[allow(clippy::too_many_arguments)]
            fn dots(
                a: &[Self],
                lda: usize,
                w: &[Self],
                ldw: usize,
                mnk: (usize, usize, usize),
                c: &mut [MaybeUninit<Self>],
                ldc: usize,
            ) -> bool {
                let f: fn(&[Self], usize, &[Self], usize, (usize, usize, usize), &mut [MaybeUninit<Self>], usize) -> bool = $dots;
                f(a, lda, w, ldw, mnk, c, ldc)
            }
            fn blocking(isa: Isa) -> Blocking {
                static B: [OnceLock<Blocking>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
                *B[isa.index()].get_or_init(|| {
                    let (mr, nr) = Self::tile(isa);
                    blocking_override(mr, nr).unwrap_or_else(|| blocking_for(cache_sizes(), std::mem::size_of::<$t>(), mr, nr))
                })
            }
        }
    };
}

/// The element-by-element packing (no register transpose for this type or CPU).
fn no_transpose<T>(_: &[T], _: usize, _: usize, _: usize, _: usize, _: usize, _: &mut [T]) -> bool {
    false
}

/// No register transpose into an output for this type or CPU.
fn no_transpose_into<T>(_: &[T], _: usize, _: usize, _: usize, _: &mut [MaybeUninit<T>], _: usize) -> bool {
    false
}

/// No dot-product kernel for this type or CPU.
fn no_dots<T>(_: &[T], _: usize, _: &[T], _: usize, _: (usize, usize, usize), _: &mut [MaybeUninit<T>], _: usize) -> bool {
    false
}

/// `dst[j * ldd + i] = src[i * lds + j]` element by element, in 8x8 tiles so that the writes of
/// one tile land in eight rows of `dst` and stay in L1.
fn transpose_tiled<T: Copy>(src: &[T], lds: usize, rows: usize, cols: usize, dst: &mut [MaybeUninit<T>], ldd: usize) {
    const TILE: usize = 8;
    for i0 in (0..rows).step_by(TILE) {
        for j0 in (0..cols).step_by(TILE) {
            for i in i0..(i0 + TILE).min(rows) {
                for j in j0..(j0 + TILE).min(cols) {
                    dst[j * ldd + i].write(src[i * lds + j]);
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
scalar!(f32, BUFS_F32, block_f32, avx2: (avx2::MR_F32, avx2::NR_F32), avx512: (avx512::MR_F32, avx512::NR_F32), wide: (avx512::MR_F32_WIDE, avx512::NR_F32_WIDE, block_f32_wide), transpose: avx2::transpose_pack_f32, transpose_into: avx2::transpose_into_f32, dots: dots::dots_f32);
#[cfg(target_arch = "x86_64")]
scalar!(f64, BUFS_F64, block_f64, avx2: (avx2::MR_F64, avx2::NR_F64), avx512: (avx512::MR_F64, avx512::NR_F64), wide: (avx512::MR_F64, avx512::NR_F64, block_f64), transpose: no_transpose, transpose_into: no_transpose_into, dots: no_dots);
#[cfg(not(target_arch = "x86_64"))]
scalar!(f32, BUFS_F32, block_f32, avx2: (6, 16), avx512: (12, 32), wide: (6, 64, block_f32_wide), transpose: no_transpose, transpose_into: no_transpose_into, dots: no_dots);
#[cfg(not(target_arch = "x86_64"))]
scalar!(f64, BUFS_F64, block_f64, avx2: (6, 8), avx512: (12, 16), wide: (12, 16, block_f64), transpose: no_transpose, transpose_into: no_transpose_into, dots: no_dots);

/// True when this CPU runs one of kiln's packed kernels (x86-64 with AVX2 and FMA, or AVX-512);
/// otherwise [`gemm()`] uses the `gemm` crate.
pub fn packed_available() -> bool {
    selected_isa().is_some()
}

/// True when this CPU runs the f32 dot-product kernel of [`GemmScalar::dots`] (x86-64 with AVX2
/// and FMA, or AVX-512).
pub fn dots_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        avx512::available() || avx2::available()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// True on an Intel CPU (CPUID vendor `GenuineIntel`). [`crate::cpu`]'s product dispatch tunes
/// its choice between the packed kernel and the `gemm` crate per CPU family, as measured.
pub fn intel_cpu() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static INTEL: OnceLock<bool> = OnceLock::new();
        *INTEL.get_or_init(|| {
            // Leaf 0: the vendor string, present on every x86-64 CPU.
            let r = std::arch::x86_64::__cpuid(0);
            let mut vendor = [0u8; 12];
            vendor[..4].copy_from_slice(&r.ebx.to_le_bytes());
            vendor[4..8].copy_from_slice(&r.edx.to_le_bytes());
            vendor[8..].copy_from_slice(&r.ecx.to_le_bytes());
            &vendor == b"GenuineIntel"
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// A name for the kernel [`gemm()`] uses on this CPU, for benchmark reports.
pub fn kernel_name<T: GemmScalar>() -> String {
    match selected_isa() {
        Some(isa) => {
            let (mr, nr) = T::tile(isa);
            let b = T::blocking(isa);
            let wide = if isa == Isa::Avx512 && T::tile(Isa::Avx512Wide) != (mr, nr) {
                let (mw, nw) = T::tile(Isa::Avx512Wide);
                format!("; {mw}x{nw} where A's rows alias in L1")
            } else {
                String::new()
            };
            format!("kiln packed {} {mr}x{nr} (kc {}, mc {}, nc {}){wide}", isa.name(), b.kc, b.mc, b.nc)
        }
        None => "gemm crate".to_string(),
    }
}

fn out_of_bounds(which: &str, off: usize, rs: usize, cs: usize, rows: usize, cols: usize, len: usize) -> Error {
    Error::shape(
        "matmul",
        format!("the {which} operand ({rows}x{cols} at offset {off}, strides ({rs}, {cs})) reaches outside its buffer of {len} elements"),
    )
}

/// Checks that A (`m x k`), B (`k x n`) and C (`m x n`, row stride `ldc`, unit column stride)
/// lie inside their buffers.
fn check<T>(m: usize, n: usize, k: usize, a: &MatRef<'_, T>, b: &MatRef<'_, T>, c_len: usize, ldc: usize) -> Result<()> {
    if !a.fits(m, k) {
        return Err(out_of_bounds("left", a.off, a.rs, a.cs, m, k, a.data.len()));
    }
    if !b.fits(k, n) {
        return Err(out_of_bounds("right", b.off, b.rs, b.cs, k, n, b.data.len()));
    }
    if !fits(0, ldc, 1, m, n, c_len) {
        return Err(out_of_bounds("output", 0, ldc, 1, m, n, c_len));
    }
    Ok(())
}

/// `C = alpha · A · B + beta · C` for an `m x k` A and a `k x n` B of any strides, into the
/// row-major C whose row `i` starts at `c[i * ldc]`. With `beta == 0`, C is written without being
/// read (NaNs in it do not propagate), as BLAS does. Up to `threads` rayon threads split the rows.
///
/// Uses kiln's packed kernels where the CPU has them ([`selected_isa`]), the `gemm` crate
/// otherwise. Operands reaching outside their buffers are an error, checked before any
/// unchecked access.
///
/// ```
/// use kiln_core::cpu::gemm::{gemm, MatRef};
/// let a = [1.0f32, 2.0, 3.0, 4.0]; // 2x2, row-major
/// let b = [1.0f32, 0.0, 0.0, 1.0]; // identity, transposed is the same
/// let mut c = [10.0f32; 4];
/// let ar = MatRef { data: &a, off: 0, rs: 2, cs: 1 };
/// let br = MatRef { data: &b, off: 0, rs: 1, cs: 2 };
/// gemm(2, 2, 2, 1.0, ar, br, 1.0, &mut c, 2, 1)?;
/// assert_eq!(c, [11.0, 12.0, 13.0, 14.0]);
/// # Ok::<(), kiln_core::Error>(())
/// ```
#[allow(clippy::too_many_arguments)]
pub fn gemm<T: GemmScalar>(
    m: usize,
    n: usize,
    k: usize,
    alpha: T,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    beta: T,
    c: &mut [T],
    ldc: usize,
    threads: usize,
) -> Result<()> {
    match selected_isa() {
        Some(isa) => checked_packed(tile_for_a(isa, m, n, &a), m, n, k, alpha, a, b, beta, as_uninit(c), ldc, threads),
        None => {
            check(m, n, k, &a, &b, c.len(), ldc)?;
            via_gemm_crate(m, n, k, alpha, a, b, beta, c, ldc, threads);
            Ok(())
        }
    }
}

/// Checks the operands, then runs the packed product of `isa` (nothing to do for an empty C).
#[allow(clippy::too_many_arguments)]
fn checked_packed<T: GemmScalar>(
    isa: Isa,
    m: usize,
    n: usize,
    k: usize,
    alpha: T,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    beta: T,
    c: &mut [MaybeUninit<T>],
    ldc: usize,
    threads: usize,
) -> Result<()> {
    check(m, n, k, &a, &b, c.len(), ldc)?;
    if m > 0 && n > 0 {
        packed(isa, m, n, k, alpha, a, b, beta, c, ldc, threads.max(1));
    }
    Ok(())
}

/// `C = A · B` into a C whose elements may be uninitialised (a fresh output buffer: nothing to
/// zero-fill first), through the packed kernels, which write every element of C without reading
/// it when `beta` is 0. Row `i` of C starts at `c[i * ldc]`. An error when the CPU has no packed
/// kernel ([`packed_available`]) or an operand reaches outside its buffer.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_uninit<T: GemmScalar>(
    m: usize,
    n: usize,
    k: usize,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    c: &mut [MaybeUninit<T>],
    ldc: usize,
    threads: usize,
) -> Result<()> {
    let Some(isa) = selected_isa() else {
        return Err(Error::value("matmul", "this CPU has no packed kernel"));
    };
    check(m, n, k, &a, &b, c.len(), ldc)?;
    if transposed_product_pays(m, n, k, &b) {
        return transposed_product(isa, m, n, k, a, b, c, ldc, threads);
    }
    if m > 0 && n > 0 {
        packed(
            tile_for_a(isa, m, n, &a),
            m,
            n,
            k,
            T::one(),
            a,
            b,
            T::zero(),
            c,
            ldc,
            threads.max(1),
        );
    }
    Ok(())
}

/// Whether `C = A · B` costs less as `Cᵀ = Bᵀ · Aᵀ`, transposed back. With a column-major B (a
/// Linear layer's `Wᵀ`) the product packs B through a transpose, `k x n` elements; the swapped
/// product reads `Bᵀ` (row-major) in place as its A, packs `Aᵀ` (`k x m`, a transpose at most)
/// and transposes the `m x n` result. So it pays when `m (k + n) < k n`: a batch of rows small
/// against both dimensions of the weight. On the Emerald Rapids vCPU (2026-12-02, f32, 1
/// thread, `kiln-bench mlp`, 5 interleaved runs each) W5's forward products took 698-778 us
/// against 794-1,080 (128 x 784 x 512) and 458-519 against 499-748 (128 x 512 x 512).
/// `KILN_GEMM_SWAP=0` turns the swap off (for side-by-side measurement).
fn transposed_product_pays<T>(m: usize, n: usize, k: usize, b: &MatRef<'_, T>) -> bool {
    static OFF: OnceLock<bool> = OnceLock::new();
    let off = *OFF.get_or_init(|| std::env::var("KILN_GEMM_SWAP").is_ok_and(|v| v == "0"));
    let column_major_b = b.rs == 1 && b.cs != 1;
    // Saturating: only compared (the operands were checked to fit their buffers).
    !off && column_major_b && m >= 2 && m.saturating_mul(k.saturating_add(n)) < k.saturating_mul(n)
}

/// `C = A · B` as `Cᵀ = Bᵀ · Aᵀ` into a scratch buffer, transposed into C (operands already
/// checked; beta 0: every element of C is written).
#[allow(clippy::too_many_arguments)]
fn transposed_product<T: GemmScalar>(
    isa: Isa,
    m: usize,
    n: usize,
    k: usize,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    c: &mut [MaybeUninit<T>],
    ldc: usize,
    threads: usize,
) -> Result<()> {
    let bt = MatRef { rs: b.cs, cs: b.rs, ..b };
    let at = MatRef { rs: a.cs, cs: a.rs, ..a };
    // C was checked to hold m rows of ldc >= n elements, so m * n does not overflow.
    let len = m * n;
    let mut ct: Vec<T> = crate::cpu::pool::take(len).map_err(|e| e.at("matmul"))?;
    // The threads split the rows of Cᵀ, which are the weight's rows: each reads its own part of
    // the weight and packs all of Aᵀ (the batch, the smaller operand when the swap pays) for
    // itself. Splitting the batch instead, each thread its own rows of C from all of the weight,
    // was 10 % faster on a product timed alone, but in a training step it left every weight line
    // cached by both cores: the optimiser's update in place then had to take each line back
    // from the other core. Emerald Rapids vCPU, 2026-12-03, W5 on 2 threads (`w5_phases`
    // example, 3 interleaved runs, first quartiles): the update 271-282 us after the batch split
    // (160 when timed alone) and 181-225 after the weight split; the forward 921-988 against
    // 802-1002; the whole step 2,214-2,320 against 2,024-2,467.
    checked_packed(
        tile_for_a(isa, n, m, &bt),
        n,
        m,
        k,
        T::one(),
        bt,
        at,
        T::zero(),
        &mut ct.spare_capacity_mut()[..len],
        m,
        threads,
    )?;
    // SAFETY: the capacity is at least `len` (checked by the slice above), and the packed
    // product with beta 0 wrote every element of the n x m result (row stride m).
    unsafe { ct.set_len(len) };
    // The transpose back, split by rows of C (columns of Cᵀ).
    let nr = T::tile(isa).1;
    let per = m.div_ceil(threads.max(1)).div_ceil(nr) * nr;
    if threads > 1 && per < m {
        row_slabs(c, m, per, ldc)
            .into_par_iter()
            .for_each(|(row, rows, slab)| T::transpose_into(&ct[row..], m, n, rows, slab, ldc));
    } else {
        T::transpose_into(&ct, m, n, m, c, ldc);
    }
    Ok(())
}

/// An initialised slice seen as possibly-uninitialised elements, for the packed kernels' one
/// signature (they never write an uninitialised value into it).
fn as_uninit<T>(c: &mut [T]) -> &mut [MaybeUninit<T>] {
    // SAFETY: `MaybeUninit<T>` has `T`'s layout, the borrow is unique and as long as `c`'s, and
    // every write through it stores an initialised `T`, so `c` stays initialised.
    unsafe { std::slice::from_raw_parts_mut(c.as_mut_ptr().cast::<MaybeUninit<T>>(), c.len()) }
}

/// [`gemm()`] through the packed kernels of one family, for comparing and testing the families on
/// one machine: always that family's tile, where [`gemm()`] may take [`Isa::Avx512Wide`] for
/// [`Isa::Avx512`] (see `tile_for_a`). An error when this CPU lacks `isa`.
#[allow(clippy::too_many_arguments)]
pub fn gemm_with_isa<T: GemmScalar>(
    isa: Isa,
    m: usize,
    n: usize,
    k: usize,
    alpha: T,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    beta: T,
    c: &mut [T],
    ldc: usize,
    threads: usize,
) -> Result<()> {
    if !isa.available() {
        return Err(Error::value(
            "matmul",
            format!("this CPU lacks {} for the packed kernel", isa.name()),
        ));
    }
    checked_packed(isa, m, n, k, alpha, a, b, beta, as_uninit(c), ldc, threads)
}

/// The same product through the `gemm` crate (operands already checked by the caller).
#[allow(clippy::too_many_arguments)]
pub(crate) fn via_gemm_crate<T: GemmScalar>(
    m: usize,
    n: usize,
    k: usize,
    alpha: T,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    beta: T,
    c: &mut [T],
    ldc: usize,
    threads: usize,
) {
    assert!(check(m, n, k, &a, &b, c.len(), ldc).is_ok(), "operands outside their buffers");
    if m == 0 || n == 0 {
        return;
    }
    let par = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: checked just above: every element gemm reads, `a[a.off + i*a.rs + p*a.cs]` and
    // `b[b.off + p*b.rs + j*b.cs]` for i < m, p < k, j < n, lies inside its slice (so the `add`
    // offsets are in bounds too), every element it reads or writes, `c[i*ldc + j]`, lies inside
    // `c`, and all strides fit in isize. `c` is a unique borrow, so nothing aliases it. (gemm's
    // `alpha` scales the destination, its `beta` the product.)
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            ldc as isize,
            beta != T::zero(),
            a.data.as_ptr().add(a.off),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr().add(b.off),
            b.cs as isize,
            b.rs as isize,
            beta,
            alpha,
            false,
            false,
            false,
            par,
        )
    }
}

/// [`Isa::Avx512Wide`] in place of [`Isa::Avx512`] when A would be read in place but the 12-row
/// tile's rows alias in L1 and the 6-row tile's do not: at n = 1024 on the Zen 4 vCPU (8-way L1)
/// the 12-row tile had to pack A, about 3 % of the product, where XLA's YNNPACK kernel (5 x 64)
/// reads A in place. Any other family is returned unchanged.
fn tile_for_a<T: GemmScalar>(isa: Isa, m: usize, n: usize, a: &MatRef<'_, T>) -> Isa {
    if isa != Isa::Avx512 || T::tile(Isa::Avx512Wide) == T::tile(isa) || wide_off() {
        return isa;
    }
    match in_place_row_stride(Isa::Avx512Wide, n, a) {
        Some(stride) if wide_rows_pay(T::tile(isa).0.min(m), T::tile(Isa::Avx512Wide).0.min(m), stride, l1_geometry()) => Isa::Avx512Wide,
        _ => isa,
    }
}

/// The byte distance between A's rows when `packed` may read A in place with `isa`'s tile, for
/// a product with `n` columns: A row-major and B no wider than [`direct_a_max_n`]. Whether it
/// does also depends on the tile's rows fitting L1 (`rows_fit_l1_sets`).
fn in_place_row_stride<T>(isa: Isa, n: usize, a: &MatRef<'_, T>) -> Option<usize> {
    (a.cs == 1 && n <= direct_a_max_n(isa)).then(|| a.rs.saturating_mul(std::mem::size_of::<T>()))
}

/// The widest B (columns) for which the 12 x 32 and AVX2 tiles read a row-major A in place.
const DIRECT_A_MAX_N: usize = 1024;

/// The widest B for which the 6 x 64 tile reads a row-major A in place. That tile is taken only
/// where twelve of A's rows alias in L1 and six do not ([`tile_for_a`]), so past
/// [`DIRECT_A_MAX_N`] the choice is between it in place and the 12 x 32 tile on packed A. On the
/// Zen 4 vCPU (2026-12-03, 1 thread, 4 interleaved rounds of 7) n = 2048 ran at 99-107 GFLOP/s
/// (medians) in place against 95-101 packed, the wide tile on packed A at 96-98; n = 4096 was
/// level (92-97 against 92-100).
const WIDE_DIRECT_A_MAX_N: usize = 4096;

/// Whether `wide` rows a `stride` bytes apart fit the L1's sets where `rows` rows do not.
fn wide_rows_pay(rows: usize, wide: usize, stride: usize, geometry: L1Geometry) -> bool {
    !rows_fit_l1_sets(rows, stride, geometry) && rows_fit_l1_sets(wide, stride, geometry)
}

/// Whether `KILN_GEMM_WIDE=0` keeps the 12-row tile where [`tile_for_a`] would switch (for
/// side-by-side measurement).
fn wide_off() -> bool {
    static OFF: OnceLock<bool> = OnceLock::new();
    *OFF.get_or_init(|| std::env::var("KILN_GEMM_WIDE").is_ok_and(|v| v == "0"))
}

/// The widest B (columns) for which a row-major A is read in place instead of packed by `isa`'s
/// tile: [`DIRECT_A_MAX_N`], or [`WIDE_DIRECT_A_MAX_N`] for the wide tile. `KILN_GEMM_DIRECT_A_MAX_N` overrides
/// both (used to tune and to compare).
fn direct_a_max_n(isa: Isa) -> usize {
    static SET: OnceLock<Option<usize>> = OnceLock::new();
    let set = *SET.get_or_init(|| std::env::var("KILN_GEMM_DIRECT_A_MAX_N").ok().and_then(|v| v.parse().ok()));
    set.unwrap_or(if isa == Isa::Avx512Wide {
        WIDE_DIRECT_A_MAX_N
    } else {
        DIRECT_A_MAX_N
    })
}

/// The packed product, split by rows of C over `threads` threads (operands already checked). C
/// may hold uninitialised elements only when `beta` is 0: then it is written without being read
/// (a later depth block reads what the first one wrote).
///
/// With two or more threads each thread multiplies its own rows of A by B, packing B itself.
/// Exactly `isa`'s tile: the paths that choose the family themselves ([`gemm()`], `gemm_uninit`,
/// `transposed_product`) pass it through `tile_for_a` first.
#[allow(clippy::too_many_arguments)]
fn packed<T: GemmScalar>(
    isa: Isa,
    m: usize,
    n: usize,
    k: usize,
    alpha: T,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    beta: T,
    c: &mut [MaybeUninit<T>],
    ldc: usize,
    threads: usize,
) {
    let (mr, nr) = T::tile(isa);
    if k == 0 {
        // No product: C = beta * C (zero when beta is zero, without reading C).
        for i in 0..m {
            for v in &mut c[i * ldc..i * ldc + n] {
                if beta == T::zero() {
                    v.write(T::zero());
                } else {
                    // SAFETY: C may be uninitialised only when beta is 0 (see `packed`'s doc).
                    let old = unsafe { v.assume_init() };
                    v.write(beta * old);
                }
            }
        }
        return;
    }
    let bl = T::blocking(isa);
    // A row-major A is read in place when B is narrow: packing A costs about one cycle per
    // element, paid once per `nc` columns, and at n <= a few hundred that is 5-25 % of the
    // product. Up to n = 1024 reading in place still measured faster (1 thread, medians of 3
    // interleaved runs on the Zen 5 vCPU; AVX-512 / AVX2 kernel: n = 640 +6 % / +5 %, 768 +1 % /
    // +5 %, 1024 +1 % / +1.5 %); wider B amortises the packing, and packed panels avoid the
    // cache-set conflicts of rows a power-of-two stride apart.
    //
    // Not when the tile's rows alias in L1: at n = 1024 on a Zen 4 vCPU (32 KiB, 8 ways of 4 KiB)
    // the twelve rows of an A tile, 4 KiB apart, fall in one set, and reading them in place ran
    // at 61-70 GFLOP/s against 90-97 packed (1 thread, 2026-12-03, 2 interleaved runs; n = 256,
    // 512, 768 level within 4 %). On 12-way L1s (Zen 5, Emerald Rapids) the twelve rows fit.
    // Where they alias, `tile_for_a` picks the 6-row tile, which reads A in place up to a wider B
    // (`WIDE_DIRECT_A_MAX_N`).
    let direct = in_place_row_stride(isa, n, &a).is_some_and(|stride| rows_fit_l1_sets(mr.min(m), stride, l1_geometry()));
    let kc_max = bl.kc.min(k);
    let kstep = balanced(k, bl.kc, 1);
    let nc_max = bl.nc.min(n.div_ceil(nr) * nr);
    // Rows `row..row + rows` of C (held from row `row` on by `part`) times all of B, on this
    // thread, packing each block of B itself.
    let rows_times_b = |row: usize, rows: usize, part: &mut [MaybeUninit<T>], mc_max: usize| {
        T::with_buffers(mc_max * kc_max, kc_max * nc_max, |pa, pb| {
            for jc in (0..n).step_by(bl.nc) {
                let nc = bl.nc.min(n - jc);
                for pc in (0..k).step_by(kstep) {
                    let kc = kstep.min(k - pc);
                    pack::pack_b(&b, pc, kc, jc, nc, nr, pb);
                    // Later depth blocks add to what the first one wrote.
                    let beta = if pc == 0 { beta } else { T::one() };
                    let blk = Block {
                        isa,
                        pc,
                        kc,
                        jc,
                        nc,
                        alpha,
                        beta,
                        direct,
                    };
                    rows_times_block(&blk, &a, row, rows, pb, part, ldc, pa);
                }
            }
        })
    };
    // Each thread takes whole tiles of rows; fewer than two tiles per thread is not worth a split.
    if threads == 1 || m < 2 * threads * mr {
        return rows_times_b(0, m, c, bl.mc.min(m.div_ceil(mr) * mr));
    }
    let per = m.div_ceil(threads).div_ceil(mr) * mr;
    let mc_max = bl.mc.min(per.div_ceil(mr) * mr);
    // Each thread packs the whole B block for itself and meets the others only at the end.
    // Sharing one packed block met the threads at every depth block, and each then read the half
    // of the block that the other core had just written, out of that core's cache. On the
    // Emerald Rapids vCPU (2026-12-03, 2 threads, 3 runs each, medians of 400 calls) a 256 x 784
    // x 128 product took 292-322 us shared against 243-287 private, where one half alone takes
    // 170; 128 x 784 x 512 with a transposed B (64 rows a thread, so the duplicated pack is
    // largest against the work) 524-699 against 462-464.
    row_slabs(c, m, per, ldc)
        .into_par_iter()
        .for_each(|(row, rows, part)| rows_times_b(row, rows, part, mc_max));
}

/// C split into slabs of `per` rows (the last one shorter), each with its first row and row
/// count; the last slab keeps the tail of `c`, which may be shorter than `rows * ldc`.
fn row_slabs<U>(c: &mut [U], m: usize, per: usize, ldc: usize) -> Vec<(usize, usize, &mut [U])> {
    let mut slabs = Vec::with_capacity(m.div_ceil(per.max(1)));
    let mut rest = c;
    let mut row = 0;
    while row < m {
        let rows = per.min(m - row);
        let take = if row + rows < m { rows * ldc } else { rest.len() };
        let (head, tail) = std::mem::take(&mut rest).split_at_mut(take);
        slabs.push((row, rows, head));
        rest = tail;
        row += rows;
    }
    slabs
}

/// The step that splits `len` into the fewest blocks of at most `max` (a multiple of `unit`), all
/// of one size rounded up to `unit` but the last. A fixed step leaves a short last block: at
/// k = 1024 and kc = 768 a 256-deep one, whose tiles read and write C as often as the 768-deep
/// ones for a third of the work; at m = 1024 and mc = 252 a 16-row one, which streams every B
/// panel from L3 for 16 rows.
///
/// Measured on the Zen 5 vCPU (5 interleaved runs, 1 thread unless noted): W3 n = 1024 +3.6 %,
/// n = 2048 +1.9 %, n = 1500 level; W5 (depth 784: blocks of 392, not 768 and 16) +2 % on one
/// thread and +6 % on two; W3 n = 1024 on two threads +3.4 %.
fn balanced(len: usize, max: usize, unit: usize) -> usize {
    let blocks = len.div_ceil(max).max(1);
    (len.div_ceil(blocks).div_ceil(unit) * unit).clamp(unit, max)
}

/// One packed `kc x nc` block of B (depth `pc..pc + kc`, columns `jc..jc + nc`) and what to do
/// with it.
struct Block<T> {
    isa: Isa,
    pc: usize,
    kc: usize,
    jc: usize,
    nc: usize,
    alpha: T,
    beta: T,
    /// A is row-major and read in place instead of packed.
    direct: bool,
}

/// Rows `row..row + rows` of A times the packed B block into `c` (whose row 0 is C's row `row`):
/// `mc` rows of A at a time, packed into `pa` unless read in place, each times every B panel.
#[allow(clippy::too_many_arguments)]
fn rows_times_block<T: GemmScalar>(
    blk: &Block<T>,
    a: &MatRef<'_, T>,
    row: usize,
    rows: usize,
    pb: &[T],
    c: &mut [MaybeUninit<T>],
    ldc: usize,
    pa: &mut [T],
) {
    let (mr, nr) = T::tile(blk.isa);
    let bl = T::blocking(blk.isa);
    let (pc, kc, jc, nc) = (blk.pc, blk.kc, blk.jc, blk.nc);
    let mstep = balanced(rows, bl.mc, mr);
    for ic in (0..rows).step_by(mstep) {
        let mc = mstep.min(rows - ic);
        if !blk.direct {
            pack::pack_a(a, row + ic, mc, pc, kc, mr, pa);
        }
        for jr in (0..nc).step_by(nr) {
            let w = nr.min(nc - jr);
            let bp = &pb[(jr / nr) * kc * nr..][..kc * nr];
            let cb = &mut c[ic * ldc + jc + jr..];
            if blk.direct {
                // Inside the checked extent of A: row `row + ic`, column pc on.
                let ab = &a.data[a.off + (row + ic) * a.rs + pc..];
                T::block(blk.isa, kc, mc, ab, (mr * a.rs, a.rs, 1), bp, cb, ldc, w, blk.alpha, blk.beta);
            } else {
                T::block(blk.isa, kc, mc, pa, (kc * mr, 1, mr), bp, cb, ldc, w, blk.alpha, blk.beta);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysfs_sizes_parse() {
        assert_eq!(parse_size("32K"), Some(32 << 10));
        assert_eq!(parse_size("32768K"), Some(32 << 20));
        assert_eq!(parse_size("1M"), Some(1 << 20));
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("0K"), None);
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_size(""), None);
    }

    /// The L1 of the Zen 4 vCPU (32 KiB, 8 ways) and of Zen 5 (48 KiB, 12 ways).
    const ZEN4: L1Geometry = L1Geometry {
        sets: 64,
        line: 64,
        ways: 8,
    };
    const ZEN5: L1Geometry = L1Geometry { ways: 12, ..ZEN4 };

    #[test]
    fn the_wide_tile_is_taken_where_twelve_rows_alias_and_six_fit() {
        // f32 rows of 1024 and 2048: twelve in one set, six fit 8 ways.
        assert!(wide_rows_pay(12, 6, 4096, ZEN4));
        assert!(wide_rows_pay(12, 6, 8192, ZEN4));
        // 12 ways hold the twelve; rows of 512 spread over two sets; 8 rows fit either way.
        assert!(!wide_rows_pay(12, 6, 4096, ZEN5));
        assert!(!wide_rows_pay(12, 6, 2048, ZEN4));
        assert!(!wide_rows_pay(8, 6, 4096, ZEN4));
        // A 4-way L1 holds neither.
        assert!(!wide_rows_pay(12, 6, 4096, L1Geometry { ways: 4, ..ZEN4 }));
    }

    #[test]
    fn the_wide_tile_reads_a_in_place_past_the_narrow_bound() {
        if std::env::var_os("KILN_GEMM_DIRECT_A_MAX_N").is_some() {
            return;
        }
        let data = [0f32; 1];
        let rows = |rs: usize| MatRef {
            data: &data,
            off: 0,
            rs,
            cs: 1,
        };
        // n = 2048: the 12-row tile packs A, the wide one reads its rows 8 KiB apart in place.
        assert_eq!(in_place_row_stride(Isa::Avx512, 2048, &rows(2048)), None);
        assert_eq!(in_place_row_stride(Isa::Avx512Wide, 2048, &rows(2048)), Some(8192));
        assert_eq!(in_place_row_stride(Isa::Avx512Wide, 4096, &rows(4096)), Some(16384));
        assert_eq!(in_place_row_stride(Isa::Avx512Wide, 4097, &rows(4097)), None);
        assert_eq!(in_place_row_stride(Isa::Avx512, 1024, &rows(1024)), Some(4096));
        // A column-major A is never read in place.
        let cols = MatRef {
            data: &data,
            off: 0,
            rs: 1,
            cs: 2048,
        };
        assert_eq!(in_place_row_stride(Isa::Avx512Wide, 2048, &cols), None);
    }

    #[test]
    fn tile_rows_alias_in_l1_by_their_stride() {
        // f32 rows of 1024: all twelve in one set; 8 ways cannot hold them, 12 can.
        assert!(!rows_fit_l1_sets(12, 4096, ZEN4));
        assert!(rows_fit_l1_sets(12, 4096, ZEN5));
        assert!(!rows_fit_l1_sets(13, 4096, ZEN5));
        // As few rows as ways always fit.
        assert!(rows_fit_l1_sets(8, 4096, ZEN4));
        // Rows of 512: two sets, six rows each; of 768: four sets; of 1000: all apart.
        assert!(rows_fit_l1_sets(12, 2048, ZEN4));
        assert!(!rows_fit_l1_sets(18, 2048, ZEN4));
        assert!(rows_fit_l1_sets(12, 3072, ZEN4));
        assert!(rows_fit_l1_sets(12, 4000, ZEN4));
        // One element off 1024: the rows start a few bytes apart within a way, so their lines
        // still share one or two sets.
        assert!(!rows_fit_l1_sets(12, 4092, ZEN4));
        assert!(!rows_fit_l1_sets(12, 4100, ZEN4));
        // Whole multiples of the way alias like the way itself, however large; one row, or rows
        // on one line (stride 0), always fit.
        assert!(!rows_fit_l1_sets(12, 8192, ZEN4));
        assert!(!rows_fit_l1_sets(12, 1 << 62, ZEN4));
        assert!(rows_fit_l1_sets(1, 8192, ZEN4));
        assert!(rows_fit_l1_sets(12, 0, ZEN4));
        let l1 = l1_geometry();
        assert!(l1.sets >= 1 && l1.line >= 1 && l1.ways >= 1, "{l1:?}");
    }

    #[test]
    fn intel_detection_agrees_with_the_os() {
        // Linux names the vendor in /proc/cpuinfo; elsewhere there is nothing to compare with.
        let Ok(info) = std::fs::read_to_string("/proc/cpuinfo") else {
            return;
        };
        let Some(vendor) = info.lines().find_map(|l| l.strip_prefix("vendor_id")) else {
            return;
        };
        let vendor = vendor.trim_start_matches([' ', '\t', ':']).trim();
        assert_eq!(intel_cpu(), vendor == "GenuineIntel", "vendor_id {vendor:?}");
    }

    /// Deterministic values in [-1, 1).
    fn values(n: usize, seed: u64) -> Vec<f64> {
        let mut rng = crate::Rng::new(seed);
        (0..n).map(|_| 2.0 * rng.uniform01() - 1.0).collect()
    }

    #[test]
    fn transposes_between_strided_matrices() {
        fn check<T: GemmScalar>(to: fn(f64) -> T) {
            for (rows, cols) in [
                (1, 1),
                (8, 8),
                (16, 24),
                (13, 7),
                (7, 13),
                (4, 9),
                (12, 16),
                (20, 17),
                (33, 130),
                (512, 9),
            ] {
                for lds_extra in [0, 3, 16] {
                    // The source is a window of a wider matrix whose other columns must not leak.
                    let lds = cols + lds_extra;
                    let src: Vec<T> = values((rows - 1) * lds + cols, (rows * 7 + cols) as u64)
                        .into_iter()
                        .map(to)
                        .collect();
                    let ldd = rows + 5;
                    let sentinel = to(12345.0);
                    let mut dst = vec![MaybeUninit::new(sentinel); cols * ldd];
                    T::transpose_into(&src, lds, rows, cols, &mut dst, ldd);
                    for j in 0..cols {
                        for i in 0..ldd {
                            // SAFETY: every slot was initialised with the sentinel before the call.
                            let v = unsafe { dst[j * ldd + i].assume_init() };
                            let want = if i < rows { src[i * lds + j] } else { sentinel };
                            assert!(v == want, "{rows}x{cols}, lds {lds}: ({j}, {i})");
                        }
                    }
                }
            }
        }
        check::<f32>(|v| v as f32);
        check::<f64>(|v| v);
    }

    #[test]
    fn the_swap_is_taken_for_a_few_rows_times_a_transposed_weight() {
        let col_major = |k: usize| MatRef::<f32> {
            data: &[],
            off: 0,
            rs: 1,
            cs: k,
        };
        let row_major = |n: usize| MatRef::<f32> {
            data: &[],
            off: 0,
            rs: n,
            cs: 1,
        };
        // W5's forward products: 128 x 784 x 512 and 128 x 512 x 512 with B = Wᵀ.
        assert!(transposed_product_pays(128, 512, 784, &col_major(784)));
        assert!(transposed_product_pays(128, 512, 512, &col_major(512)));
        // Square products, row-major B, one row, and a batch as large as the weight: no swap.
        assert!(!transposed_product_pays(512, 512, 512, &col_major(512)));
        assert!(!transposed_product_pays(128, 512, 784, &row_major(512)));
        assert!(!transposed_product_pays(1, 512, 784, &col_major(784)));
        assert!(!transposed_product_pays(512, 512, 784, &col_major(784)));
    }

    /// `gemm_uninit` on shapes where the swap pays (and one where it does not), against a naive
    /// f64 reference within the k-term dot product's error bound.
    #[test]
    fn swapped_products_match_the_reference() {
        fn check<T: GemmScalar>(to: fn(f64) -> T, from: fn(T) -> f64, eps: f64) {
            if selected_isa().is_none() {
                return;
            }
            for (m, k, n) in [
                (2, 9, 17),
                (3, 50, 40),
                (13, 97, 61),
                (20, 33, 100),
                (128, 70, 300),
                (37, 800, 530),
                (40, 40, 40),
            ] {
                for a_rows in [true, false] {
                    for threads in [1, 2] {
                        let av = values(m * k, (m * 31 + k) as u64);
                        let bv = values(k * n, (k * 17 + n) as u64);
                        // A row-major or column-major; B column-major (the transposed weight).
                        let abuf: Vec<T> = if a_rows {
                            av.iter().map(|&v| to(v)).collect()
                        } else {
                            (0..m * k).map(|x| to(av[(x % m) * k + x / m])).collect()
                        };
                        let (ars, acs) = if a_rows { (k, 1) } else { (1, m) };
                        let bbuf: Vec<T> = (0..k * n).map(|x| to(bv[(x % k) * n + x / k])).collect();
                        let a = MatRef {
                            data: &abuf,
                            off: 0,
                            rs: ars,
                            cs: acs,
                        };
                        let b = MatRef {
                            data: &bbuf,
                            off: 0,
                            rs: 1,
                            cs: k,
                        };
                        let ldc = n + 3;
                        let sentinel = to(777.0);
                        let mut c = vec![MaybeUninit::new(sentinel); m * ldc];
                        gemm_uninit(m, n, k, a, b, &mut c, ldc, threads).unwrap();
                        for i in 0..m {
                            for j in 0..ldc {
                                // SAFETY: every slot was initialised with the sentinel first.
                                let got = from(unsafe { c[i * ldc + j].assume_init() });
                                if j >= n {
                                    assert_eq!(got, 777.0, "padding ({i}, {j}) written");
                                    continue;
                                }
                                let (mut dot, mut mag) = (0.0, 0.0);
                                for p in 0..k {
                                    let x = from(to(av[i * k + p])) * from(to(bv[p * n + j]));
                                    dot += x;
                                    mag += x.abs();
                                }
                                let tol = (k + 2) as f64 * eps * mag + 1e-30;
                                assert!(
                                    (got - dot).abs() <= tol,
                                    "{m}x{k}x{n} a_rows {a_rows} t {threads} ({i}, {j}): {got} vs {dot}"
                                );
                            }
                        }
                    }
                }
            }
        }
        check::<f32>(|v| v as f32, |v| v as f64, f32::EPSILON as f64);
        check::<f64>(|v| v, |v| v, f64::EPSILON);
    }

    #[test]
    fn blocks_are_balanced() {
        assert_eq!(balanced(1024, 768, 1), 512);
        assert_eq!(balanced(2048, 768, 1), 683);
        assert_eq!(balanced(768, 768, 1), 768);
        assert_eq!(balanced(784, 768, 1), 392);
        // Rows in whole tiles, never past the cap.
        assert_eq!(balanced(1024, 252, 12), 216);
        assert_eq!(balanced(100, 252, 12), 108);
        assert_eq!(balanced(5, 252, 12), 12);
        assert_eq!(balanced(0, 252, 12), 12);
        assert_eq!(balanced(253, 252, 12), 132);
    }

    #[test]
    fn blocking_follows_the_caches() {
        // A Zen core: 32 KiB L1d, 512 KiB L2, 32 MiB L3; the f32 6x16 tile.
        let b = blocking_for((32 << 10, 512 << 10, 32 << 20), 4, 6, 16);
        assert_eq!(
            b,
            Blocking {
                kc: 1024,
                mc: 96,
                nc: 2048
            }
        );
        // f64 on the same core: half the depth for the same bytes.
        let b = blocking_for((32 << 10, 512 << 10, 32 << 20), 8, 6, 8);
        assert_eq!(b, Blocking { kc: 512, mc: 96, nc: 2048 });
        // An Intel core with a 48 KiB L1d and 2 MiB L2 gets taller blocks.
        let b = blocking_for((48 << 10, 2 << 20, 32 << 20), 4, 6, 16);
        assert_eq!(
            b,
            Blocking {
                kc: 1024,
                mc: 384,
                nc: 2048
            }
        );
        // Tiny or missing caches still give whole tiles.
        let b = blocking_for((1, 1, 1), 8, 6, 8);
        assert_eq!(b, Blocking { kc: 64, mc: 6, nc: 8 });
    }
}
