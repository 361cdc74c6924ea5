//! NHWC tensor operations the three networks are built from.
//!
//! Every tensor here is `[batch, height, width, channels]`, the layout the TensorFlow weights
//! were trained in, so a 1×1 convolution is one matmul with the stored `[cin, cout]` filter and
//! a k×k convolution is an im2col followed by one matmul.
//!
//! The hot spots have direct CPU kernels (candle custom ops, multi-threaded with rayon over
//! output rows; the arithmetic is in [`super::cpu_kernels`]): im2col, the 3×3 depthwise
//! convolution with its bias and activation fused, and bias + activation. On any
//! other device the same operations fall back to plain candle expressions (shifted slices,
//! `index_select`, `broadcast_mul`), which are slower but correct everywhere. Depthwise
//! convolutions never go through candle's grouped conv, which runs one conv per channel.

use candle_core::{
    CpuStorage, CustomOp1, CustomOp2, CustomOp3, D, Device, InplaceOp1, InplaceOp2, Layout, Result,
    Shape, Tensor, bail,
};
use rayon::prelude::*;

use super::cpu_kernels;

/// TensorFlow padding mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Padding {
    /// `out = ceil(in / stride)`, extra padding after (bottom/right).
    Same,
    /// No padding: `out = floor((in - k) / stride) + 1`.
    Valid,
}

/// Padding of one spatial dimension, `(before, after)`, the TensorFlow way.
pub fn tf_pad(input: usize, k: usize, stride: usize, padding: Padding) -> (usize, usize) {
    match padding {
        Padding::Valid => (0, 0),
        Padding::Same => {
            let out = input.div_ceil(stride);
            let total = ((out.saturating_sub(1)) * stride + k).saturating_sub(input);
            (total / 2, total - total / 2)
        }
    }
}

/// Resolved geometry of a sliding window over an NHWC tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub kh: usize,
    pub kw: usize,
    pub stride: usize,
    pub top: usize,
    pub bottom: usize,
    pub left: usize,
    pub right: usize,
}

impl Window {
    /// Window of size `kh×kw` over an `h×w` input with TF padding.
    pub fn new(h: usize, w: usize, kh: usize, kw: usize, stride: usize, padding: Padding) -> Self {
        let (top, bottom) = tf_pad(h, kh, stride, padding);
        let (left, right) = tf_pad(w, kw, stride, padding);
        Self {
            kh,
            kw,
            stride,
            top,
            bottom,
            left,
            right,
        }
    }

    /// Output size for an `h×w` input; an error if the window does not fit.
    pub fn out_hw(&self, h: usize, w: usize) -> Result<(usize, usize)> {
        let hp = h + self.top + self.bottom;
        let wp = w + self.left + self.right;
        if hp < self.kh || wp < self.kw || self.stride == 0 {
            bail!(
                "window {}x{} does not fit a {h}x{w} input",
                self.kh,
                self.kw
            );
        }
        Ok((
            (hp - self.kh) / self.stride + 1,
            (wp - self.kw) / self.stride + 1,
        ))
    }

    /// Input coordinate of output `o` and tap `k`, or `None` when it falls in the padding.
    #[inline]
    fn src(o: usize, k: usize, stride: usize, before: usize, size: usize) -> Option<usize> {
        (o * stride + k).checked_sub(before).filter(|&i| i < size)
    }

    /// Input row of output row `oy` and tap row `ky` over `h` rows; `None` in the padding.
    #[inline]
    pub(crate) fn src_y(&self, oy: usize, ky: usize, h: usize) -> Option<usize> {
        Self::src(oy, ky, self.stride, self.top, h)
    }

    /// Input column of output column `ox` and tap column `kx` over `w` columns.
    #[inline]
    pub(crate) fn src_x(&self, ox: usize, kx: usize, w: usize) -> Option<usize> {
        Self::src(ox, kx, self.stride, self.left, w)
    }
}

/// Activation fused after a bias add.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Act {
    None,
    Relu,
    Relu6,
}

