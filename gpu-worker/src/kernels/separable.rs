//! Depthwise-separable convolution: 3×3 depthwise (+ bias + activation), then 1×1 pointwise
//! (+ bias + activation). The building block of the detector's backbone and the landmark net.
//!
//! On the CPU, layers with enough pixels run fused. The output is cut into tiles of whole
//! rows; for each tile, in parallel, the depthwise result is written to a scratch buffer that
//! stays in cache (one per thread, reused) and multiplied straight into the output by one
//! single-threaded matmul, and the pointwise bias and activation follow while the tile is
//! still in cache. The depthwise output never exists as a whole tensor: no allocation, no
//! zeroing and no round trip through memory for it, and no separate bias pass over the
//! output. Small layers (whose matmul would not split into enough large tiles) and other
//! devices run the two layers one after the other. Both ways give identical values on the
//! CPU (same sums in the same order), so whether a layer runs fused, which depends on the
//! batch size, does not change a face's result.

use candle_core::{CpuStorage, CustomOp3, Device, Layout, Module, Result, Shape, Tensor, bail};

use super::{
    Act,
    conv::{conv2d, matmul_into},
    cpu_f32,
    depthwise::{Depthwise, depthwise_conv2d},
    elementwise::{bias_act_in_place, bias_act_owned},
    output::par_filled,
    scratch::{TILE_BYTES, with_scratch},
    window::{Padding, Window},
};

/// Fewest output pixels per tile: below this the matmul's set-up dominates.
const MIN_TILE_PIXELS: usize = 512;

/// Filter, bias and activation of one of the two convolutions.
#[derive(Debug, Clone)]
pub struct Stage {
    pub filter: Tensor,
    pub bias: Tensor,
    pub act: Act,
}

/// A 3×3 depthwise convolution (SAME padding unless [`Separable::with_padding`] says
/// otherwise) followed by a 1×1 pointwise convolution.
#[derive(Debug, Clone)]
pub struct Separable {
    /// Filter `[3, 3, C]`, bias `[C]`.
    depthwise: Stage,
    stride: usize,
    padding: Padding,
    /// Filter `[C, cout]`, bias `[cout]`.
    pointwise: Stage,
    /// `[9·cin + cin + cout]`: depthwise filter, depthwise bias, pointwise bias, in one tensor
    /// so that the fused op takes three inputs.
    packed: Tensor,
}

impl Separable {
    /// Joins the two convolutions; the depthwise one moves by `stride`.
    pub fn new(depthwise: Stage, stride: usize, pointwise: Stage) -> Result<Self> {
        let (kh, kw, c) = depthwise.filter.dims3()?;
        let (cin, _) = pointwise.filter.dims2()?;
        if (kh, kw) != (3, 3) || cin != c {
            bail!(
                "separable: a {kh}x{kw}x{c} depthwise filter cannot feed a pointwise filter \
                 of {cin} inputs"
            );
        }
        let packed = Tensor::cat(
            &[
                depthwise.filter.flatten_all()?,
                depthwise.bias.clone(),
                pointwise.bias.clone(),
            ],
            0,
        )?;
        Ok(Self {
            depthwise,
            stride,
            padding: Padding::Same,
            pointwise,
            packed,
        })
    }

    /// The same layer with the depthwise window padded by `padding`.
    pub fn with_padding(self, padding: Padding) -> Self {
        Self { padding, ..self }
    }

    /// The two convolutions one after the other: other devices and small layers.
    fn two_passes(&self, x: &Tensor, win: Window) -> Result<Tensor> {
        let Stage { filter, bias, act } = &self.depthwise;
        let y = depthwise_conv2d(x, filter, bias, *act, win)?;
        let (_, h, w, _) = y.dims4()?;
        let Stage { filter, bias, act } = &self.pointwise;
        let y = conv2d(&y, filter, Window::new(h, w, 1, 1, 1, Padding::Valid))?;
        bias_act_owned(y, bias, *act)
    }
}

impl Module for Separable {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, h, w, c) = x.dims4()?;
        let win = Window::new(h, w, 3, 3, self.stride, self.padding);
        let (ho, wo) = win.out_hw(h, w)?;
        let tile_pixels = (TILE_BYTES / (4 * c.max(1))).max(MIN_TILE_PIXELS);
        if !matches!(x.device(), Device::Cpu) || b * ho * wo < 2 * tile_pixels {
            return self.two_passes(x, win);
        }
        let op = FusedSeparable {
            win,
            depthwise_act: self.depthwise.act,
            pointwise_act: self.pointwise.act,
            tile_rows: tile_pixels.div_ceil(wo),
        };
        x.contiguous()?
            .apply_op3_no_bwd(&self.pointwise.filter, &self.packed, &op)
    }
}

