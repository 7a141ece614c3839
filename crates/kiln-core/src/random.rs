//! A small seedable generator (SplitMix64): the same seed gives the same numbers on every machine,
//! and it matches the generator the shared benchmark scripts use for data and initial weights.

use crate::{DType, Error, Result, Shape, Tensor};

/// SplitMix64 pseudo-random generator.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
    spare_normal: Option<f64>,
}

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Rng {
            state: seed,
            spare_normal: None,
        }
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `[0, 1)` with 53 random bits.
    pub fn uniform01(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
    /// Uniform in `[lo, hi)`.
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform01()
    }
    /// Standard normal (Box–Muller, both values of each pair used).
    pub fn normal(&mut self) -> f64 {
        if let Some(v) = self.spare_normal.take() {
            return v;
        }
        let u1 = 1.0 - self.uniform01(); // in (0, 1], so ln is finite
        let u2 = self.uniform01();
        let r = (-2.0 * u1.ln()).sqrt();
        let (s, c) = (2.0 * std::f64::consts::PI * u2).sin_cos();
        self.spare_normal = Some(r * s);
        r * c
    }
    /// Uniform integer in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    /// Fisher–Yates shuffle, in the same order as the benchmark scripts.
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = (self.next_u64() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}

/// The f64 staging buffer for `shape`'s draws: the shape (in f64 and in `dtype`) must not
/// overflow and the allocation must succeed, else an error naming `op`.
fn draw_buffer(shape: &Shape, dtype: DType, op: &'static str) -> Result<Vec<f64>> {
    shape.checked_elem_count_for(dtype.size_in_bytes(), op)?;
    let n = shape.checked_elem_count_for(DType::F64.size_in_bytes(), op)?;
    crate::cpu::pool::try_with_capacity(n).map_err(|e| e.at(op))
}

impl Tensor {
    /// Uniform values in `[lo, hi)` drawn row-major from `rng`.
    pub fn rand(shape: impl Into<Shape>, lo: f64, hi: f64, dtype: DType, rng: &mut Rng) -> Result<Tensor> {
        let shape = shape.into();
        let mut v = draw_buffer(&shape, dtype, "rand")?;
        v.extend((0..shape.elem_count()).map(|_| rng.uniform(lo, hi)));
        Tensor::from_vec(v, shape)?.to_dtype(dtype)
    }
    /// Normal values with the given mean and standard deviation.
    pub fn randn(shape: impl Into<Shape>, mean: f64, std: f64, dtype: DType, rng: &mut Rng) -> Result<Tensor> {
        let shape = shape.into();
        let mut v = draw_buffer(&shape, dtype, "randn")?;
        v.extend((0..shape.elem_count()).map(|_| mean + std * rng.normal()));
        Tensor::from_vec(v, shape)?.to_dtype(dtype)
    }
}

/// Weights and biases `(W [fan_in, fan_out], b [fan_out])` of an MLP with PyTorch's default Linear
/// range `±1/sqrt(fan_in)`, drawn from one SplitMix64 stream in the order the shared benchmark
/// scripts use (each layer's W row-major, then its b), so kiln starts from their exact weights.
pub fn init_mlp(sizes: &[usize], seed: u64) -> Result<Vec<(Tensor, Tensor)>> {
    let mut rng = Rng::new(seed);
    let mut layers = Vec::new();
    for w in sizes.windows(2) {
        let (fan_in, fan_out) = (w[0], w[1]);
        let bound = 1.0 / (fan_in as f64).sqrt();
        // Sizes are the caller's: the product is checked and the buffer reserved fallibly.
        let mut draw = |n: usize| -> Result<Vec<f32>> {
            let mut v: Vec<f32> = crate::cpu::pool::try_with_capacity(n).map_err(|e| e.at("init_mlp"))?;
            v.extend((0..n).map(|_| ((2.0 * rng.uniform01() - 1.0) * bound) as f32));
            Ok(v)
        };
        let n = fan_in
            .checked_mul(fan_out)
            .ok_or_else(|| Error::shape("init_mlp", format!("a {fan_in} x {fan_out} weight overflows")))?;
        let wt = Tensor::from_vec(draw(n)?, [fan_in, fan_out])?;
        let b = Tensor::from_vec(draw(fan_out)?, [fan_out])?;
        layers.push((wt, b));
    }
    Ok(layers)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn splitmix_reference_values() {
        // First outputs of SplitMix64 seeded with 0 (the published reference sequence).
        let mut r = Rng::new(0);
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    }
}
