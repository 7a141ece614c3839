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
}

impl DType {
    /// True for f32 and f64: the dtypes gradients flow through.
    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64)
    }
    /// Size of one element in bytes.
    pub fn size_in_bytes(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F64 | DType::I64 => 8,
            DType::U8 => 1,
        }
    }
    /// Lower-case name as PyTorch prints it (`float32`, `int64`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F64 => "f64",
            DType::I64 => "i64",
            DType::U8 => "u8",
        }
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

/// Floating-point element: the math the kernels need, implemented for f32 and f64.
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
    fn max_val(self, o: Self) -> Self;
    fn min_val(self, o: Self) -> Self;
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
            #[inline(always)]
            fn max_val(self, o: Self) -> Self {
                // NaN propagates, as in PyTorch's maximum.
                if self.is_nan() || self > o {
                    self
                } else {
                    o
                }
            }
            #[inline(always)]
            fn min_val(self, o: Self) -> Self {
                if self.is_nan() || self < o {
                    self
                } else {
                    o
                }
            }
            const NEG_INFINITY: Self = <$t>::NEG_INFINITY;
            const INFINITY: Self = <$t>::INFINITY;
        }
    };
}
impl_float!(f32, libm::erff);
impl_float!(f64, libm::erf);
