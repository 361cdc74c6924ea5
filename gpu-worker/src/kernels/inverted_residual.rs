//! MobileNet V2's inverted residual block: 1×1 expansion (+ bias + activation), 3×3 depthwise
//! (+ bias + activation), 1×1 linear projection (+ bias), plus the block's input when the
//! shapes allow. CenterFace's backbone is 17 of them.
//!
//! The expansion multiplies the channels by 6, so at the high resolutions of the first blocks
//! its output is the largest tensor of the network (tens of MB per batch) and the layer is
//! bound by writing it out and reading it back, not by arithmetic. On the CPU, layers with
//! enough pixels run fused, as [`super::Separable`] fuses the last two stages: the output is
//! cut into tiles of whole rows; for each tile, in parallel, the input rows its depthwise
//! window reads are expanded into a scratch buffer that stays in cache, the depthwise rows
//! are computed from it into a second one, and one matmul writes the projection straight
//! into the output. The expansion's output never exists as a whole tensor. Rows on the edge
//! of two tiles are expanded by both (at stride 2, a tile of `n` rows expands `2n + 1`). Both
//! ways give the same values up to float rounding (the expansion's matmul is cut
//! differently), so the fused path is tested against the layers run one after the other.

use candle_core::{CpuStorage, CustomOp3, Device, Layout, Module, Result, Shape, Tensor, bail};

use super::{
    Act,
    conv::{conv2d, matmul_into},
    cpu_f32,
    depthwise::{Depthwise, depthwise_conv2d},
    elementwise::{add_act_in_place, add_act_owned, bias_act_in_place, bias_act_owned},
    output::par_filled,
    scratch::{TILE_BYTES, with_scratch},
    separable::Stage,
    window::{Padding, Window},
};

/// The three stages of one block, and whether it adds its input.
#[derive(Debug, Clone)]
pub struct InvertedResidual {
    /// Filter `[cin, hidden]`, bias `[hidden]`.
    expand: Stage,
    /// Filter `[3, 3, hidden]`, bias `[hidden]`.
    depthwise: Stage,
    stride: usize,
    padding: Padding,
    /// Filter `[hidden, cout]`, bias `[cout]`; no activation.
    project: Stage,
    residual: bool,
    /// Expansion filter and bias, depthwise filter and bias, projection bias, in one tensor,
    /// so the fused op takes three inputs.
    packed: Tensor,
}

impl InvertedResidual {
    /// Joins the stages; the depthwise one moves by `stride` with `padding`. The block adds
    /// its input when it keeps the size and channels (stride 1, `cin == cout`).
    pub fn new(
        expand: Stage,
        depthwise: Stage,
        stride: usize,
        padding: Padding,
        project: Stage,
    ) -> Result<Self> {
        let (cin, hidden) = expand.filter.dims2()?;
        let (kh, kw, c) = depthwise.filter.dims3()?;
        let (pin, cout) = project.filter.dims2()?;
        if (kh, kw) != (3, 3) || c != hidden || pin != hidden {
            bail!(
                "inverted residual: [{cin}, {hidden}] → [{kh}, {kw}, {c}] → [{pin}, {cout}] do not chain"
            );
        }
        let packed = Tensor::cat(
            &[
                expand.filter.flatten_all()?,
                expand.bias.clone(),
                depthwise.filter.flatten_all()?,
                depthwise.bias.clone(),
                project.bias.clone(),
            ],
            0,
        )?;
        Ok(Self {
            residual: stride == 1 && cin == cout,
            expand,
            depthwise,
            stride,
            padding,
            project,
            packed,
        })
    }

