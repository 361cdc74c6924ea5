//! Convolution layers shared by the three networks: a regular convolution with a fused bias
//! and activation, a depthwise convolution with an optional (batch-norm folded) bias, and the
//! two joined into a depthwise-separable convolution ([`separable`]).
//!
//! Filters are kept in the TensorFlow layouts of the safetensors files (HWIO `[kh,kw,cin,cout]`
//! and depthwise `[kh,kw,C,1]`), which are exactly what the NHWC kernels of [`crate::kernels`]
//! need.

use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;

use crate::kernels::{self, Act, Padding, Separable, Stage, Window};

/// `act(conv2d(x, filter) + bias)` over NHWC input.
#[derive(Debug, Clone)]
pub struct Conv {
    filter: Tensor, // [kh*kw*cin, cout]
    bias: Tensor,   // [cout]
    k: usize,
    stride: usize,
    padding: Padding,
    act: Act,
}

impl Conv {
    /// Builds the layer from an HWIO filter `[k, k, cin, cout]` and a `[cout]` bias.
    pub fn new(
        filter: Tensor,
        bias: Tensor,
        stride: usize,
        padding: Padding,
        act: Act,
    ) -> Result<Self> {
        let (kh, kw, cin, cout) = filter.dims4()?;
        if kh != kw {
            candle_core::bail!("conv: non-square {kh}x{kw} filters are not supported");
        }
        if bias.dims() != [cout] {
            candle_core::bail!("conv: bias {:?} does not match {cout} outputs", bias.dims());
        }
        let filter = filter.reshape((kh * kw * cin, cout))?;
        Ok(Self {
            filter,
            bias,
            k: kh,
            stride,
            padding,
            act,
        })
    }

    /// Loads `{filter_name}` `[k,k,cin,cout]` and `{bias_name}` `[cout]` from `vb`.
    #[allow(clippy::too_many_arguments)]
    pub fn load(
        vb: &VarBuilder,
        filter_name: &str,
        bias_name: &str,
        (k, cin, cout): (usize, usize, usize),
        stride: usize,
        padding: Padding,
        act: Act,
    ) -> Result<Self> {
        let filter = vb.get((k, k, cin, cout), filter_name)?;
        let bias = vb.get(cout, bias_name)?;
        Self::new(filter, bias, stride, padding, act)
    }

    /// Multiplies each output channel by `scale` and then adds `shift` (folds an affine /
    /// batch-norm layer that follows the convolution).
    pub fn fold_affine(mut self, scale: &Tensor, shift: &Tensor) -> Result<Self> {
        self.filter = self.filter.broadcast_mul(scale)?;
        self.bias = ((&self.bias * scale)? + shift)?;
        Ok(self)
    }

    pub fn out_channels(&self) -> Result<usize> {
        self.filter.dim(1)
    }

    /// Whether this is a 1×1 stride-1 convolution (a matmul over pixels).
    pub fn is_pointwise(&self) -> bool {
        self.k == 1 && self.stride == 1
    }
}

impl Module for Conv {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (_, h, w, _) = x.dims4()?;
        let win = Window::new(h, w, self.k, self.k, self.stride, self.padding);
        let y = kernels::conv2d(x, &self.filter, win)?;
        kernels::bias_act_owned(y, &self.bias, self.act)
    }
}

/// 3×3 depthwise convolution (SAME padding unless [`DepthwiseConv::with_padding`] says
/// otherwise), then a bias and an activation (a zero bias and none when the layer has no
/// batch norm), fused on the CPU.
#[derive(Debug, Clone)]
pub struct DepthwiseConv {
    filter: Tensor, // [3, 3, C]
    bias: Tensor,   // [C]
    stride: usize,
    padding: Padding,
    act: Act,
}

impl DepthwiseConv {
    /// Builds the layer from a `[3, 3, C]` filter and a `[C]` bias.
    pub fn new(filter: Tensor, bias: Tensor, stride: usize, act: Act) -> Result<Self> {
        let (kh, kw, c) = filter.dims3()?;
        if (kh, kw) != (3, 3) || bias.dims() != [c] {
            candle_core::bail!(
                "depthwise: expected a [3,3,C] filter and a [C] bias, got {:?} and {:?}",
                filter.dims(),
                bias.dims()
            );
        }
        Ok(Self {
            filter,
            bias,
            stride,
            padding: Padding::Same,
            act,
        })
    }

    /// The same layer with its window padded by `padding`.
    pub fn with_padding(self, padding: Padding) -> Self {
        Self { padding, ..self }
    }

    /// Loads a TF depthwise filter `[3,3,C,1]` named `name`.
    pub fn load(vb: &VarBuilder, name: &str, channels: usize, stride: usize) -> Result<Self> {
        let filter = vb
            .get((3, 3, channels, 1), name)?
            .reshape((3, 3, channels))?;
        let bias = Tensor::zeros(channels, filter.dtype(), filter.device())?;
        Self::new(filter, bias, stride, Act::None)
    }

    /// Folds an inference batch norm `y = (x - mean) / sqrt(var + eps) * gamma + beta` into
    /// the filter and the bias, then applies `act`.
    pub fn with_batch_norm(mut self, vb: &VarBuilder, eps: f64, act: Act) -> Result<Self> {
        let c = self.filter.dim(2)?;
        let names = ["gamma", "beta", "moving_mean", "moving_variance"];
        let (scale, shift) = batch_norm_affine(vb, c, eps, names)?;
        self.filter = self.filter.broadcast_mul(&scale)?;
        self.bias = shift;
        self.act = act;
        Ok(self)
    }
}

impl DepthwiseConv {
    /// The 3×3 window of this layer over an `h×w` input.
    pub fn window(&self, h: usize, w: usize) -> Window {
        Window::new(h, w, 3, 3, self.stride, self.padding)
    }
}

impl Module for DepthwiseConv {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (_, h, w, _) = x.dims4()?;
        kernels::depthwise_conv2d(x, &self.filter, &self.bias, self.act, self.window(h, w))
    }
}

/// An inference batch norm over `c` channels as `y = x · scale + shift`, from its
/// `[gamma, beta, mean, variance]` tensors named `names` in `vb`.
pub fn batch_norm_affine(
    vb: &VarBuilder,
    c: usize,
    eps: f64,
    names: [&str; 4],
) -> Result<(Tensor, Tensor)> {
    let [gamma, beta, mean, var] = names.map(|name| vb.get(c, name));
    let scale = gamma?.broadcast_div(&(var? + eps)?.sqrt()?)?;
    let shift = (beta? - (mean? * &scale)?)?;
    Ok((scale, shift))
}

/// `depthwise` followed by `pointwise`, which must be a 1×1 stride-1 convolution: one
/// depthwise-separable convolution, fused on the CPU (see [`Separable`]).
pub fn separable(depthwise: DepthwiseConv, pointwise: Conv) -> Result<Separable> {
    if !pointwise.is_pointwise() {
        candle_core::bail!("separable: the second layer must be a 1x1 stride-1 convolution");
    }
    let padding = depthwise.padding;
    Separable::new(
        Stage {
            filter: depthwise.filter,
            bias: depthwise.bias,
            act: depthwise.act,
        },
        depthwise.stride,
        Stage {
            filter: pointwise.filter,
            bias: pointwise.bias,
            act: pointwise.act,
        },
    )
    .map(|layer| layer.with_padding(padding))
}
