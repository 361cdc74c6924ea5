//! The arithmetic of the direct CPU kernels, on plain slices: the 3×3 depthwise convolution
//! with its bias and activation fused, and bias + activation alone.
//!
//! Each kernel is written once, as loops over a pixel's contiguous channels that the compiler
//! vectorises, and compiled twice: for the baseline instruction set and for AVX-512 with FMA.
//! The AVX-512 build is chosen at run time when the CPU has it (16 floats per instruction
//! instead of 4, and fused multiply-adds). Both give the same results up to float rounding.

use super::ops::{Act, Window};

/// Whether the AVX-512 + FMA builds of the kernels run on this CPU (std caches the answer).
#[cfg(target_arch = "x86_64")]
fn has_avx512() -> bool {
    std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("fma")
}

/// Channels per register-held accumulator block (one AVX-512 vector).
const LANES: usize = 16;

/// Defines `pub fn $name` running `$body` compiled with AVX-512 + FMA when the CPU has them,
/// and `fn $baseline`, the same body for the baseline instruction set, which `$name` runs
/// otherwise. The body sees `$fma`: whether its build has fused multiply-adds.
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
            if has_avx512() {
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

/// `a + s·t`, fused into one rounding when the build has FMA.
#[inline(always)]
fn madd<const FMA: bool>(a: f32, s: f32, t: f32) -> f32 {
    if FMA { s.mul_add(t, a) } else { a + s * t }
}

/// One depthwise convolution over an NHWC input `[B, h, w, c]`.
#[derive(Clone, Copy)]
pub struct Depthwise<'a> {
    pub x: &'a [f32],
    /// `[kh, kw, c]`.
    pub filter: &'a [f32],
    /// `[c]`.
    pub bias: &'a [f32],
    pub act: Act,
    pub h: usize,
    pub w: usize,
    pub c: usize,
    pub win: Window,
}

with_avx512! {
    /// Output row `oy` of image `bi` of a depthwise convolution into `dst` (`wo * c` floats).
    pub fn depthwise_row / depthwise_row_with<const FMA: bool>(
        kernel: &Depthwise<'_>,
        bi: usize,
        oy: usize,
        dst: &mut [f32],
    ) {
        kernel.row_with::<FMA>(bi, oy, dst);
    }
}

impl Depthwise<'_> {
    /// Output row `oy` of image `bi` into `dst` (`wo * c` floats).
    pub fn row(&self, bi: usize, oy: usize, dst: &mut [f32]) {
        depthwise_row(self, bi, oy, dst);
    }

    #[inline(always)]
    fn row_with<const FMA: bool>(&self, bi: usize, oy: usize, dst: &mut [f32]) {
        let Self {
            x, h, w, c, win, ..
        } = *self;
        // The input rows under this output row, with their tap row.
        let rows: Vec<(usize, &[f32])> = (0..win.kh)
            .filter_map(|ky| {
                let iy = win.src_y(oy, ky, h)?;
                Some((ky, &x[(bi * h + iy) * w * c..(bi * h + iy + 1) * w * c]))
            })
            .collect();
        // Output columns whose whole window lies inside the image need no checks.
        let first = win.left.div_ceil(win.stride);
        let end = (w + win.left)
            .checked_sub(win.kw)
            .map_or(0, |span| span / win.stride + 1);
        for (ox, out) in dst.chunks_exact_mut(c).enumerate() {
            if (first..end).contains(&ox) {
                self.interior_pixel::<FMA>(&rows, (ox * win.stride - win.left) * c, out);
            } else {
                self.border_pixel::<FMA>(&rows, ox, out);
            }
        }
    }

    /// One output pixel whose taps all lie inside the image; `start` is the offset of its
    /// first tap column in each input row.
    #[inline(always)]
    fn interior_pixel<const FMA: bool>(
        &self,
        rows: &[(usize, &[f32])],
        start: usize,
        out: &mut [f32],
    ) {
        let mut ch = 0;
        while ch + 4 * LANES <= self.c {
            self.interior_channels::<FMA, { 4 * LANES }>(rows, start, ch, out);
            ch += 4 * LANES;
        }
        while ch + LANES <= self.c {
            self.interior_channels::<FMA, LANES>(rows, start, ch, out);
            ch += LANES;
        }
        while ch < self.c {
            self.interior_channels::<FMA, 1>(rows, start, ch, out);
            ch += 1;
        }
    }

    /// Channels `ch..ch + N` of an interior pixel, accumulated in registers over all taps
    /// (`N / LANES` independent vector accumulators).
    #[inline(always)]
    fn interior_channels<const FMA: bool, const N: usize>(
        &self,
        rows: &[(usize, &[f32])],
        start: usize,
        ch: usize,
        out: &mut [f32],
    ) {
        let Self {
            filter,
            bias,
            act,
            c,
            win,
            ..
        } = *self;
        let mut acc = [0f32; N];
        acc.copy_from_slice(&bias[ch..ch + N]);
        for &(ky, row) in rows {
            for kx in 0..win.kw {
                let s = start + kx * c + ch;
                let f = (ky * win.kw + kx) * c + ch;
                let (s, t) = (&row[s..s + N], &filter[f..f + N]);
                for i in 0..N {
                    acc[i] = madd::<FMA>(acc[i], s[i], t[i]);
                }
            }
        }
        act.apply_slice(&mut acc);
        out[ch..ch + N].copy_from_slice(&acc);
    }

    /// One output pixel at the left or right edge: taps in the padding are skipped.
    #[inline(always)]
    fn border_pixel<const FMA: bool>(&self, rows: &[(usize, &[f32])], ox: usize, out: &mut [f32]) {
        let Self {
            filter,
            bias,
            act,
            w,
            c,
            win,
            ..
        } = *self;
        out.copy_from_slice(bias);
        for &(ky, row) in rows {
            for kx in 0..win.kw {
                let Some(ix) = win.src_x(ox, kx, w) else {
                    continue;
                };
                let src = &row[ix * c..(ix + 1) * c];
                let taps = &filter[(ky * win.kw + kx) * c..(ky * win.kw + kx + 1) * c];
                for ((a, &s), &t) in out.iter_mut().zip(src).zip(taps) {
                    *a = madd::<FMA>(*a, s, t);
                }
            }
        }
        act.apply_slice(out);
    }
}

