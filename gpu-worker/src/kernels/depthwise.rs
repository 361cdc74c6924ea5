//! The 3×3 depthwise convolution (channel multiplier 1) with its bias and activation fused:
//! the candle op, its CPU kernel on slices (also the first half of the fused separable
//! convolution), and the device-generic fallback.

use candle_core::{CpuStorage, CustomOp3, Device, Layout, Result, Shape, Tensor, bail};

use super::{
    Act, cpu_f32,
    elementwise::bias_act,
    madd,
    output::par_filled,
    window::{Window, pad_nhwc, tap},
};

/// Channels per register-held accumulator block (one AVX-512 vector).
const LANES: usize = 16;

struct DepthwiseBiasAct(Window, Act);

impl CustomOp3 for DepthwiseBiasAct {
    fn name(&self) -> &'static str {
        "depthwise-bias-act-nhwc"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (b, h, w, c) = l1.shape().dims4()?;
        let (win, act) = (self.0, self.1);
        let kernel = Depthwise {
            x: cpu_f32(s1, l1, "depthwise input")?,
            filter: cpu_f32(s2, l2, "depthwise filter")?,
            bias: cpu_f32(s3, l3, "depthwise bias")?,
            act,
            h,
            w,
            c,
            win,
        };
        let (ho, wo) = win.out_hw(h, w)?;
        let out = par_filled(b * ho * wo * c, wo * c, |row, dst| {
            kernel.row(row / ho, row % ho, dst);
            Ok(())
        })?;
        Ok((CpuStorage::F32(out), Shape::from((b, ho, wo, c))))
    }
}

/// `act(depthwise(x, filter) + bias)`: depthwise convolution (channel multiplier 1) of NHWC `x`
/// with a `[kh, kw, C]` filter, then a `[C]` bias and an activation, in one pass on the CPU.
pub fn depthwise_conv2d(
    x: &Tensor,
    filter: &Tensor,
    bias: &Tensor,
    act: Act,
    win: Window,
) -> Result<Tensor> {
    let (_, h, w, c) = x.dims4()?;
    let (kh, kw, fc) = filter.dims3()?;
    if (kh, kw, fc) != (win.kh, win.kw, c) {
        bail!(
            "depthwise: filter {kh}x{kw}x{fc} does not match window {}x{}x{c}",
            win.kh,
            win.kw
        );
    }
    if bias.dims() != [c] {
        bail!(
            "depthwise: bias {:?} does not match {c} channels",
            bias.dims()
        );
    }
    if matches!(x.device(), Device::Cpu) {
        return x.contiguous()?.apply_op3_no_bwd(
            &filter.contiguous()?,
            &bias.contiguous()?,
            &DepthwiseBiasAct(win, act),
        );
    }
    let (ho, wo) = win.out_hw(h, w)?;
    let xp = pad_nhwc(x, &win)?;
    let mut acc: Option<Tensor> = None;
    for ky in 0..kh {
        for kx in 0..kw {
            let weight = filter.get(ky)?.get(kx)?; // [C], broadcast over the last dim
            let term = tap(&xp, ky, kx, win.stride, ho, wo)?.broadcast_mul(&weight)?;
            acc = Some(match acc {
                None => term,
                Some(a) => (a + term)?,
            });
        }
    }
    match acc {
        Some(a) => bias_act(&a, bias, act),
        None => bail!("depthwise: empty filter"),
    }
}

/// One depthwise convolution over an NHWC input `[B, h, w, c]`, on slices.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::{
        Padding,
        testing::{max_diff, seq, values},
    };

    /// The CPU kernel agrees with the device-generic expression used on CUDA.
    #[test]
    fn cpu_depthwise_matches_generic_path() {
        // 88 channels: one 64-wide block, one 16-wide block and 8 single channels.
        let c = 88;
        let x = seq(&[2, 9, 8, c]);
        let dw = seq(&[3, 3, c]);
        let dw_bias = seq(&[c]);
        for (stride, padding) in [
            (1, Padding::Same),
            (2, Padding::Same),
            (2, Padding::Valid),
            (2, Padding::Explicit(1)),
        ] {
            let win = Window::new(9, 8, 3, 3, stride, padding);
            let (ho, wo) = win.out_hw(9, 8).expect("fits");
            let fast = depthwise_conv2d(&x, &dw, &dw_bias, Act::Relu6, win).expect("fast");
            let xp = pad_nhwc(&x, &win).expect("pad");
            let mut slow = Tensor::zeros((2, ho, wo, c), candle_core::DType::F32, &Device::Cpu)
                .expect("zeros");
            for ky in 0..3 {
                for kx in 0..3 {
                    let wt = dw.get(ky).and_then(|t| t.get(kx)).expect("tap");
                    let t = tap(&xp, ky, kx, stride, ho, wo).expect("tap");
                    slow = (slow + t.broadcast_mul(&wt).expect("mul")).expect("add");
                }
            }
            let slow = slow
                .broadcast_add(&dw_bias)
                .and_then(|t| t.clamp(0f32, 6f32))
                .expect("bias");
            assert!(max_diff(&fast, &slow) < 1e-5, "depthwise stride {stride}");
        }
    }

    /// The baseline build of the kernel (what CPUs without AVX-512 run) gives the values of
    /// the build this CPU picks.
    #[test]
    fn baseline_build_matches_the_dispatched_one() {
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
    }
}
