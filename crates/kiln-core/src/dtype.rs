//! Runtime dtypes and the element traits the CPU kernels are generic over.

use std::fmt;

/// The element type of a tensor, chosen at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    /// 32-bit float.
    F32,
    /// 64-bit float.
    F64,
    /// 64-bit signed integer, used for indices.
    I64,
    /// Byte, used as the boolean mask type (0 or 1).
    U8,
    /// IEEE 754 binary16 half-precision float (`torch.float16`). Kernels compute in f32 and round
    /// each op's result once, as PyTorch's CPU kernels do.
    F16,
    /// bfloat16, the upper half of an f32 (`torch.bfloat16`). Computed like [`DType::F16`].
    BF16,
}

impl DType {
    /// Every dtype, for tests and tables that walk them all.
    pub const ALL: [DType; 6] = [DType::F16, DType::BF16, DType::F32, DType::F64, DType::I64, DType::U8];

    /// True for the floating-point dtypes (f16, bf16, f32, f64): the dtypes gradients flow through.
    pub fn is_float(self) -> bool {
        matches!(self, DType::F16 | DType::BF16 | DType::F32 | DType::F64)
    }
    /// True for the 16-bit floats, which kiln stores narrow but computes on in f32.
    pub fn is_half(self) -> bool {
        matches!(self, DType::F16 | DType::BF16)
    }
    /// Size of one element in bytes.
    pub fn size_in_bytes(self) -> usize {
        match self {
            DType::U8 => 1,
            DType::F16 | DType::BF16 => 2,
            DType::F32 => 4,
            DType::F64 | DType::I64 => 8,
        }
    }
    /// kiln's short name (`f16`, `bf16`, `f32`, `f64`, `i64`, `u8`), used in errors and display.
    pub fn as_str(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F64 => "f64",
            DType::I64 => "i64",
            DType::U8 => "u8",
            DType::F16 => "f16",
            DType::BF16 => "bf16",
        }
    }
    /// The name PyTorch gives the dtype, without the `torch.` prefix (`float16`, `bfloat16`,
    /// `float32`, `float64`, `int64`, `uint8`).
    pub fn torch_name(self) -> &'static str {
        match self {
            DType::F32 => "float32",
            DType::F64 => "float64",
            DType::I64 => "int64",
            DType::U8 => "uint8",
            DType::F16 => "float16",
            DType::BF16 => "bfloat16",
        }
    }
    /// The dtype of the result of an elementwise op on `a` and `b`, as `torch.promote_types`:
    /// the same dtype stays, a float beats an integer, the wider of two floats (or of two
    /// integers) wins, and f16 with bf16 gives f32 because neither holds the other's values.
    pub fn promote_types(a: DType, b: DType) -> DType {
        use DType::*;
        if a == b {
            return a;
        }
        match (a, b) {
            (F16, BF16) | (BF16, F16) => F32,
            (x, y) if x.is_float() && y.is_float() => {
                if x.size_in_bytes() >= y.size_in_bytes() {
                    x
                } else {
                    y
                }
            }
            (x, _) if x.is_float() => x,
            (_, y) if y.is_float() => y,
            // Two different integer dtypes: only u8 and i64 exist, and i64 holds every u8.
            _ => I64,
        }
    }
}