with_avx512! {
    /// `v = act(v + bias)` over pixels of `bias.len()` channels.
    pub fn bias_act_in_place / bias_act_baseline<const FMA: bool>(data: &mut [f32], bias: &[f32], act: Act) {
        for px in data.chunks_exact_mut(bias.len()) {
            for (v, &b) in px.iter_mut().zip(bias) {
                *v += b;
            }
            act.apply_slice(px);
        }
    }
}

with_avx512! {
    /// `v = act(v + o)` over pairs of values.
    pub fn add_act_in_place / add_act_baseline<const FMA: bool>(data: &mut [f32], other: &[f32], act: Act) {
        for (v, &o) in data.iter_mut().zip(other) {
            *v += o;
        }
        act.apply_slice(data);
    }
}

with_avx512! {
    /// `v = act(v)` over every value.
    pub fn act_in_place / act_baseline<const FMA: bool>(data: &mut [f32], act: Act) {
        act.apply_slice(data);
    }
}

/// Max or average pooling (VALID) over an NHWC input `[B, h, w, c]`.
#[derive(Clone, Copy)]
pub struct Pool<'a> {
    pub x: &'a [f32],
    pub h: usize,
    pub w: usize,
    pub c: usize,
    pub k: usize,
    pub stride: usize,
    pub max: bool,
}

with_avx512! {
    /// Output row `oy` of image `bi` of a pooling into `dst` (`wo * c` floats).
    pub fn pool_row / pool_row_with<const FMA: bool>(
        kernel: &Pool<'_>,
        bi: usize,
        oy: usize,
        dst: &mut [f32],
    ) {
        kernel.row_with(bi, oy, dst);
    }
}

impl Pool<'_> {
    /// Output row `oy` of image `bi` into `dst` (`wo * c` floats).
    pub fn row(&self, bi: usize, oy: usize, dst: &mut [f32]) {
        pool_row(self, bi, oy, dst);
    }

    /// Taps are visited row by row, left to right; the average multiplies the sum by `1/k²`.
    #[inline(always)]
    fn row_with(&self, bi: usize, oy: usize, dst: &mut [f32]) {
        let Self {
            x,
            h,
            w,
            c,
            k,
            stride,
            max,
        } = *self;
        let scale = (1.0 / (k * k) as f64) as f32;
        for (ox, out) in dst.chunks_exact_mut(c).enumerate() {
            for ky in 0..k {
                let row = (bi * h + oy * stride + ky) * w;
                for kx in 0..k {
                    let at = (row + ox * stride + kx) * c;
                    let src = &x[at..at + c];
                    if ky == 0 && kx == 0 {
                        out.copy_from_slice(src);
                    } else if max {
                        for (o, &v) in out.iter_mut().zip(src) {
                            *o = o.max(v);
                        }
                    } else {
                        for (o, &v) in out.iter_mut().zip(src) {
                            *o += v;
                        }
                    }
                }
            }
            if !max {
                out.iter_mut().for_each(|o| *o *= scale);
            }
        }
    }
}