impl Act {
    /// Applies the activation to every value (one loop per kind, so each vectorises).
    #[inline(always)]
    pub(crate) fn apply_slice(self, values: &mut [f32]) {
        match self {
            Act::None => {}
            Act::Relu => values.iter_mut().for_each(|v| *v = v.max(0.0)),
            Act::Relu6 => values.iter_mut().for_each(|v| *v = v.clamp(0.0, 6.0)),
        }
    }

    fn apply_tensor(self, x: Tensor) -> Result<Tensor> {
        match self {
            Act::None => Ok(x),
            Act::Relu => x.relu(),
            Act::Relu6 => x.clamp(0f32, 6f32),
        }
    }
}

/// The values of a contiguous f32 CPU tensor.
pub(crate) fn cpu_f32<'a>(
    storage: &'a CpuStorage,
    layout: &Layout,
    what: &str,
) -> Result<&'a [f32]> {
    let data = storage.as_slice::<f32>()?;
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => bail!("{what}: input must be contiguous"),
    }
}

/// The values of a contiguous f32 CPU tensor, for an in-place op.
fn cpu_f32_mut<'a>(
    storage: &'a mut CpuStorage,
    layout: &Layout,
    what: &str,
) -> Result<&'a mut [f32]> {
    let Some((start, end)) = layout.contiguous_offsets() else {
        bail!("{what}: input must be contiguous");
    };
    let CpuStorage::F32(data) = storage else {
        bail!("{what}: input must be f32");
    };
    Ok(&mut data[start..end])
}

// ------------------------------------------------------------------------------------ im2col

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
        let mut out = vec![0f32; b * ho * wo * k];
        if out.is_empty() {
            return Ok((CpuStorage::F32(out), Shape::from((b, ho, wo, k))));
        }
        out.par_chunks_mut(wo * k)
            .enumerate()
            .for_each(|(row, dst)| {
                let (bi, oy) = (row / ho, row % ho);
                for ky in 0..win.kh {
                    let Some(iy) = Window::src(oy, ky, win.stride, win.top, h) else {
                        continue;
                    };
                    let src_row = &x[(bi * h + iy) * w * c..(bi * h + iy + 1) * w * c];
                    for ox in 0..wo {
                        for kx in 0..win.kw {
                            if let Some(ix) = Window::src(ox, kx, win.stride, win.left, w) {
                                let d = ox * k + (ky * win.kw + kx) * c;
                                dst[d..d + c].copy_from_slice(&src_row[ix * c..(ix + 1) * c]);
                            }
                        }
                    }
                }
            });
        Ok((CpuStorage::F32(out), Shape::from((b, ho, wo, k))))
    }
}

/// Strided view of tap `(ky, kx)` of a padded input: `[B, ho, wo, C]`. Device-generic.
fn tap(xp: &Tensor, ky: usize, kx: usize, stride: usize, ho: usize, wo: usize) -> Result<Tensor> {
    let t = xp
        .narrow(1, ky, (ho - 1) * stride + 1)?
        .narrow(2, kx, (wo - 1) * stride + 1)?;
    if stride == 1 {
        return Ok(t);
    }
    let dev = xp.device();
    let rows: Vec<u32> = (0..ho).map(|i| (i * stride) as u32).collect();
    let cols: Vec<u32> = (0..wo).map(|i| (i * stride) as u32).collect();
    t.contiguous()?
        .index_select(&Tensor::new(rows.as_slice(), dev)?, 1)?
        .index_select(&Tensor::new(cols.as_slice(), dev)?, 2)
}

