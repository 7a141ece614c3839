//! The machine's physical limit for the dense kernels: f32 FMA throughput from registers only (no
//! memory traffic), per ISA the CPU has, on `threads` threads at once. Benchmarks quote their
//! GFLOP/s as a fraction of this figure measured in the same run.
//!
//! Twelve independent accumulators per thread cover the FMA latency times the number of FMA ports
//! on current x86 cores (4 cycles × 2 ports, with margin); each FMA is 2 flops per lane; the best
//! of five repetitions is the ceiling.

use std::time::Instant;

const ITERS: u64 = 50_000_000;

/// Best GFLOP/s of five runs of `kernel` on `threads` threads at once.
fn best_of_five(threads: usize, lanes: u64, kernel: fn() -> f32) -> f64 {
    let mut best = 0.0f64;
    for _ in 0..5 {
        let t0 = Instant::now();
        let handles: Vec<_> = (0..threads).map(|_| std::thread::spawn(kernel)).collect();
        for h in handles {
            std::hint::black_box(h.join().unwrap_or(0.0));
        }
        let secs = t0.elapsed().as_secs_f64();
        best = best.max(2.0 * lanes as f64 * 12.0 * ITERS as f64 * threads as f64 / secs / 1e9);
    }
    best
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::ITERS;
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx2,fma")]
    fn fma256() -> f32 {
        let a = _mm256_set1_ps(0.999_999);
        let b = _mm256_set1_ps(1e-7);
        let mut acc = [_mm256_set1_ps(0.0); 12];
        for (i, x) in acc.iter_mut().enumerate() {
            *x = _mm256_set1_ps(i as f32 * 1e-3);
        }
        for _ in 0..ITERS {
            for x in acc.iter_mut() {
                *x = _mm256_fmadd_ps(*x, a, b);
            }
        }
        let mut s = acc[0];
        for x in &acc[1..] {
            s = _mm256_add_ps(s, *x);
        }
        let mut out = [0.0f32; 8];
        // SAFETY: `out` holds 8 floats, what an unaligned 256-bit store writes.
        unsafe { _mm256_storeu_ps(out.as_mut_ptr(), s) };
        out[0]
    }

    #[target_feature(enable = "avx512f")]
    fn fma512() -> f32 {
        let a = _mm512_set1_ps(0.999_999);
        let b = _mm512_set1_ps(1e-7);
        let mut acc = [_mm512_set1_ps(0.0); 12];
        for (i, x) in acc.iter_mut().enumerate() {
            *x = _mm512_set1_ps(i as f32 * 1e-3);
        }
        for _ in 0..ITERS {
            for x in acc.iter_mut() {
                *x = _mm512_fmadd_ps(*x, a, b);
            }
        }
        let mut s = acc[0];
        for x in &acc[1..] {
            s = _mm512_add_ps(s, *x);
        }
        _mm512_reduce_add_ps(s)
    }

    pub fn avx2() -> f32 {
        // SAFETY: only called after `is_x86_feature_detected!("avx2")` and `("fma")`.
        unsafe { fma256() }
    }

    pub fn avx512() -> f32 {
        // SAFETY: only called after `is_x86_feature_detected!("avx512f")`.
        unsafe { fma512() }
    }
}

/// Prints `W3-peak fma-avx2|fma-avx512 <threads> gflops <value>` for each ISA the CPU has, and an
/// `isa` note naming what it found.
pub fn peak(threads: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        let mut isa = Vec::new();
        for (name, on) in [
            ("avx2", std::arch::is_x86_feature_detected!("avx2")),
            ("fma", std::arch::is_x86_feature_detected!("fma")),
            ("avx512f", std::arch::is_x86_feature_detected!("avx512f")),
            ("avx512bf16", std::arch::is_x86_feature_detected!("avx512bf16")),
        ] {
            if on {
                isa.push(name);
            }
        }
        // AMX detection is not stable in std; /proc/cpuinfo's flags name it where present.
        let amx = std::fs::read_to_string("/proc/cpuinfo").is_ok_and(|c| c.contains(" amx_tile"));
        if amx {
            isa.push("amx-tile");
        }
        println!("# isa {}", isa.join(" "));
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            super::emit_as("W3-peak", "fma-avx2", threads, "gflops", best_of_five(threads, 8, x86::avx2));
        }
        if std::arch::is_x86_feature_detected!("avx512f") {
            super::emit_as("W3-peak", "fma-avx512", threads, "gflops", best_of_five(threads, 16, x86::avx512));
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (threads, best_of_five);
        println!("# isa: no FMA probe for this architecture");
    }
}