    /// The three layers one after the other: other devices and small layers.
    fn layer_by_layer(&self, x: &Tensor) -> Result<Tensor> {
        let (_, h, w, _) = x.dims4()?;
        let one = |h, w| Window::new(h, w, 1, 1, 1, Padding::Valid);
        let Stage { filter, bias, act } = &self.expand;
        let y = bias_act_owned(conv2d(x, filter, one(h, w))?, bias, *act)?;
        let Stage { filter, bias, act } = &self.depthwise;
        let win = Window::new(h, w, 3, 3, self.stride, self.padding);
        let y = depthwise_conv2d(&y, filter, bias, *act, win)?;
        let (_, ho, wo, _) = y.dims4()?;
        let Stage { filter, bias, act } = &self.project;
        let y = bias_act_owned(conv2d(&y, filter, one(ho, wo))?, bias, *act)?;
        if self.residual {
            add_act_owned(y, x, Act::None)
        } else {
            Ok(y)
        }
    }
}

impl Module for InvertedResidual {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, h, w, cin) = x.dims4()?;
        let hidden = self.expand.filter.dim(1)?;
        let win = Window::new(h, w, 3, 3, self.stride, self.padding);
        let (ho, _) = win.out_hw(h, w)?;
        // Output rows per tile: as many as keep the expanded rows they read within budget.
        let in_rows = (TILE_BYTES / (4 * w * hidden).max(1)).max(3);
        let tile_rows = ((in_rows - 3) / self.stride + 1).min(ho).max(1);
        if !matches!(x.device(), Device::Cpu) || b * ho < 2 * tile_rows || cin == 0 {
            return self.layer_by_layer(x);
        }
        let op = FusedInvertedResidual {
            win,
            acts: (self.expand.act, self.depthwise.act),
            residual: self.residual,
            tile_rows,
        };
        x.contiguous()?
            .apply_op3_no_bwd(&self.project.filter, &self.packed, &op)
    }
}

struct FusedInvertedResidual {
    win: Window,
    /// Expansion's and depthwise's activations (the projection has none).
    acts: (Act, Act),
    residual: bool,
    /// Output rows per tile.
    tile_rows: usize,
}

/// The parameters of one block, as slices of the packed tensor.
struct Params<'a> {
    expand_filter: &'a [f32],
    expand_bias: &'a [f32],
    depthwise_filter: &'a [f32],
    depthwise_bias: &'a [f32],
    project_filter: &'a [f32],
    project_bias: &'a [f32],
}

impl FusedInvertedResidual {
    /// Output rows `oy0..oy1` of image `bi` into `dst` (`(oy1 - oy0) · wo · cout` floats).
    #[allow(clippy::too_many_arguments)]
    fn rows(
        &self,
        x: &[f32],
        p: &Params,
        (h, w, cin, hidden, cout): (usize, usize, usize, usize, usize),
        bi: usize,
        (oy0, oy1): (usize, usize),
        dst: &mut [f32],
        (expanded, depthwise): (&mut Vec<f32>, &mut Vec<f32>),
    ) -> Result<()> {
        let win = self.win;
        let wo = dst.len() / ((oy1 - oy0) * cout);
        // The input rows the depthwise window reads for these output rows.
        let first = (oy0 * win.stride).saturating_sub(win.top);
        let last = ((oy1 - 1) * win.stride + win.kh)
            .saturating_sub(win.top)
            .min(h);
        let n_in = last.saturating_sub(first);
        expanded.resize(n_in * w * hidden, 0.0);
        if n_in > 0 {
            let rows = &x[(bi * h + first) * w * cin..(bi * h + last) * w * cin];
            matmul_into(rows, p.expand_filter, expanded, (n_in * w, cin, hidden))?;
            bias_act_in_place(expanded, p.expand_bias, self.acts.0);
        }
        // The depthwise window over the expanded rows alone: the same taps, shifted.
        let local = Window {
            top: win.top + first - oy0 * win.stride,
            ..win
        };
        let kernel = Depthwise {
            x: expanded,
            filter: p.depthwise_filter,
            bias: p.depthwise_bias,
            act: self.acts.1,
            h: n_in,
            w,
            c: hidden,
            win: local,
        };
        depthwise.resize((oy1 - oy0) * wo * hidden, 0.0);
        for (i, row) in depthwise.chunks_exact_mut(wo * hidden).enumerate() {
            kernel.row(0, i, row);
        }
        matmul_into(
            depthwise,
            p.project_filter,
            dst,
            ((oy1 - oy0) * wo, hidden, cout),
        )?;
        bias_act_in_place(dst, p.project_bias, Act::None);
        if self.residual {
            let input = &x[(bi * h + oy0) * w * cin..(bi * h + oy1) * w * cin];
            add_act_in_place(dst, input, Act::None);
        }
        Ok(())
    }
}