impl std::str::FromStr for DType {
    type Err = crate::Error;
    /// Parses kiln's short names (`bf16`), PyTorch's names with or without the `torch.` prefix
    /// (`torch.bfloat16`, `float16`, and the aliases `half`, `float`, `double`, `long`), and
    /// safetensors' upper-case tags (`BF16`, `F16`, `F32`, `F64`, `I64`, `U8`).
    fn from_str(s: &str) -> crate::Result<DType> {
        let name = s.strip_prefix("torch.").unwrap_or(s);
        Ok(match name.to_ascii_lowercase().as_str() {
            "f16" | "float16" | "half" => DType::F16,
            "bf16" | "bfloat16" => DType::BF16,
            "f32" | "float32" | "float" => DType::F32,
            "f64" | "float64" | "double" => DType::F64,
            "i64" | "int64" | "long" => DType::I64,
            "u8" | "uint8" => DType::U8,
            _ => return Err(crate::Error::value("dtype", format!("unknown dtype name `{s}`"))),
        })
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A Rust type that can live in a tensor.
pub trait Element: Copy + Send + Sync + Default + PartialOrd + PartialEq + fmt::Debug + fmt::Display + 'static {
    /// The runtime tag of this type.
    const DTYPE: DType;
    /// Lossy conversion used for casts and display.
    fn to_f64(self) -> f64;
    /// Lossy conversion used for casts and scalar arguments.
    fn from_f64(v: f64) -> Self;
    /// The additive identity.
    fn zero() -> Self;
    /// The multiplicative identity.
    fn one() -> Self;
}

/// Floating-point element: the math the kernels need, implemented for f32, f64, f16 and bf16
/// (the 16-bit ones widen to f32 for each function and round the result once).
#[allow(missing_docs)]
pub trait Float:
    Element
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Div<Output = Self>
    + std::ops::Neg<Output = Self>
    + std::ops::AddAssign
    + std::iter::Sum
{
    fn exp(self) -> Self;
    fn ln(self) -> Self;
    fn ln_1p(self) -> Self;
    fn sqrt(self) -> Self;
    fn sin(self) -> Self;
    fn cos(self) -> Self;
    fn tanh(self) -> Self;
    fn abs(self) -> Self;
    fn powf(self, e: Self) -> Self;
    fn erf(self) -> Self;
    /// `exp_m1` of the primitive float type.
    fn exp_m1(self) -> Self;
    /// `log2` of the primitive float type.
    fn log2(self) -> Self;
    /// `log10` of the primitive float type.
    fn log10(self) -> Self;
    /// `tan` of the primitive float type.
    fn tan(self) -> Self;
    /// `asin` of the primitive float type.
    fn asin(self) -> Self;
    /// `acos` of the primitive float type.
    fn acos(self) -> Self;
    /// `atan` of the primitive float type.
    fn atan(self) -> Self;
    /// `sinh` of the primitive float type.
    fn sinh(self) -> Self;
    /// `cosh` of the primitive float type.
    fn cosh(self) -> Self;
    /// `asinh` of the primitive float type.
    fn asinh(self) -> Self;
    /// `acosh` of the primitive float type.
    fn acosh(self) -> Self;
    /// `atanh` of the primitive float type.
    fn atanh(self) -> Self;
    /// `floor` of the primitive float type.
    fn floor(self) -> Self;
    /// `ceil` of the primitive float type.
    fn ceil(self) -> Self;
    /// `round_ties_even` of the primitive float type.
    fn round_ties_even(self) -> Self;
    /// `trunc` of the primitive float type.
    fn trunc(self) -> Self;
    /// Four-quadrant arctangent of `self / o`.
    fn atan2(self, o: Self) -> Self;
    /// Whether the value is NaN.
    fn is_nan_val(self) -> bool;
    fn is_finite(self) -> bool;
    /// The larger of two values; NaN propagates, as in PyTorch's maximum.
    #[inline(always)]
    fn max_val(self, o: Self) -> Self {
        if self.is_nan_val() || self > o {
            self
        } else {
            o
        }
    }
    /// The smaller of two values; NaN propagates, as in PyTorch's minimum.
    #[inline(always)]
    fn min_val(self, o: Self) -> Self {
        if self.is_nan_val() || self < o {
            self
        } else {
            o
        }
    }
    const NEG_INFINITY: Self;
    const INFINITY: Self;
}

macro_rules! impl_element {
    ($t:ty, $d:expr, $zero:expr, $one:expr) => {
        impl Element for $t {
            const DTYPE: DType = $d;
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            #[inline(always)]
            fn zero() -> Self {
                $zero
            }
            #[inline(always)]
            fn one() -> Self {
                $one
            }
        }
    };
}
impl_element!(f32, DType::F32, 0.0, 1.0);
impl_element!(f64, DType::F64, 0.0, 1.0);
impl_element!(i64, DType::I64, 0, 1);
impl_element!(u8, DType::U8, 0, 1);

macro_rules! impl_float {
    ($t:ty, $erf:path) => {
        impl Float for $t {
            #[inline(always)]
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            #[inline(always)]
            fn ln(self) -> Self {
                <$t>::ln(self)
            }
            #[inline(always)]
            fn ln_1p(self) -> Self {
                <$t>::ln_1p(self)
            }
            #[inline(always)]
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            #[inline(always)]
            fn sin(self) -> Self {
                <$t>::sin(self)
            }
            #[inline(always)]
            fn cos(self) -> Self {
                <$t>::cos(self)
            }
            #[inline(always)]
            fn tanh(self) -> Self {
                <$t>::tanh(self)
            }
            #[inline(always)]
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            #[inline(always)]
            fn powf(self, e: Self) -> Self {
                <$t>::powf(self, e)
            }
            #[inline(always)]
            fn exp_m1(self) -> Self {
                <$t>::exp_m1(self)
            }
            #[inline(always)]
            fn log2(self) -> Self {
                <$t>::log2(self)
            }
            #[inline(always)]
            fn log10(self) -> Self {
                <$t>::log10(self)
            }
            #[inline(always)]
            fn tan(self) -> Self {
                <$t>::tan(self)
            }
            #[inline(always)]
            fn asin(self) -> Self {
                <$t>::asin(self)
            }
            #[inline(always)]
            fn acos(self) -> Self {
                <$t>::acos(self)
            }
            #[inline(always)]
            fn atan(self) -> Self {
                <$t>::atan(self)
            }
            #[inline(always)]
            fn sinh(self) -> Self {
                <$t>::sinh(self)
            }
            #[inline(always)]
            fn cosh(self) -> Self {
                <$t>::cosh(self)
            }
            #[inline(always)]
            fn asinh(self) -> Self {
                <$t>::asinh(self)
            }
            #[inline(always)]
            fn acosh(self) -> Self {
                <$t>::acosh(self)
            }
            #[inline(always)]
            fn atanh(self) -> Self {
                <$t>::atanh(self)
            }
            #[inline(always)]
            fn floor(self) -> Self {
                <$t>::floor(self)
            }
            #[inline(always)]
            fn ceil(self) -> Self {
                <$t>::ceil(self)
            }
            #[inline(always)]
            fn round_ties_even(self) -> Self {
                <$t>::round_ties_even(self)
            }
            #[inline(always)]
            fn trunc(self) -> Self {
                <$t>::trunc(self)
            }
            #[inline(always)]
            fn atan2(self, o: Self) -> Self {
                <$t>::atan2(self, o)
            }
            #[inline(always)]
            fn is_nan_val(self) -> bool {
                <$t>::is_nan(self)
            }
            #[inline(always)]
            fn erf(self) -> Self {
                $erf(self)
            }
            #[inline(always)]
            fn is_finite(self) -> bool {
                <$t>::is_finite(self)
            }
            const NEG_INFINITY: Self = <$t>::NEG_INFINITY;
            const INFINITY: Self = <$t>::INFINITY;
        }
    };
}
impl_float!(f32, libm::erff);
impl_float!(f64, libm::erf);

/// Rounds an f64 to f16 through f32, as PyTorch converts (`c10::Half(float(x))`): a value just
/// past an f16 rounding midpoint by less than an f32 ulp rounds as the midpoint itself does.
/// half's own `f16::from_f64` rounds once where the CPU lacks F16C and through f32 where it has
/// it, so it is not used: results must not depend on the machine.
#[inline(always)]
pub(crate) fn f16_from_f64(v: f64) -> half::f16 {
    half::f16::from_f32(v as f32)
}

/// Rounds an f64 to bf16 through f32, as PyTorch does (see [`f16_from_f64`]).
#[inline(always)]
pub(crate) fn bf16_from_f64(v: f64) -> half::bf16 {
    half::bf16::from_f32(v as f32)
}

macro_rules! impl_half {
    ($t:ty, $d:expr, $from64:path) => {
        impl Element for $t {
            const DTYPE: DType = $d;
            #[inline(always)]
            fn to_f64(self) -> f64 {
                <$t>::to_f64(self)
            }
            #[inline(always)]
            fn from_f64(v: f64) -> Self {
                $from64(v)
            }
            #[inline(always)]
            fn zero() -> Self {
                <$t>::ZERO
            }
            #[inline(always)]
            fn one() -> Self {
                <$t>::ONE
            }
        }

        impl Float for $t {
            #[inline(always)]
            fn exp(self) -> Self {
                <$t>::from_f32(self.to_f32().exp())
            }
            #[inline(always)]
            fn ln(self) -> Self {
                <$t>::from_f32(self.to_f32().ln())
            }
            #[inline(always)]
            fn ln_1p(self) -> Self {
                <$t>::from_f32(self.to_f32().ln_1p())
            }
            #[inline(always)]
            fn sqrt(self) -> Self {
                <$t>::from_f32(self.to_f32().sqrt())
            }
            #[inline(always)]
            fn sin(self) -> Self {
                <$t>::from_f32(self.to_f32().sin())
            }
            #[inline(always)]
            fn cos(self) -> Self {
                <$t>::from_f32(self.to_f32().cos())
            }
            #[inline(always)]
            fn tanh(self) -> Self {
                <$t>::from_f32(self.to_f32().tanh())
            }
            #[inline(always)]
            fn abs(self) -> Self {
                <$t>::from_f32(self.to_f32().abs())
            }
            #[inline(always)]
            fn powf(self, e: Self) -> Self {
                <$t>::from_f32(self.to_f32().powf(e.to_f32()))
            }
            #[inline(always)]
            fn erf(self) -> Self {
                <$t>::from_f32(libm::erff(self.to_f32()))
            }
            #[inline(always)]
            fn exp_m1(self) -> Self {
                <$t>::from_f32(self.to_f32().exp_m1())
            }
            #[inline(always)]
            fn log2(self) -> Self {
                <$t>::from_f32(self.to_f32().log2())
            }
            #[inline(always)]
            fn log10(self) -> Self {
                <$t>::from_f32(self.to_f32().log10())
            }
            #[inline(always)]
            fn tan(self) -> Self {
                <$t>::from_f32(self.to_f32().tan())
            }
            #[inline(always)]
            fn asin(self) -> Self {
                <$t>::from_f32(self.to_f32().asin())
            }
            #[inline(always)]
            fn acos(self) -> Self {
                <$t>::from_f32(self.to_f32().acos())
            }
            #[inline(always)]
            fn atan(self) -> Self {
                <$t>::from_f32(self.to_f32().atan())
            }
            #[inline(always)]
            fn sinh(self) -> Self {
                <$t>::from_f32(self.to_f32().sinh())
            }
            #[inline(always)]
            fn cosh(self) -> Self {
                <$t>::from_f32(self.to_f32().cosh())
            }
            #[inline(always)]
            fn asinh(self) -> Self {
                <$t>::from_f32(self.to_f32().asinh())
            }
            #[inline(always)]
            fn acosh(self) -> Self {
                <$t>::from_f32(self.to_f32().acosh())
            }
            #[inline(always)]
            fn atanh(self) -> Self {
                <$t>::from_f32(self.to_f32().atanh())
            }
            #[inline(always)]
            fn floor(self) -> Self {
                <$t>::from_f32(self.to_f32().floor())
            }
            #[inline(always)]
            fn ceil(self) -> Self {
                <$t>::from_f32(self.to_f32().ceil())
            }
            #[inline(always)]
            fn round_ties_even(self) -> Self {
                <$t>::from_f32(self.to_f32().round_ties_even())
            }
            #[inline(always)]
            fn trunc(self) -> Self {
                <$t>::from_f32(self.to_f32().trunc())
            }
            #[inline(always)]
            fn atan2(self, o: Self) -> Self {
                <$t>::from_f32(self.to_f32().atan2(o.to_f32()))
            }
            #[inline(always)]
            fn is_nan_val(self) -> bool {
                <$t>::is_nan(self)
            }
            #[inline(always)]
            fn is_finite(self) -> bool {
                <$t>::is_finite(self)
            }
            const NEG_INFINITY: Self = <$t>::NEG_INFINITY;
            const INFINITY: Self = <$t>::INFINITY;
        }
    };
}
impl_half!(half::f16, DType::F16, f16_from_f64);
impl_half!(half::bf16, DType::BF16, bf16_from_f64);
