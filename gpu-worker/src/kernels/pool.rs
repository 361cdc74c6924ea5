//! Max and average pooling (VALID) over NHWC: the candle op, its CPU kernel on slices and the
//! device-generic fallback.

use candle_core::{CpuStorage, CustomOp1, Device, Layout, Result, Shape, Tensor, bail};

use super::{
    cpu_f32,
    output::par_filled,
    window::{Padding, Window, tap},
};

/// Max pooling (VALID) over NHWC.
pub fn max_pool(x: &Tensor, k: usize, stride: usize) -> Result<Tensor> {
    pool(x, k, stride, true)
}

/// Average pooling (VALID, divides by k²) over NHWC.
pub fn avg_pool(x: &Tensor, k: usize, stride: usize) -> Result<Tensor> {
    pool(x, k, stride, false)
}

struct PoolOp {
    k: usize,
    stride: usize,
    max: bool,
}

impl CustomOp1 for PoolOp {
    fn name(&self) -> &'static str {
        "pool-nhwc"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (b, h, w, c) = layout.shape().dims4()?;
        let win = Window::new(h, w, self.k, self.k, self.stride, Padding::Valid);
        let (ho, wo) = win.out_hw(h, w)?;
        let kernel = Pool {
            x: cpu_f32(storage, layout, "pool input")?,
            h,
            w,
            c,
            k: self.k,
            stride: self.stride,
            max: self.max,
        };
        let out = par_filled(b * ho * wo * c, wo * c, |row, dst| {
            kernel.row(row / ho, row % ho, dst);
            Ok(())
        })?;
        Ok((CpuStorage::F32(out), Shape::from((b, ho, wo, c))))
    }
}

fn pool(x: &Tensor, k: usize, stride: usize, max: bool) -> Result<Tensor> {
    if k == 0 {
        bail!("pool: empty window");
    }
    let (_, h, w, _) = x.dims4()?;
    let win = Window::new(h, w, k, k, stride, Padding::Valid);
    let (ho, wo) = win.out_hw(h, w)?;
    if matches!(x.device(), Device::Cpu) {
        return x.contiguous()?.apply_op1_no_bwd(&PoolOp { k, stride, max });
    }
    let mut acc: Option<Tensor> = None;
    for ky in 0..k {
        for kx in 0..k {
            let t = tap(x, ky, kx, stride, ho, wo)?;
            acc = Some(match acc {
                None => t,
                Some(a) if max => a.maximum(&t)?,
                Some(a) => (a + t)?,
            });
        }
    }
    match acc {
        Some(a) if max => Ok(a),
        Some(a) => a / (k * k) as f64,
        None => bail!("pool: empty window"),
    }
}

/// Max or average pooling (VALID) over an NHWC input `[B, h, w, c]`, on slices.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testing::{max_diff, seq, values};

    /// The CPU kernel agrees with the device-generic expression used on CUDA.
    #[test]
    fn cpu_pool_matches_generic_path() {
        let x = seq(&[2, 15, 15, 40]);
        for (k, stride, max) in [(3, 2, true), (2, 2, false), (7, 2, false)] {
            let fast = pool(&x, k, stride, max).expect("pool");
            let win = Window::new(15, 15, k, k, stride, Padding::Valid);
            let (ho, wo) = win.out_hw(15, 15).expect("fits");
            let mut acc: Option<Tensor> = None;
            for ky in 0..k {
                for kx in 0..k {
                    let t = tap(&x, ky, kx, stride, ho, wo).expect("tap");
                    acc = Some(match acc {
                        None => t,
                        Some(a) if max => a.maximum(&t).expect("max"),
                        Some(a) => (a + t).expect("add"),
                    });
                }
            }
            let acc = acc.expect("taps");
            let slow = if max {
                acc
            } else {
                (acc / (k * k) as f64).expect("div")
            };
            assert!(max_diff(&fast, &slow) < 1e-6, "pool {k}/{stride} max={max}");
        }
    }

    /// The baseline build of the kernel (what CPUs without AVX-512 run) gives the values of
    /// the build this CPU picks.
    #[test]
    fn baseline_build_matches_the_dispatched_one() {
        let (h, w, c) = (7, 9, 88);
        let x = values(2 * h * w * c, 1);
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
    }

    #[test]
    fn pools() {
        let x = seq(&[1, 4, 4, 2]);
        let m = max_pool(&x, 2, 2).expect("max");
        assert_eq!(m.dims(), [1, 2, 2, 2]);
        let a = avg_pool(&x, 2, 2).expect("avg");
        let v = x.to_vec3::<f32>().err(); // 4-D: to_vec3 fails, just checks no panic
        assert!(v.is_some());
        let first: f32 = [0usize, 2, 8, 10]
            .iter()
            .map(|&i| ((i * 37 % 101) as f32) / 50.0 - 1.0)
            .sum::<f32>()
            / 4.0;
        let got = a
            .flatten_all()
            .and_then(|t| t.get(0))
            .and_then(|t| t.to_scalar::<f32>());
        assert!((got.expect("value") - first).abs() < 1e-6);
    }
}
