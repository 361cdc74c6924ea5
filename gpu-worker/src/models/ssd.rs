//! SSD MobileNet V1 face detector (face-api `ssd_mobilenetv1_model`, 512×512 input).
//!
//! Input: NHWC `[B, 512, 512, 3]` already normalised to `v/127.5 - 1`
//! (see [`crate::pipeline::preprocess`]). Output: per anchor the raw box encoding
//! `(ty, tx, th, tw)` and the face score `sigmoid(logit[1])`, for the 5118 anchors stored in
//! the weights. Decoding and NMS live in [`crate::pipeline::detection`].

use candle_core::{D, Module, Result, Tensor};
use candle_nn::VarBuilder;

use super::layers::{self, Conv, DepthwiseConv};
use crate::kernels::{Act, Padding, Separable};

/// Input side of the detector.
pub const SSD_INPUT: usize = 512;
/// Number of anchors over the six feature maps.
pub const NUM_ANCHORS: usize = 5118;
/// Batch-norm epsilon of the depthwise layers (the f32 value of 1e-3).
const BN_EPS: f64 = 0.0010000000474974513;

/// face-api's "pointwise layer": conv (SAME) + folded-BN offset + relu6.
fn pointwise(vb: &VarBuilder, k: usize, cin: usize, cout: usize, stride: usize) -> Result<Conv> {
    Conv::load(
        vb,
        "weights",
        "convolution_bn_offset",
        (k, cin, cout),
        stride,
        Padding::Same,
        Act::Relu6,
    )
}

/// One MobileNet step: depthwise 3×3 + BN + relu6, then pointwise 1×1 + relu6.
#[derive(Debug, Clone)]
pub struct MobileNetBlock(Separable);

impl MobileNetBlock {
    /// Loads `MobilenetV1/Conv2d_{i}_depthwise` and `..._pointwise`.
    pub fn load(vb: &VarBuilder, i: usize, cin: usize, cout: usize, stride: usize) -> Result<Self> {
        let dw = vb.pp(format!("Conv2d_{i}_depthwise"));
        let depthwise = DepthwiseConv::load(&dw, "depthwise_weights", cin, stride)?
            .with_batch_norm(&dw.pp("BatchNorm"), BN_EPS, Act::Relu6)?;
        let pointwise = pointwise(&vb.pp(format!("Conv2d_{i}_pointwise")), 1, cin, cout, 1)?;
        layers::separable(depthwise, pointwise).map(Self)
    }
}

impl Module for MobileNetBlock {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.0.forward(x)
    }
}

/// The MobileNet V1 backbone; returns the feature maps after step 11 and step 13.
#[derive(Debug, Clone)]
pub struct MobileNetV1 {
    conv0: Conv,
    blocks: Vec<MobileNetBlock>,
}

/// (input channels, output channels, depthwise stride) of steps 1..=13.
const BLOCKS: [(usize, usize, usize); 13] = [
    (32, 64, 1),
    (64, 128, 2),
    (128, 128, 1),
    (128, 256, 2),
    (256, 256, 1),
    (256, 512, 2),
    (512, 512, 1),
    (512, 512, 1),
    (512, 512, 1),
    (512, 512, 1),
    (512, 512, 1),
    (512, 1024, 2),
    (1024, 1024, 1),
];

impl MobileNetV1 {
    pub fn load(vb: VarBuilder) -> Result<Self> {
        let conv0 = pointwise(&vb.pp("Conv2d_0_pointwise"), 3, 3, 32, 2)?;
        let blocks = BLOCKS
            .iter()
            .enumerate()
            .map(|(i, &(cin, cout, s))| MobileNetBlock::load(&vb, i + 1, cin, cout, s))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { conv0, blocks })
    }

    /// `(F0, F1)`: `[B,32,32,512]` and `[B,16,16,1024]` for a 512 input.
    pub fn forward(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let mut out = self.conv0.forward(x)?;
        let mut f0 = None;
        for (i, block) in self.blocks.iter().enumerate() {
            out = block.forward(&out)?;
            if i + 1 == 11 {
                f0 = Some(out.clone());
            }
        }
        match f0 {
            Some(f0) => Ok((f0, out)),
            None => candle_core::bail!("mobilenet: step 11 missing"),
        }
    }
}

/// One box predictor: box encodings (A×4) and class logits (A×3) by 1×1 convs.
#[derive(Debug, Clone)]
pub struct BoxPredictor {
    boxes: Conv,
    classes: Conv,
    anchors: usize,
}

