//! Window geometry: TensorFlow padding, the sliding window over an NHWC tensor, and the
//! strided taps of a padded input that the device-generic fallbacks are built from.

use candle_core::{Result, Tensor, bail};

/// Padding mode: TensorFlow's two, and the fixed padding of ONNX/PyTorch convolutions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Padding {
    /// `out = ceil(in / stride)`, extra padding after (bottom/right).
    Same,
    /// No padding: `out = floor((in - k) / stride) + 1`.
    Valid,
    /// The same number of zeros before and after each dimension (ONNX `pads`). For a 3×3
    /// stride-2 window over an even size this pads `(1, 1)` where `Same` pads `(0, 1)`.
    Explicit(usize),
}

/// Padding of one spatial dimension, `(before, after)`, the TensorFlow way.
pub fn tf_pad(input: usize, k: usize, stride: usize, padding: Padding) -> (usize, usize) {
    match padding {
        Padding::Valid => (0, 0),
        Padding::Explicit(p) => (p, p),
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

/// Strided view of tap `(ky, kx)` of a padded input: `[B, ho, wo, C]`. Device-generic.
pub(super) fn tap(
    xp: &Tensor,
    ky: usize,
    kx: usize,
    stride: usize,
    ho: usize,
    wo: usize,
) -> Result<Tensor> {
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

/// `x` with the window's zero padding around its rows and columns.
pub(super) fn pad_nhwc(x: &Tensor, win: &Window) -> Result<Tensor> {
    x.pad_with_zeros(1, win.top, win.bottom)?
        .pad_with_zeros(2, win.left, win.right)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tf_same_padding() {
        assert_eq!(tf_pad(512, 3, 2, Padding::Same), (0, 1));
        assert_eq!(tf_pad(7, 3, 1, Padding::Same), (1, 1));
        assert_eq!(tf_pad(2, 3, 2, Padding::Same), (0, 1));
        assert_eq!(tf_pad(35, 3, 2, Padding::Valid), (0, 0));
        assert_eq!(tf_pad(512, 3, 2, Padding::Explicit(1)), (1, 1));
        let onnx = Window::new(64, 48, 3, 3, 2, Padding::Explicit(1));
        assert_eq!(onnx.out_hw(64, 48).expect("fits"), (32, 24));
        let win = Window::new(35, 35, 3, 3, 2, Padding::Valid);
        assert_eq!(win.out_hw(35, 35).expect("fits"), (17, 17));
    }
}
