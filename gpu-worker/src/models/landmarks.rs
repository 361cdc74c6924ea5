//! FaceLandmark68Net (face-api `face_landmark_68_model`, 112×112 input, 68 points).
//!
//! Input: NHWC `[F, 112, 112, 3]` normalised to `(v - mean) / 255`. Output: `[F, 136]`, the raw
//! `(x0, y0, x1, y1, …)` in 0..1 of the padded 112 input. Mapping to image pixels is in
//! [`crate::pipeline::align`].

use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;

use super::layers::{self, Conv, DepthwiseConv};
use crate::kernels::{self, Act, Padding, Separable};

/// Input side of the landmark net.
pub const LANDMARK_INPUT: usize = 112;

/// Separable conv: depthwise 3×3 (SAME) → pointwise 1×1 + bias, no activation.
#[derive(Debug, Clone)]
pub struct SeparableConv(Separable);

impl SeparableConv {
    pub fn load(vb: &VarBuilder, cin: usize, cout: usize, stride: usize) -> Result<Self> {
        let depthwise = DepthwiseConv::load(vb, "depthwise_filter", cin, stride)?;
        let pointwise = Conv::load(
            vb,
            "pointwise_filter",
            "bias",
            (1, cin, cout),
            1,
            Padding::Valid,
            Act::None,
        )?;
        layers::separable(depthwise, pointwise).map(Self)
    }
}

impl Module for SeparableConv {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.0.forward(x)
    }
}

/// First conv of a dense block: a regular 3×3 conv (dense0) or a separable one, stride 2.
#[derive(Debug, Clone)]
enum FirstConv {
    Regular(Conv),
    Separable(SeparableConv),
}

/// face-api's `denseBlock4`: four convs with dense additive skips.
#[derive(Debug, Clone)]
pub struct DenseBlock {
    conv0: FirstConv,
    convs: [SeparableConv; 3],
}

impl DenseBlock {
    /// `first` selects the regular 3→32 conv of `dense0`.
    pub fn load(vb: VarBuilder, cin: usize, cout: usize, first: bool) -> Result<Self> {
        let conv0 = if first {
            let vb0 = vb.pp("conv0");
            FirstConv::Regular(Conv::load(
                &vb0,
                "filters",
                "bias",
                (3, cin, cout),
                2,
                Padding::Same,
                Act::Relu,
            )?)
        } else {
            FirstConv::Separable(SeparableConv::load(&vb.pp("conv0"), cin, cout, 2)?)
        };
        let sep = |i: usize| SeparableConv::load(&vb.pp(format!("conv{i}")), cout, cout, 1);
        Ok(Self {
            conv0,
            convs: [sep(1)?, sep(2)?, sep(3)?],
        })
    }
}

impl Module for DenseBlock {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let out1 = match &self.conv0 {
            FirstConv::Regular(c) => c.forward(x)?, // relu fused
            FirstConv::Separable(s) => kernels::act(&s.forward(x)?, Act::Relu)?,
        };
        let out2 = self.convs[0].forward(&out1)?;
        let sum2 = kernels::add_act_owned(out2, &out1, Act::None)?;
        let out3 = self.convs[1].forward(&kernels::act(&sum2, Act::Relu)?)?;
        let sum3 = kernels::add_act_owned(out3, &sum2, Act::None)?;
        let out4 = self.convs[2].forward(&kernels::act(&sum3, Act::Relu)?)?;
        kernels::add_act_owned(out4, &sum3, Act::Relu)
    }
}

/// The 68-point landmark network.
#[derive(Debug, Clone)]
pub struct FaceLandmark68Net {
    blocks: [DenseBlock; 4],
    fc_weights: Tensor, // [256, 136]
    fc_bias: Tensor,    // [136]
}

impl FaceLandmark68Net {
    pub fn load(vb: VarBuilder) -> Result<Self> {
        let blocks = [
            DenseBlock::load(vb.pp("dense0"), 3, 32, true)?,
            DenseBlock::load(vb.pp("dense1"), 32, 64, false)?,
            DenseBlock::load(vb.pp("dense2"), 64, 128, false)?,
            DenseBlock::load(vb.pp("dense3"), 128, 256, false)?,
        ];
        let fc = vb.pp("fc");
        Ok(Self {
            blocks,
            fc_weights: fc.get((256, 136), "weights")?,
            fc_bias: fc.get(136, "bias")?,
        })
    }
}

impl Module for FaceLandmark68Net {
    /// `[F, 112, 112, 3]` → `[F, 136]`.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (_, h, w, c) = x.dims4()?;
        if (h, w, c) != (LANDMARK_INPUT, LANDMARK_INPUT, 3) {
            candle_core::bail!(
                "landmarks: expected [F,112,112,3] input, got {:?}",
                x.dims()
            );
        }
        let mut out = x.clone();
        for block in &self.blocks {
            out = block.forward(&out)?;
        }
        // avgPool 7×7 stride 2 VALID on the 7×7 map = mean over all positions.
        let pooled = kernels::avg_pool(&out, 7, 2)?.flatten_from(1)?; // [F, 256]
        kernels::bias_act(&pooled.matmul(&self.fc_weights)?, &self.fc_bias, Act::None)
    }
}