fn pad_nhwc(x: &Tensor, win: &Window) -> Result<Tensor> {
    x.pad_with_zeros(1, win.top, win.bottom)?
        .pad_with_zeros(2, win.left, win.right)
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

// --------------------------------------------------------------------------------- depthwise

struct DepthwiseBiasAct(Window, Act);

impl CustomOp3 for DepthwiseBiasAct {
    fn name(&self) -> &'static str {
        "depthwise-bias-act-nhwc"
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
        let (win, act) = (self.0, self.1);
        let kernel = cpu_kernels::Depthwise {
            x: cpu_f32(s1, l1, "depthwise input")?,
            filter: cpu_f32(s2, l2, "depthwise filter")?,
            bias: cpu_f32(s3, l3, "depthwise bias")?,
            act,
            h,
            w,
            c,
            win,
        };
        let (ho, wo) = win.out_hw(h, w)?;
        let mut out = vec![0f32; b * ho * wo * c];
        if out.is_empty() {
            return Ok((CpuStorage::F32(out), Shape::from((b, ho, wo, c))));
        }
        out.par_chunks_mut(wo * c)
            .enumerate()
            .for_each(|(row, dst)| kernel.row(row / ho, row % ho, dst));
        Ok((CpuStorage::F32(out), Shape::from((b, ho, wo, c))))
    }
}

/// `act(depthwise(x, filter) + bias)`: depthwise convolution (channel multiplier 1) of NHWC `x`
/// with a `[kh, kw, C]` filter, then a `[C]` bias and an activation, in one pass on the CPU.
pub fn depthwise_conv2d(
    x: &Tensor,
    filter: &Tensor,
    bias: &Tensor,
    act: Act,
    win: Window,
) -> Result<Tensor> {
    let (_, h, w, c) = x.dims4()?;
    let (kh, kw, fc) = filter.dims3()?;
    if (kh, kw, fc) != (win.kh, win.kw, c) {
        bail!(
            "depthwise: filter {kh}x{kw}x{fc} does not match window {}x{}x{c}",
            win.kh,
            win.kw
        );
    }
    if bias.dims() != [c] {
        bail!(
            "depthwise: bias {:?} does not match {c} channels",
            bias.dims()
        );
    }
    if matches!(x.device(), Device::Cpu) {
        return x.contiguous()?.apply_op3_no_bwd(
            &filter.contiguous()?,
            &bias.contiguous()?,
            &DepthwiseBiasAct(win, act),
        );
    }
    let (ho, wo) = win.out_hw(h, w)?;
    let xp = pad_nhwc(x, &win)?;
    let mut acc: Option<Tensor> = None;
    for ky in 0..kh {
        for kx in 0..kw {
            let weight = filter.get(ky)?.get(kx)?; // [C], broadcast over the last dim
            let term = tap(&xp, ky, kx, win.stride, ho, wo)?.broadcast_mul(&weight)?;
            acc = Some(match acc {
                None => term,
                Some(a) => (a + term)?,
            });
        }
    }
    match acc {
        Some(a) => bias_act(&a, bias, act),
        None => bail!("depthwise: empty filter"),
    }
}

// ------------------------------------------------------------------------- bias + activation

struct BiasAct(Act);