struct FusedSeparable {
    win: Window,
    depthwise_act: Act,
    pointwise_act: Act,
    /// Output rows per tile.
    tile_rows: usize,
}

impl CustomOp3 for FusedSeparable {
    fn name(&self) -> &'static str {
        "separable-fused-nhwc"
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
        let (cin, cout) = l2.shape().dims2()?;
        let win = self.win;
        let taps = win.kh * win.kw * c;
        let packed = cpu_f32(s3, l3, "separable parameters")?;
        if cin != c || packed.len() != taps + c + cout {
            bail!("separable: parameters do not match {c} input channels");
        }
        let (depthwise_filter, rest) = packed.split_at(taps);
        let (depthwise_bias, pointwise_bias) = rest.split_at(c);
        let depthwise = Depthwise {
            x: cpu_f32(s1, l1, "separable input")?,
            filter: depthwise_filter,
            bias: depthwise_bias,
            act: self.depthwise_act,
            h,
            w,
            c,
            win,
        };
        let pointwise_filter = cpu_f32(s2, l2, "pointwise filter")?;
        let (ho, wo) = win.out_hw(h, w)?;
        let out = par_filled(
            b * ho * wo * cout,
            self.tile_rows * wo * cout,
            |tile, dst| {
                let first_row = tile * self.tile_rows;
                let pixels = dst.len() / cout;
                with_scratch(|scratch, _| {
                    // Every value of the tile's part is written by the depthwise rows.
                    if scratch.len() < pixels * c {
                        scratch.resize(pixels * c, 0.0);
                    }
                    let scratch = &mut scratch[..pixels * c];
                    for (i, row) in scratch.chunks_exact_mut(wo * c).enumerate() {
                        let r = first_row + i;
                        depthwise.row(r / ho, r % ho, row);
                    }
                    matmul_into(scratch, pointwise_filter, dst, (pixels, c, cout))
                })?;
                bias_act_in_place(dst, pointwise_bias, self.pointwise_act);
                Ok(())
            },
        )?;
        Ok((CpuStorage::F32(out), Shape::from((b, ho, wo, cout))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testing::{max_abs, max_diff, tensor};

    fn layer(c: usize, cout: usize, stride: usize, acts: (Act, Act)) -> Separable {
        let depthwise = Stage {
            filter: tensor(&[3, 3, c], 1),
            bias: tensor(&[c], 2),
            act: acts.0,
        };
        let pointwise = Stage {
            filter: tensor(&[c, cout], 3),
            bias: tensor(&[cout], 4),
            act: acts.1,
        };
        Separable::new(depthwise, stride, pointwise).expect("separable")
    }

    /// The fused CPU path (tiles crossing image boundaries, border columns, channel counts
    /// that are not a multiple of the vector width) gives exactly the two layers' result.
    #[test]
    fn fused_matches_the_two_layers() {
        for (b, hw, c, cout, stride, acts, padding) in [
            (1, 96, 32, 64, 1, (Act::Relu6, Act::Relu6), Padding::Same),
            (2, 130, 40, 24, 2, (Act::None, Act::None), Padding::Same),
            (3, 50, 72, 16, 1, (Act::Relu, Act::Relu6), Padding::Same),
            (
                2,
                130,
                40,
                24,
                2,
                (Act::Relu, Act::None),
                Padding::Explicit(1),
            ),
        ] {
            let sep = layer(c, cout, stride, acts).with_padding(padding);
            let x = tensor(&[b, hw, hw, c], 5);
            let (_, ho, wo, _) = sep.forward(&x).expect("fused").dims4().expect("dims");
            let win = Window::new(hw, hw, 3, 3, stride, padding);
            assert_eq!(win.out_hw(hw, hw).expect("fits"), (ho, wo));
            let tile_pixels = (TILE_BYTES / (4 * c)).max(MIN_TILE_PIXELS);
            assert!(
                b * ho * wo >= 2 * tile_pixels,
                "case {b}x{hw}x{c} must be fused"
            );
            let fused = sep.forward(&x).expect("fused");
            let plain = sep.two_passes(&x, win).expect("two passes");
            let diff = max_diff(&fused, &plain);
            let scale = max_abs(&plain);
            // Same sums in the same order (gemm's depth blocking does not depend on the rows
            // per call, and adding the bias first or last is the same IEEE addition), so the
            // values are identical: a face's result does not depend on its batch.
            assert_eq!(diff, 0.0, "{b}x{hw}x{c}: off by {diff} (of {scale})");
        }
    }
}
