//! NHWC tensor kernels the three networks are built from; nothing here knows a network.
//!
//! Every tensor here is `[batch, height, width, channels]`, the layout the TensorFlow weights
//! were trained in, so a 1×1 convolution is one matmul with the stored `[cin, cout]` filter and
//! a k×k convolution is an im2col followed by one matmul.
//!
//! On the CPU the ops run direct kernels: candle custom ops, multi-threaded with rayon over
//! output rows or chunks of values, whose arithmetic is on plain slices beside them. On any
//! other device the same ops fall back to plain candle expressions (shifted slices,
//! `index_select`, `broadcast_mul`), which are slower but correct everywhere. Each file holds
//! an op's CPU kernel and its fallback side by side. Depthwise convolutions never go through
//! candle's grouped conv, which runs one conv per channel. Matmuls are candle's, except the
//! fused separable convolution's, which calls gemm on its tiles.
//!
//! - `window.rs`: TensorFlow padding ([`Padding`], [`tf_pad`]), the sliding [`Window`], and the
//!   strided taps the fallbacks are built from.
//! - `conv.rs`: [`im2col`], [`conv2d`] (im2col + one matmul) and `matmul_into`, gemm called
//!   on slices (the fused separable convolution's matmul).
//! - `depthwise.rs`: [`depthwise_conv2d`], the 3×3 depthwise convolution with its bias and
//!   activation fused.
//! - `elementwise.rs`: [`bias_act`], `act(y + x)` and `act(x)`, with in-place variants for
//!   fresh layer outputs.
//! - `output.rs`: a layer's output buffer, zeroed and filled chunk by chunk in parallel.
//! - `pool.rs`: [`max_pool`] and [`avg_pool`].
//! - `separable.rs`: [`Separable`], depthwise then pointwise convolution, fused on the CPU.
//! - `inverted_residual.rs`: [`InvertedResidual`], expansion, depthwise and projection (and
//!   the residual add), fused on the CPU.
//!
//! This file holds what they share: [`Act`], the f32 slice accessors of CPU storage and the
//! run-time choice between the baseline and AVX-512 builds of the slice kernels.

use candle_core::{CpuStorage, Layout, Result, Tensor, bail};

/// Defines `pub fn $name` running `$body` compiled with AVX-512 + FMA when the CPU has them,
/// and `fn $baseline`, the same body for the baseline instruction set, which `$name` runs
/// otherwise. The body sees `$fma`: whether its build has fused multiply-adds.
///
/// Each slice kernel is written once, as loops over a pixel's contiguous channels that the
/// compiler vectorises, and compiled twice this way: the AVX-512 build does 16 floats per
/// instruction instead of 4, with fused multiply-adds. Both give the same results up to float
/// rounding.
macro_rules! with_avx512 {
    (
        $(#[$doc:meta])*
        pub fn $name:ident / $baseline:ident<const $fma:ident: bool>(
            $($arg:ident: $ty:ty),* $(,)?
        ) $body:block
    ) => {
        $(#[$doc])*
        pub fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,fma")]
            fn avx512($($arg: $ty),*) {
                $baseline::<true>($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            if $crate::kernels::has_avx512() {
                // SAFETY: `avx512` only needs AVX-512F and FMA, which the CPU was just checked
                // to have.
                #[allow(unsafe_code)]
                unsafe {
                    avx512($($arg),*);
                }
                return;
            }
            $baseline::<false>($($arg),*)
        }

        #[inline(always)]
        fn $baseline<const $fma: bool>($($arg: $ty),*) $body
    };
}

mod conv;
mod conv_pointwise;
mod depthwise;
mod elementwise;
mod inverted_residual;
mod output;
mod pool;
mod scratch;
mod separable;
mod window;

pub use conv::{conv2d, im2col};
pub use conv_pointwise::ConvPointwise;
pub use depthwise::depthwise_conv2d;
pub use elementwise::bias_act;
pub(crate) use elementwise::{act, add_act_owned, bias_act_owned};
pub use inverted_residual::InvertedResidual;
pub use pool::{avg_pool, max_pool};
pub use separable::{Separable, Stage};
pub use window::{Padding, Window, tf_pad};

/// Activation fused after a bias add.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Act {
    None,
    Relu,
    Relu6,
}

impl Act {
    /// Applies the activation to every value (one loop per kind, so each vectorises).
    #[inline(always)]
    pub(crate) fn apply_slice(self, values: &mut [f32]) {
        match self {
            Act::None => {}
            Act::Relu => values.iter_mut().for_each(|v| *v = v.max(0.0)),
            Act::Relu6 => values.iter_mut().for_each(|v| *v = v.clamp(0.0, 6.0)),
        }
    }

    /// The activation as a candle expression (the fallback on other devices).
    fn apply_tensor(self, x: Tensor) -> Result<Tensor> {
        match self {
            Act::None => Ok(x),
            Act::Relu => x.relu(),
            Act::Relu6 => x.clamp(0f32, 6f32),
        }
    }
}

/// Values per parallel chunk of the element-wise kernels.
const PAR_CHUNK: usize = 64 * 1024;

/// The values of a contiguous f32 CPU tensor.
fn cpu_f32<'a>(storage: &'a CpuStorage, layout: &Layout, what: &str) -> Result<&'a [f32]> {
    let data = storage.as_slice::<f32>()?;
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => bail!("{what}: input must be contiguous"),
    }
}