impl CustomOp2 for BiasAct {
    fn name(&self) -> &'static str {
        "bias-act"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = cpu_f32(s1, l1, "bias input")?;
        let bias = cpu_f32(s2, l2, "bias")?;
        let mut out = x.to_vec();
        par_bias_act(&mut out, bias, self.0);
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

/// [`cpu_kernels::bias_act_in_place`] over chunks of about 64k values, in parallel.
fn par_bias_act(data: &mut [f32], bias: &[f32], act: Act) {
    if let Some(per_chunk) = PAR_CHUNK.checked_div(bias.len()) {
        let len = per_chunk.max(1) * bias.len();
        data.par_chunks_mut(len)
            .for_each(|chunk| cpu_kernels::bias_act_in_place(chunk, bias, act));
    }
}

impl InplaceOp2 for BiasAct {
    fn name(&self) -> &'static str {
        "bias-act-inplace"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<()> {
        let bias = cpu_f32(s2, l2, "bias")?;
        par_bias_act(cpu_f32_mut(s1, l1, "bias-act")?, bias, self.0);
        Ok(())
    }
}

/// [`bias_act`] that overwrites `x` when it is a CPU tensor: only for tensors nobody else
/// holds (a fresh layer output). Saves an allocation the size of the activation, which on
/// large batches costs as much as the arithmetic (fresh pages must be faulted in and zeroed).
pub(crate) fn bias_act_owned(x: Tensor, bias: &Tensor, act: Act) -> Result<Tensor> {
    if matches!(x.device(), Device::Cpu) && x.is_contiguous() && bias.dims() == [x.dim(D::Minus1)?]
    {
        x.inplace_op2(bias, &BiasAct(act))?;
        return Ok(x);
    }
    bias_act(&x, bias, act)
}

/// `act(x + bias)` with `bias` of shape `[C]` broadcast over the last dimension.
pub fn bias_act(x: &Tensor, bias: &Tensor, act: Act) -> Result<Tensor> {
    let c = x.dim(D::Minus1)?;
    if bias.dims() != [c] {
        bail!("bias: shape {:?} does not match {c} channels", bias.dims());
    }
    if matches!(x.device(), Device::Cpu) {
        return x.contiguous()?.apply_op2_no_bwd(bias, &BiasAct(act));
    }
    act.apply_tensor(x.broadcast_add(bias)?)
}

// ----------------------------------------------------------------------------------- pooling

/// Max pooling (VALID) over NHWC.
pub fn max_pool(x: &Tensor, k: usize, stride: usize) -> Result<Tensor> {
    pool(x, k, stride, true)
}

/// Average pooling (VALID, divides by k²) over NHWC.
pub fn avg_pool(x: &Tensor, k: usize, stride: usize) -> Result<Tensor> {
    pool(x, k, stride, false)
}

struct Pool {
    k: usize,
    stride: usize,
    max: bool,
}

impl CustomOp1 for Pool {
    fn name(&self) -> &'static str {
        "pool-nhwc"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (b, h, w, c) = layout.shape().dims4()?;
        let win = Window::new(h, w, self.k, self.k, self.stride, Padding::Valid);
        let (ho, wo) = win.out_hw(h, w)?;
        let kernel = cpu_kernels::Pool {
            x: cpu_f32(storage, layout, "pool input")?,
            h,
            w,
            c,
            k: self.k,
            stride: self.stride,
            max: self.max,
        };
        let mut out = vec![0f32; b * ho * wo * c];
        if !out.is_empty() {
            out.par_chunks_mut(wo * c)
                .enumerate()
                .for_each(|(row, dst)| kernel.row(row / ho, row % ho, dst));
        }
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
        return x.contiguous()?.apply_op1_no_bwd(&Pool { k, stride, max });
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

// ------------------------------------------------------------------- residual add + activation

struct AddAct(Act);

impl InplaceOp2 for AddAct {
    fn name(&self) -> &'static str {
        "add-act-inplace"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<()> {
        let other = cpu_f32(s2, l2, "add operand")?;
        let data = cpu_f32_mut(s1, l1, "add-act")?;
        if data.len() != other.len() {
            bail!("add-act: {} values plus {}", data.len(), other.len());
        }
        data.par_chunks_mut(PAR_CHUNK)
            .zip(other.par_chunks(PAR_CHUNK))
            .for_each(|(d, o)| cpu_kernels::add_act_in_place(d, o, self.0));
        Ok(())
    }
}

struct ActOnly(Act);

impl InplaceOp1 for ActOnly {
    fn name(&self) -> &'static str {
        "act-inplace"
    }

    fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> Result<()> {
        cpu_f32_mut(storage, layout, "act")?
            .par_chunks_mut(PAR_CHUNK)
            .for_each(|d| cpu_kernels::act_in_place(d, self.0));
        Ok(())
    }
}

/// Values per parallel chunk of the element-wise kernels.
const PAR_CHUNK: usize = 64 * 1024;

/// `act(y + x)`, overwriting `y` when it is a CPU tensor: only for a `y` nobody else holds (a
/// fresh layer output), like [`bias_act_owned`]. Runs on rayon rather than candle's own
/// element-wise thread pool, whose spinning workers would compete with the matmuls on a
/// small machine.
pub(crate) fn add_act_owned(y: Tensor, x: &Tensor, act: Act) -> Result<Tensor> {
    if y.dims() != x.dims() {
        bail!("add: shapes {:?} and {:?} differ", y.dims(), x.dims());
    }
    if matches!(y.device(), Device::Cpu) && y.is_contiguous() {
        y.inplace_op2(&x.contiguous()?, &AddAct(act))?;
        return Ok(y);
    }
    act.apply_tensor((y + x)?)
}

/// `act(x)` as a new tensor (on the CPU: a copy, then the activation in place).
pub(crate) fn act(x: &Tensor, act: Act) -> Result<Tensor> {
    if matches!(x.device(), Device::Cpu) {
        let y = x.contiguous()?.copy()?;
        y.inplace_op1(&ActOnly(act))?;
        return Ok(y);
    }
    act.apply_tensor(x.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(shape: &[usize]) -> Tensor {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n)
            .map(|i| ((i * 37 % 101) as f32) / 50.0 - 1.0)
            .collect();
        Tensor::from_vec(v, shape, &Device::Cpu).expect("tensor")
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .and_then(|d| d.abs())
            .and_then(|d| d.flatten_all())
            .and_then(|d| d.max(0))
            .and_then(|d| d.to_scalar::<f32>())
            .expect("diff")
    }

    /// The CPU kernels agree with the device-generic expressions used on CUDA.
    #[test]
    fn cpu_kernels_match_generic_paths() {
        // 88 channels: one 64-wide block, one 16-wide block and 8 single channels.
        let c = 88;
        let x = seq(&[2, 9, 8, c]);
        let dw = seq(&[3, 3, c]);
        let dw_bias = seq(&[c]);
        for (stride, padding) in [(1, Padding::Same), (2, Padding::Same), (2, Padding::Valid)] {
            let win = Window::new(9, 8, 3, 3, stride, padding);
            let (ho, wo) = win.out_hw(9, 8).expect("fits");
            let fast = depthwise_conv2d(&x, &dw, &dw_bias, Act::Relu6, win).expect("fast");
            let xp = pad_nhwc(&x, &win).expect("pad");
            let mut slow = Tensor::zeros((2, ho, wo, c), candle_core::DType::F32, &Device::Cpu)
                .expect("zeros");
            for ky in 0..3 {
                for kx in 0..3 {
                    let wt = dw.get(ky).and_then(|t| t.get(kx)).expect("tap");
                    let t = tap(&xp, ky, kx, stride, ho, wo).expect("tap");
                    slow = (slow + t.broadcast_mul(&wt).expect("mul")).expect("add");
                }
            }
            let slow = slow
                .broadcast_add(&dw_bias)
                .and_then(|t| t.clamp(0f32, 6f32))
                .expect("bias");
            assert!(max_diff(&fast, &slow) < 1e-5, "depthwise stride {stride}");

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
        let bias = seq(&[c]);
        let fused = bias_act(&x, &bias, Act::Relu6).expect("fused");
        let generic = x
            .broadcast_add(&bias)
            .and_then(|t| t.clamp(0f32, 6f32))
            .expect("generic");
        assert_eq!(max_diff(&fused, &generic), 0.0);
    }

    /// The CPU pooling and residual kernels agree with the device-generic expressions.
    #[test]
    fn cpu_pool_and_add_match_generic_paths() {
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
        let y = seq(&[2, 15, 15, 40]).affine(-0.5, 0.25).expect("y");
        let generic = (&y + &x).and_then(|t| t.relu()).expect("generic");
        let fused = add_act_owned(y, &x, Act::Relu).expect("fused");
        assert_eq!(max_diff(&fused, &generic), 0.0);
        let relu = act(&x, Act::Relu).expect("act");
        assert_eq!(max_diff(&relu, &x.relu().expect("relu")), 0.0);
    }

    #[test]
    fn tf_same_padding() {
        assert_eq!(tf_pad(512, 3, 2, Padding::Same), (0, 1));
        assert_eq!(tf_pad(7, 3, 1, Padding::Same), (1, 1));
        assert_eq!(tf_pad(2, 3, 2, Padding::Same), (0, 1));
        assert_eq!(tf_pad(35, 3, 2, Padding::Valid), (0, 0));
        let win = Window::new(35, 35, 3, 3, 2, Padding::Valid);
        assert_eq!(win.out_hw(35, 35).expect("fits"), (17, 17));
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
