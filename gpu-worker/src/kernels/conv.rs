//! Convolution as im2col + one matmul: the im2col op (a direct CPU kernel, shifted slices
//! elsewhere), [`conv2d`] on top of it, and [`matmul_into`], gemm on plain slices for the
//! fused separable convolution.

use candle_core::{CpuStorage, CustomOp1, Device, Layout, Result, Shape, Tensor, bail};

use super::{
    cpu_f32,
    output::par_filled,
    window::{Window, pad_nhwc, tap},
};

struct Im2Col(Window);

impl CustomOp1 for Im2Col {
    fn name(&self) -> &'static str {
        "im2col-nhwc"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = cpu_f32(storage, layout, "im2col")?;
        let (b, h, w, c) = layout.shape().dims4()?;
        let win = self.0;
        let (ho, wo) = win.out_hw(h, w)?;
        let k = win.kh * win.kw * c;
        let out = par_filled(b * ho * wo * k, wo * k, |row, dst| {
            patch_row(x, (h, w, c), &win, (row / ho, row % ho), dst);
            Ok(())
        })?;
        Ok((CpuStorage::F32(out), Shape::from((b, ho, wo, k))))
    }
}

/// The patches of output row `oy` of image `bi` of NHWC `x` (`[B, h, w, c]`) into `dst`
/// (`wo · kh·kw·c` values, tap-major and channel-minor like an HWIO filter). Taps in the
/// padding are not written: `dst` must hold zeros.
pub(super) fn patch_row(
    x: &[f32],
    (h, w, c): (usize, usize, usize),
    win: &Window,
    (bi, oy): (usize, usize),
    dst: &mut [f32],
) {
    let k = win.kh * win.kw * c;
    let wo = dst.len() / k.max(1);
    for ky in 0..win.kh {
        let Some(iy) = win.src_y(oy, ky, h) else {
            continue;
        };
        let src_row = &x[(bi * h + iy) * w * c..(bi * h + iy + 1) * w * c];
        for ox in 0..wo {
            for kx in 0..win.kw {
                if let Some(ix) = win.src_x(ox, kx, w) {
                    let d = ox * k + (ky * win.kw + kx) * c;
                    dst[d..d + c].copy_from_slice(&src_row[ix * c..(ix + 1) * c]);
                }
            }
        }
    }
}

/// Patches `[B, ho, wo, kh*kw*C]` (tap-major, channel-minor, like an HWIO filter).
pub fn im2col(x: &Tensor, win: Window) -> Result<Tensor> {
    let x = x.contiguous()?;
    if matches!(x.device(), Device::Cpu) {
        return x.apply_op1_no_bwd(&Im2Col(win));
    }
    let (_, h, w, _) = x.dims4()?;
    let (ho, wo) = win.out_hw(h, w)?;
    let xp = pad_nhwc(&x, &win)?;
    let mut taps = Vec::with_capacity(win.kh * win.kw);
    for ky in 0..win.kh {
        for kx in 0..win.kw {
            taps.push(tap(&xp, ky, kx, win.stride, ho, wo)?);
        }
    }
    Tensor::cat(&taps, 3)
}

/// Convolution of NHWC `x` with a filter flattened to `[kh*kw*cin, cout]` (HWIO order).
pub fn conv2d(x: &Tensor, filter: &Tensor, win: Window) -> Result<Tensor> {
    let (b, h, w, c) = x.dims4()?;
    let (k, cout) = filter.dims2()?;
    if k != win.kh * win.kw * c {
        bail!(
            "conv2d: filter has {k} rows, expected {}x{}x{c}",
            win.kh,
            win.kw
        );
    }
    let (ho, wo) = win.out_hw(h, w)?;
    let is_pointwise = win.kh == 1 && win.kw == 1 && win.stride == 1 && (ho, wo) == (h, w);
    let cols = if is_pointwise {
        x.contiguous()?
    } else {
        im2col(x, win)?
    };
    cols.reshape((b * ho * wo, k))?
        .matmul(filter)?
        .reshape((b, ho, wo, cout))
}

/// `dst = a · b` on the calling thread (what `dst` held is ignored), for row-major `a`
/// `[m, k]`, `b` `[k, n]` and `dst` `[m, n]` (gemm's kernels, AVX-512 when the CPU has it).
pub fn matmul_into(
    a: &[f32],
    b: &[f32],
    dst: &mut [f32],
    (m, k, n): (usize, usize, usize),
) -> Result<()> {
    let sizes = (m.checked_mul(k), k.checked_mul(n), m.checked_mul(n));
    if sizes != (Some(a.len()), Some(b.len()), Some(dst.len())) {
        bail!(
            "matmul: [{m}, {k}] x [{k}, {n}] does not fit buffers of {}, {} and {}",
            a.len(),
            b.len(),
            dst.len()
        );
    }
    let (Ok(k_stride), Ok(n_stride)) = (isize::try_from(k), isize::try_from(n)) else {
        bail!("matmul: [{m}, {k}] x [{k}, {n}] is too large");
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
            false, // dst is written, not read
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
    use crate::kernels::{
        Padding,
        testing::{max_diff, seq},
    };

    /// The CPU im2col gives exactly the device-generic taps used on CUDA.
    #[test]
    fn cpu_im2col_matches_generic_path() {
        // 88 channels: one 64-wide block, one 16-wide block and 8 single channels.
        let c = 88;
        let x = seq(&[2, 9, 8, c]);
        for (stride, padding) in [(1, Padding::Same), (2, Padding::Same), (2, Padding::Valid)] {
            let win = Window::new(9, 8, 3, 3, stride, padding);
            let (ho, wo) = win.out_hw(9, 8).expect("fits");
            let xp = pad_nhwc(&x, &win).expect("pad");
            let cols = im2col(&x, win).expect("im2col");
            let mut taps = vec![];
            for ky in 0..3 {
                for kx in 0..3 {
                    taps.push(tap(&xp, ky, kx, stride, ho, wo).expect("tap"));
                }
            }
            let generic = Tensor::cat(&taps, 3).expect("cat");
            assert_eq!(max_diff(&cols, &generic), 0.0, "im2col stride {stride}");
        }
    }

    #[test]
    fn matmul_into_overwrites_dst() {
        let (m, k, n) = (37, 19, 23);
        let a: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32 - 3.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i % 5) as f32 * 0.5).collect();
        let mut dst: Vec<f32> = (0..m * n).map(|i| i as f32).collect();
        matmul_into(&a, &b, &mut dst, (m, k, n)).expect("matmul");
        for i in 0..m {
            for j in 0..n {
                let want = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum::<f32>();
                assert!((dst[i * n + j] - want).abs() < 1e-3, "({i}, {j})");
            }
        }
        assert!(matmul_into(&a, &b, &mut dst[1..], (m, k, n)).is_err());
    }
}