/// The values of a contiguous f32 CPU tensor, for an in-place op.
fn cpu_f32_mut<'a>(
    storage: &'a mut CpuStorage,
    layout: &Layout,
    what: &str,
) -> Result<&'a mut [f32]> {
    let Some((start, end)) = layout.contiguous_offsets() else {
        bail!("{what}: input must be contiguous");
    };
    let CpuStorage::F32(data) = storage else {
        bail!("{what}: input must be f32");
    };
    Ok(&mut data[start..end])
}

/// Whether the AVX-512 + FMA builds of the kernels run on this CPU (std caches the answer).
#[cfg(target_arch = "x86_64")]
fn has_avx512() -> bool {
    std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("fma")
}

/// `a + s·t`, fused into one rounding when the build has FMA.
#[inline(always)]
fn madd<const FMA: bool>(a: f32, s: f32, t: f32) -> f32 {
    if FMA { s.mul_add(t, a) } else { a + s * t }
}

/// Inputs and comparisons shared by the kernels' unit tests.
#[cfg(test)]
mod testing {
    use candle_core::{Device, Tensor};

    /// A CPU tensor of `shape` with values spread over `[-1, 1)`.
    pub fn seq(shape: &[usize]) -> Tensor {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n)
            .map(|i| ((i * 37 % 101) as f32) / 50.0 - 1.0)
            .collect();
        Tensor::from_vec(v, shape, &Device::Cpu).expect("tensor")
    }

    /// `n` values spread over `[-1, 1)`, different for each `seed`.
    pub fn values(n: usize, seed: usize) -> Vec<f32> {
        (0..n)
            .map(|i| (((i + seed) * 7919 % 1013) as f32) / 506.5 - 1.0)
            .collect()
    }

    /// A CPU tensor of `shape` filled with [`values`]`(n, seed)`.
    pub fn tensor(shape: &[usize], seed: usize) -> Tensor {
        let n = shape.iter().product();
        Tensor::from_vec(values(n, seed), shape, &Device::Cpu).expect("tensor")
    }

    /// The largest absolute value of a tensor.
    pub fn max_abs(t: &Tensor) -> f32 {
        t.abs()
            .and_then(|d| d.flatten_all())
            .and_then(|d| d.max(0))
            .and_then(|d| d.to_scalar::<f32>())
            .expect("max")
    }

    /// The largest absolute difference between two tensors of one shape.
    pub fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .and_then(|d| d.abs())
            .and_then(|d| d.flatten_all())
            .and_then(|d| d.max(0))
            .and_then(|d| d.to_scalar::<f32>())
            .expect("diff")
    }
}
