//! A k×k convolution (+ bias + activation) followed by a 1×1 convolution (+ bias +
//! activation), as CenterFace's head (3×3, 24 → 24, ReLU, then 1×1 to its 15 output maps at
//! stride 4). As im2col and a matmul, the first one writes out and reads back its patches, k²
//! times its input (216 values a pixel there), which costs more than its arithmetic. On the
//! CPU, with enough rows, it runs fused: the output is cut into tiles of whole rows; for each
//! tile, in parallel, its patches are built in a scratch buffer that stays in cache, one matmul
//! gives the first convolution's rows into a second one, and another writes the 1×1
//! convolution straight into the output. Neither the patches nor the first convolution's
//! output exist as whole tensors. Both ways give the same values up to float rounding.

use candle_core::{CpuStorage, CustomOp3, Device, Layout, Module, Result, Shape, Tensor, bail};

use super::{
    Act,
    conv::{conv2d, matmul_into, patch_row},
    cpu_f32,
    elementwise::{bias_act_in_place, bias_act_owned},
    output::par_filled,
    scratch::{TILE_BYTES, with_scratch},
    separable::Stage,
    window::{Padding, Window},
};

/// The two convolutions.
#[derive(Debug, Clone)]
pub struct ConvPointwise {
    /// Filter `[k·k·cin, mid]` (HWIO flattened), bias `[mid]`.
    conv: Stage,
    k: usize,
    stride: usize,
    padding: Padding,
    /// Filter `[mid, cout]`, bias `[cout]`.
    pointwise: Stage,
    /// The first bias, the 1×1 filter and its bias in one tensor, so the fused op takes three
    /// inputs.
    packed: Tensor,
}

impl ConvPointwise {
    /// Joins a k×k convolution (its filter `[k, k, cin, mid]`) moving by `stride` with
    /// `padding` and a 1×1 one (`[mid, cout]`).
    pub fn new(conv: Stage, stride: usize, padding: Padding, pointwise: Stage) -> Result<Self> {
        let (kh, kw, cin, mid) = conv.filter.dims4()?;
        let (pin, _) = pointwise.filter.dims2()?;
        if kh != kw || pin != mid {
            bail!("conv + pointwise: [{kh}, {kw}, {cin}, {mid}] → [{pin}, _] do not chain");
        }
        let conv = Stage {
            filter: conv.filter.reshape((kh * kw * cin, mid))?,
            ..conv
        };
        let packed = Tensor::cat(
            &[
                conv.bias.clone(),
                pointwise.filter.flatten_all()?,
                pointwise.bias.clone(),
            ],
            0,
        )?;
        Ok(Self {
            conv,
            k: kh,
            stride,
            padding,
            pointwise,
            packed,
        })
    }

    /// The two layers one after the other: other devices and small layers.
    fn layer_by_layer(&self, x: &Tensor, win: Window) -> Result<Tensor> {
        let Stage { filter, bias, act } = &self.conv;
        let y = bias_act_owned(conv2d(x, filter, win)?, bias, *act)?;
        let (_, h, w, _) = y.dims4()?;
        let Stage { filter, bias, act } = &self.pointwise;
        let one = Window::new(h, w, 1, 1, 1, Padding::Valid);
        bias_act_owned(conv2d(&y, filter, one)?, bias, *act)
    }
}

impl Module for ConvPointwise {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, h, w, _) = x.dims4()?;
        let win = Window::new(h, w, self.k, self.k, self.stride, self.padding);
        let (ho, wo) = win.out_hw(h, w)?;
        let patch = self.conv.filter.dim(0)?;
        let tile_rows = (TILE_BYTES / (4 * wo * patch).max(1)).clamp(1, ho.max(1));
        if !matches!(x.device(), Device::Cpu) || b * ho < 2 * tile_rows {
            return self.layer_by_layer(x, win);
        }
        let op = Fused {
            win,
            acts: (self.conv.act, self.pointwise.act),
            tile_rows,
        };
        x.contiguous()?
            .apply_op3_no_bwd(&self.conv.filter, &self.packed, &op)
    }
}

struct Fused {
    win: Window,
    acts: (Act, Act),
    /// Output rows per tile.
    tile_rows: usize,
}

