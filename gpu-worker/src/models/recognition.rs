//! FaceRecognitionNet (face-api `face_recognition_model`, a port of dlib's ResNet-34,
//! 150×150 input → 128-d descriptor, compared by Euclidean distance).
//!
//! Input: NHWC `[F, 150, 150, 3]` normalised to `(v - mean) / 255`. Output: `[F, 128]`,
//! not L2-normalised (as face-api).

use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;

use super::layers::Conv;
use crate::kernels::{self, Act, Padding};

/// Input side of the recognition net.
pub const RECOGNITION_INPUT: usize = 150;
/// Length of a descriptor.
pub const DESCRIPTOR_LEN: usize = 128;

/// dlib "con + affine (+ relu)": `conv/filters`, `conv/bias`, then the per-channel
/// `scale/{weights,biases}` folded into the conv at load time.
fn conv_layer(
    vb: VarBuilder,
    (k, cin, cout): (usize, usize, usize),
    stride: usize,
    padding: Padding,
    relu: bool,
) -> Result<Conv> {
    let act = if relu { Act::Relu } else { Act::None };
    let conv = Conv::load(
        &vb.pp("conv"),
        "filters",
        "bias",
        (k, cin, cout),
        stride,
        padding,
        act,
    )?;
    let scale = vb.pp("scale");
    conv.fold_affine(&scale.get(cout, "weights")?, &scale.get(cout, "biases")?)
}

/// `relu(x + conv2(conv1(x)))`, both 3×3 SAME.
#[derive(Debug, Clone)]
pub struct Residual {
    conv1: Conv,
    conv2: Conv,
}

impl Residual {
    pub fn load(vb: VarBuilder, c: usize) -> Result<Self> {
        Ok(Self {
            conv1: conv_layer(vb.pp("conv1"), (3, c, c), 1, Padding::Same, true)?,
            conv2: conv_layer(vb.pp("conv2"), (3, c, c), 1, Padding::Same, false)?,
        })
    }
}

impl Module for Residual {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = self.conv2.forward(&self.conv1.forward(x)?)?;
        kernels::add_act_owned(y, x, Act::Relu)
    }
}

/// Down-sampling residual: conv 3×3 stride 2 VALID (+relu), conv 3×3 SAME; shortcut is a 2×2
/// average pool with zero channels appended; the conv branch gets one zero row and column
/// (bottom/right) when it comes out one smaller than the pool.
#[derive(Debug, Clone)]
pub struct ResidualDown {
    conv1: Conv,
    conv2: Conv,
}

impl ResidualDown {
    pub fn load(vb: VarBuilder, cin: usize, cout: usize) -> Result<Self> {
        Ok(Self {
            conv1: conv_layer(vb.pp("conv1"), (3, cin, cout), 2, Padding::Valid, true)?,
            conv2: conv_layer(vb.pp("conv2"), (3, cout, cout), 1, Padding::Same, false)?,
        })
    }
}

impl Module for ResidualDown {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut y = self.conv2.forward(&self.conv1.forward(x)?)?;
        let mut pooled = kernels::avg_pool(x, 2, 2)?;
        let (_, ph, pw, pc) = pooled.dims4()?;
        let (_, yh, yw, yc) = y.dims4()?;
        if (ph, pw) != (yh, yw) {
            y = y
                .pad_with_zeros(1, 0, ph.saturating_sub(yh))?
                .pad_with_zeros(2, 0, pw.saturating_sub(yw))?;
        }
        if pc != yc {
            pooled = pooled.pad_with_zeros(3, 0, yc.saturating_sub(pc))?;
        }
        kernels::add_act_owned(y, &pooled, Act::Relu)
    }
}

#[derive(Debug, Clone)]
enum Stage {
    Residual(Residual),
    Down(ResidualDown),
}

impl Module for Stage {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Stage::Residual(r) => r.forward(x),
            Stage::Down(d) => d.forward(x),
        }
    }
}

/// The descriptor network.
#[derive(Debug, Clone)]
pub struct FaceRecognitionNet {
    conv32_down: Conv,
    stages: Vec<Stage>,
    fc: Tensor, // [256, 128], no bias
}

impl FaceRecognitionNet {
    pub fn load(vb: VarBuilder) -> Result<Self> {
        let conv32_down = conv_layer(vb.pp("conv32_down"), (7, 3, 32), 2, Padding::Valid, true)?;
        let res = |name: &str, c: usize| Residual::load(vb.pp(name), c).map(Stage::Residual);
        let down = |name: &str, cin: usize, cout: usize| {
            ResidualDown::load(vb.pp(name), cin, cout).map(Stage::Down)
        };
        let stages = vec![
            res("conv32_1", 32)?,
            res("conv32_2", 32)?,
            res("conv32_3", 32)?,
            down("conv64_down", 32, 64)?,
            res("conv64_1", 64)?,
            res("conv64_2", 64)?,
            res("conv64_3", 64)?,
            down("conv128_down", 64, 128)?,
            res("conv128_1", 128)?,
            res("conv128_2", 128)?,
            down("conv256_down", 128, 256)?,
            res("conv256_1", 256)?,
            res("conv256_2", 256)?,
            down("conv256_down_out", 256, 256)?,
        ];
        let fc = vb.get((256, DESCRIPTOR_LEN), "fc")?;
        Ok(Self {
            conv32_down,
            stages,
            fc,
        })
    }
}

impl Module for FaceRecognitionNet {
    /// `[F, 150, 150, 3]` → `[F, 128]`.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (_, h, w, c) = x.dims4()?;
        if (h, w, c) != (RECOGNITION_INPUT, RECOGNITION_INPUT, 3) {
            candle_core::bail!(
                "recognition: expected [F,150,150,3] input, got {:?}",
                x.dims()
            );
        }
        let mut out = kernels::max_pool(&self.conv32_down.forward(x)?, 3, 2)?;
        for stage in &self.stages {
            out = stage.forward(&out)?;
        }
        let pooled = out.mean(1)?.mean(1)?; // [F, 256]
        pooled.matmul(&self.fc)
    }
}