impl CustomOp3 for FusedInvertedResidual {
    fn name(&self) -> &'static str {
        "inverted-residual-fused-nhwc"
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
        let (hidden, cout) = l2.shape().dims2()?;
        let packed = cpu_f32(s3, l3, "inverted residual parameters")?;
        let taps = self.win.kh * self.win.kw * hidden;
        if packed.len() != cin * hidden + hidden + taps + hidden + cout {
            bail!("inverted residual: parameters do not match {cin} → {hidden} → {cout} channels");
        }
        let (expand_filter, rest) = packed.split_at(cin * hidden);
        let (expand_bias, rest) = rest.split_at(hidden);
        let (depthwise_filter, rest) = rest.split_at(taps);
        let (depthwise_bias, project_bias) = rest.split_at(hidden);
        let p = Params {
            expand_filter,
            expand_bias,
            depthwise_filter,
            depthwise_bias,
            project_filter: cpu_f32(s2, l2, "projection filter")?,
            project_bias,
        };
        let x = cpu_f32(s1, l1, "inverted residual input")?;
        let (ho, wo) = self.win.out_hw(h, w)?;
        let row_len = wo * cout;
        let out = par_filled(b * ho * row_len, self.tile_rows * row_len, |tile, dst| {
            with_scratch(|expanded, depthwise| {
                // A tile of the batch's rows may end one image and start the next.
                let mut r = tile * self.tile_rows;
                let mut dst = dst;
                while !dst.is_empty() {
                    let (bi, oy0) = (r / ho, r % ho);
                    let n = (ho - oy0).min(dst.len() / row_len);
                    let (part, rest) = dst.split_at_mut(n * row_len);
                    let dims = (h, w, cin, hidden, cout);
                    self.rows(x, &p, dims, bi, (oy0, oy0 + n), part, (expanded, depthwise))?;
                    dst = rest;
                    r += n;
                }
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

    fn block(
        cin: usize,
        hidden: usize,
        cout: usize,
        stride: usize,
        padding: Padding,
    ) -> InvertedResidual {
        let stage = |filter: &[usize], bias: usize, seed: usize, act: Act| Stage {
            filter: tensor(filter, seed),
            bias: tensor(&[bias], seed + 1),
            act,
        };
        InvertedResidual::new(
            stage(&[cin, hidden], hidden, 1, Act::Relu),
            stage(&[3, 3, hidden], hidden, 3, Act::Relu),
            stride,
            padding,
            stage(&[hidden, cout], cout, 5, Act::None),
        )
        .expect("block")
    }

    /// The fused path (tiles crossing images, stride 2, the residual add, the first and last
    /// rows' padding) gives the three layers' values up to float rounding.
    #[test]
    fn fused_matches_the_layers_one_by_one() {
        for (b, h, w, cin, hidden, cout, stride, padding) in [
            (2, 96, 64, 16, 96, 24, 2, Padding::Explicit(1)),
            (3, 40, 36, 24, 144, 24, 1, Padding::Explicit(1)),
            (1, 130, 70, 8, 48, 8, 1, Padding::Same),
            (2, 66, 50, 16, 96, 32, 2, Padding::Same),
        ] {
            let block = block(cin, hidden, cout, stride, padding);
            let x = tensor(&[b, h, w, cin], 7);
            let fused = block.forward(&x).expect("fused");
            let plain = block.layer_by_layer(&x).expect("layer by layer");
            assert_eq!(fused.dims(), plain.dims());
            let scale = max_abs(&plain);
            let diff = max_diff(&fused, &plain);
            assert!(
                diff <= 1e-5 * scale.max(1.0),
                "{b}x{h}x{w}x{cin}: off by {diff} of {scale}"
            );
        }
    }
}