impl BoxPredictor {
    pub fn load(vb: VarBuilder, cin: usize, anchors: usize) -> Result<Self> {
        let head = |name: &str, per: usize| {
            let vb = vb.pp(name);
            Conv::load(
                &vb,
                "weights",
                "biases",
                (1, cin, anchors * per),
                1,
                Padding::Same,
                Act::None,
            )
        };
        Ok(Self {
            boxes: head("BoxEncodingPredictor", 4)?,
            classes: head("ClassPredictor", 3)?,
            anchors,
        })
    }

    /// `([B, H*W*A, 4], [B, H*W*A, 3])`, anchors ordered row, column, anchor.
    pub fn forward(&self, f: &Tensor) -> Result<(Tensor, Tensor)> {
        let (b, h, w, _) = f.dims4()?;
        let n = h * w * self.anchors;
        let boxes = self.boxes.forward(f)?.reshape((b, n, 4))?;
        let classes = self.classes.forward(f)?.reshape((b, n, 3))?;
        Ok((boxes, classes))
    }
}

/// Raw detector output for a batch.
#[derive(Debug, Clone)]
pub struct SsdOutput {
    /// `[B, 5118, 4]` box encodings `(ty, tx, th, tw)`.
    pub box_encodings: Tensor,
    /// `[B, 5118]` face scores.
    pub scores: Tensor,
}

/// The whole detector: backbone, extra feature layers, six box predictors and the anchors.
#[derive(Debug, Clone)]
pub struct SsdMobilenetV1 {
    backbone: MobileNetV1,
    extras: Vec<Conv>,
    predictors: Vec<BoxPredictor>,
    anchors: Vec<[f32; 4]>,
}

impl SsdMobilenetV1 {
    pub fn load(vb: VarBuilder) -> Result<Self> {
        let backbone = MobileNetV1::load(vb.pp("MobilenetV1"))?;
        let pred = vb.pp("Prediction");
        // (kernel, cin, cout, stride) of Prediction/Conv2d_{0..7}_pointwise.
        let extras_spec = [
            (1, 1024, 256, 1),
            (3, 256, 512, 2),
            (1, 512, 128, 1),
            (3, 128, 256, 2),
            (1, 256, 128, 1),
            (3, 128, 256, 2),
            (1, 256, 64, 1),
            (3, 64, 128, 2),
        ];
        let extras = extras_spec
            .iter()
            .enumerate()
            .map(|(i, &(k, cin, cout, s))| {
                pointwise(&pred.pp(format!("Conv2d_{i}_pointwise")), k, cin, cout, s)
            })
            .collect::<Result<Vec<_>>>()?;
        let heads = [(512, 3), (1024, 6), (512, 6), (256, 6), (256, 6), (128, 6)];
        let predictors = heads
            .iter()
            .enumerate()
            .map(|(j, &(cin, a))| BoxPredictor::load(pred.pp(format!("BoxPredictor_{j}")), cin, a))
            .collect::<Result<Vec<_>>>()?;
        let anchors = vb
            .pp("Output")
            .get((1, NUM_ANCHORS, 4), "extra_dim")?
            .squeeze(0)?
            .to_dtype(candle_core::DType::F32)?
            .to_vec2::<f32>()?
            .into_iter()
            .map(|a| [a[0], a[1], a[2], a[3]])
            .collect();
        Ok(Self {
            backbone,
            extras,
            predictors,
            anchors,
        })
    }

    /// The stored anchors `(ymin, xmin, ymax, xmax)`, normalised to the 512 square.
    pub fn anchors(&self) -> &[[f32; 4]] {
        &self.anchors
    }

    /// Runs the detector on a normalised `[B, 512, 512, 3]` batch.
    pub fn forward(&self, x: &Tensor) -> Result<SsdOutput> {
        let (_, h, w, c) = x.dims4()?;
        if (h, w, c) != (SSD_INPUT, SSD_INPUT, 3) {
            candle_core::bail!("ssd: expected [B,512,512,3] input, got {:?}", x.dims());
        }
        let (f0, f1) = self.backbone.forward(x)?;
        let mut feats = vec![f0, f1.clone()];
        let mut out = f1;
        for pair in self.extras.chunks(2) {
            for layer in pair {
                out = layer.forward(&out)?;
            }
            feats.push(out.clone());
        }
        let mut boxes = Vec::with_capacity(6);
        let mut classes = Vec::with_capacity(6);
        for (f, p) in feats.iter().zip(&self.predictors) {
            let (b, c) = p.forward(f)?;
            boxes.push(b);
            classes.push(c);
        }
        let box_encodings = Tensor::cat(&boxes, 1)?;
        let logits = Tensor::cat(&classes, 1)?;
        let scores = candle_nn::ops::sigmoid(&logits.narrow(D::Minus1, 1, 1)?.squeeze(D::Minus1)?)?;
        Ok(SsdOutput {
            box_encodings,
            scores,
        })
    }
}