/// `dst += a · b` on the calling thread, for row-major `a` `[m, k]`, `b` `[k, n]` and `dst`
/// `[m, n]` (gemm's kernels, AVX-512 when the CPU has it).
pub fn matmul_add(
    a: &[f32],
    b: &[f32],
    dst: &mut [f32],
    (m, k, n): (usize, usize, usize),
) -> candle_core::Result<()> {
    let sizes = (m.checked_mul(k), k.checked_mul(n), m.checked_mul(n));
    if sizes != (Some(a.len()), Some(b.len()), Some(dst.len())) {
        candle_core::bail!(
            "matmul: [{m}, {k}] x [{k}, {n}] does not fit buffers of {}, {} and {}",
            a.len(),
            b.len(),
            dst.len()
        );
    }
    let (Ok(k_stride), Ok(n_stride)) = (isize::try_from(k), isize::try_from(n)) else {
        candle_core::bail!("matmul: [{m}, {k}] x [{k}, {n}] is too large");
    };
    // SAFETY: the three buffers were just checked to hold exactly `m·k`, `k·n` and `m·n`
    // values, which is what gemm reads and writes with these row-major strides (column
    // stride 1, row strides `k`, `n` and `n`); `dst` is borrowed mutably, so it overlaps
    // neither input.
    #[allow(unsafe_code)]
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n_stride,
            true,
            a.as_ptr(),
            1,
            k_stride,
            b.as_ptr(),
            1,
            n_stride,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::ops::Padding;

    fn values(n: usize, seed: usize) -> Vec<f32> {
        (0..n)
            .map(|i| (((i + seed) * 7919 % 1013) as f32) / 506.5 - 1.0)
            .collect()
    }

    /// The baseline build of each kernel (what CPUs without AVX-512 run) gives the values of
    /// the build this CPU picks.
    #[test]
    fn baseline_builds_match_the_dispatched_ones() {
        let (b, h, w, c) = (2, 7, 9, 88);
        let x = values(b * h * w * c, 1);
        let filter = values(9 * c, 2);
        let bias = values(c, 3);
        for stride in [1, 2] {
            let win = Window::new(h, w, 3, 3, stride, Padding::Same);
            let (ho, wo) = win.out_hw(h, w).expect("fits");
            let kernel = Depthwise {
                x: &x,
                filter: &filter,
                bias: &bias,
                act: Act::Relu6,
                h,
                w,
                c,
                win,
            };
            for row in 0..b * ho {
                let (mut fast, mut base) = (vec![0f32; wo * c], vec![0f32; wo * c]);
                kernel.row(row / ho, row % ho, &mut fast);
                kernel.row_with::<false>(row / ho, row % ho, &mut base);
                for (a, e) in fast.iter().zip(&base) {
                    assert!((a - e).abs() < 1e-5, "depthwise stride {stride} row {row}");
                }
            }
        }
        let pool = Pool {
            x: &x,
            h,
            w,
            c,
            k: 3,
            stride: 2,
            max: false,
        };
        let (mut fast, mut base) = (vec![0f32; 4 * c], vec![0f32; 4 * c]);
        pool.row(1, 2, &mut fast);
        pool.row_with(1, 2, &mut base);
        assert_eq!(fast, base);
        let (mut fast, mut base) = (x.clone(), x.clone());
        add_act_in_place(&mut fast, &filter, Act::Relu);
        add_act_baseline::<false>(&mut base[..filter.len()], &filter, Act::Relu);
        assert_eq!(fast[..filter.len()], base[..filter.len()]);
        let (mut fast, mut base) = (x.clone(), x.clone());
        bias_act_in_place(&mut fast, &bias, Act::Relu6);
        bias_act_baseline::<false>(&mut base, &bias, Act::Relu6);
        assert_eq!(fast, base);
    }

    #[test]
    fn matmul_add_accumulates_into_dst() {
        let (m, k, n) = (37, 19, 23);
        let a: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32 - 3.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i % 5) as f32 * 0.5).collect();
        let mut dst: Vec<f32> = (0..m * n).map(|i| i as f32).collect();
        matmul_add(&a, &b, &mut dst, (m, k, n)).expect("matmul");
        for i in 0..m {
            for j in 0..n {
                let want =
                    (i * n + j) as f32 + (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum::<f32>();
                assert!((dst[i * n + j] - want).abs() < 1e-3, "({i}, {j})");
            }
        }
        assert!(matmul_add(&a, &b, &mut dst[1..], (m, k, n)).is_err());
    }
}