impl CustomOp3 for Fused {
    fn name(&self) -> &'static str {
        "conv-pointwise-fused-nhwc"
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
        let (b, h, w, cin) = l1.shape().dims4()?;
        let (patch, mid) = l2.shape().dims2()?;
        let packed = cpu_f32(s3, l3, "conv + pointwise parameters")?;
        if patch != self.win.kh * self.win.kw * cin || packed.len() < mid {
            bail!("conv + pointwise: filter [{patch}, {mid}] does not fit {cin} channels");
        }
        let (conv_bias, rest) = packed.split_at(mid);
        let cout = rest.len() / (mid + 1);
        if rest.len() != mid * cout + cout {
            bail!("conv + pointwise: parameters do not match {mid} channels");
        }
        let (pointwise_filter, pointwise_bias) = rest.split_at(mid * cout);
        let conv_filter = cpu_f32(s2, l2, "conv filter")?;
        let x = cpu_f32(s1, l1, "conv + pointwise input")?;
        let (ho, wo) = self.win.out_hw(h, w)?;
        let row_len = wo * cout;
        let out = par_filled(b * ho * row_len, self.tile_rows * row_len, |tile, dst| {
            with_scratch(|patches, first| {
                let n = dst.len() / row_len;
                patches.clear();
                patches.resize(n * wo * patch, 0.0);
                // Rows are independent: a tile may end one image and start the next.
                for (i, part) in patches.chunks_exact_mut(wo * patch).enumerate() {
                    let r = tile * self.tile_rows + i;
                    patch_row(x, (h, w, cin), &self.win, (r / ho, r % ho), part);
                }
                first.resize(n * wo * mid, 0.0);
                matmul_into(patches, conv_filter, first, (n * wo, patch, mid))?;
                bias_act_in_place(first, conv_bias, self.acts.0);
                matmul_into(first, pointwise_filter, dst, (n * wo, mid, cout))?;
                bias_act_in_place(dst, pointwise_bias, self.acts.1);
                Ok(())
            })
        })?;
        Ok((CpuStorage::F32(out), Shape::from((b, ho, wo, cout))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testing::{max_abs, max_diff, tensor};

    /// The fused path (tiles crossing images, strides 1 and 2, both paddings) gives the two
    /// layers' values up to float rounding.
    #[test]
    fn fused_matches_the_layers_one_by_one() {
        for (b, h, w, cin, mid, cout, stride, padding) in [
            (3, 40, 36, 24, 24, 15, 1, Padding::Explicit(1)),
            (2, 96, 64, 8, 16, 5, 2, Padding::Explicit(1)),
            (2, 66, 50, 3, 32, 7, 2, Padding::Same),
            (1, 130, 70, 24, 24, 15, 1, Padding::Same),
        ] {
            let layer = ConvPointwise::new(
                Stage {
                    filter: tensor(&[3, 3, cin, mid], 1),
                    bias: tensor(&[mid], 2),
                    act: Act::Relu,
                },
                stride,
                padding,
                Stage {
                    filter: tensor(&[mid, cout], 3),
                    bias: tensor(&[cout], 4),
                    act: Act::None,
                },
            )
            .expect("layer");
            let x = tensor(&[b, h, w, cin], 7);
            let fused = layer.forward(&x).expect("fused");
            let win = Window::new(h, w, 3, 3, stride, padding);
            let plain = layer.layer_by_layer(&x, win).expect("layer by layer");
            assert_eq!(fused.dims(), plain.dims());
            let scale = max_abs(&plain);
            let diff = max_diff(&fused, &plain);
            assert!(
                diff <= 1e-5 * scale.max(1.0),
                "{b}x{h}x{w}x{cin}: off by {diff} of {scale}"
            );
        }
    }

    #[test]
    fn filters_that_do_not_chain_are_refused() {
        let stage = |shape: &[usize]| Stage {
            filter: tensor(shape, 1),
            bias: tensor(&[shape[shape.len() - 1]], 2),
            act: Act::None,
        };
        let err = ConvPointwise::new(stage(&[3, 3, 4, 8]), 1, Padding::Same, stage(&[6, 2]))
            .expect_err("8 outputs cannot feed 6 inputs");
        assert!(err.to_string().contains("do not chain"), "{err}");
    }
}
