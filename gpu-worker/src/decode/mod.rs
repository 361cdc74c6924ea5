//! Safe image decoding for untrusted bytes: format sniffing, size and allocation limits,
//! EXIF orientation, conversion to RGB8. A failure is an error value, never a panic, and
//! oversized images are refused from their header before any pixel buffer is allocated.
//!
//! Sizes are counted on the *canvas* the header declares (a 43-byte GIF may declare a
//! 16000×3000 screen), against a pixel budget ([`DecodeLimits`]), and on every frame of a GIF,
//! WebP or APNG at the frame's own size ([`facematch_core::image_frames`]: a 10×10 GIF screen may hold an
//! 11000×11000 frame). A JPEG must hold every coefficient its header declares ([`jpeg_scan`],
//! sequential and progressive): decoders fill a cut-off scan, or scans that never came, with
//! grey, even when an end-of-image marker was appended, and a face search on filler is a wrong
//! answer; it is then decoded by zune-jpeg in strict mode, so corrupt entropy data fails too.
//! PNG is decoded straight to 8 bits per sample (16-bit samples are stripped while decoding),
//! so no 16-bit buffer is ever allocated: at most 5 bytes per pixel.

mod huffman;
mod jpeg_blocks;
mod jpeg_scan;

use std::io::Cursor;

use image::{
    DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader, Limits, RgbImage,
    metadata::Orientation,
};
use zune_jpeg::zune_core::{bytestream::ZCursor, colorspace::ColorSpace, options::DecoderOptions};

/// Largest accepted width or height (the gateway's too).
pub const MAX_DIMENSION: u32 = facematch_core::image_limits::MAX_IMAGE_SIDE;
/// Largest allocation the decoder may make, and the largest RGB8 result, in bytes.
pub const MAX_ALLOC: u64 = 512 * 1024 * 1024;
/// Default pixel budget of one image, on its canvas (the gateway's too).
pub const MAX_PIXELS: u64 = facematch_core::image_limits::MAX_IMAGE_PIXELS;

/// Why an image could not be decoded. All are permanent for that input.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("empty input: zero bytes")]
    Empty,
    #[error("not an image: unrecognised or unsupported format")]
    UnknownFormat,
    #[error("image too large: {0}")]
    TooLarge(String),
    #[error("corrupt or truncated image: {0}")]
    Corrupt(String),
    #[error("unsupported image: {0}")]
    Unsupported(String),
}

impl From<ImageError> for DecodeError {
    fn from(e: ImageError) -> Self {
        match e {
            ImageError::Limits(l) => DecodeError::TooLarge(l.to_string()),
            ImageError::Unsupported(u) => DecodeError::Unsupported(u.to_string()),
            ImageError::Decoding(d) => DecodeError::Corrupt(d.to_string()),
            ImageError::IoError(io) => DecodeError::Corrupt(io.to_string()),
            other => DecodeError::Corrupt(other.to_string()),
        }
    }
}

impl From<zune_jpeg::errors::DecodeErrors> for DecodeError {
    fn from(e: zune_jpeg::errors::DecodeErrors) -> Self {
        use zune_jpeg::errors::DecodeErrors;
        match e {
            DecodeErrors::LargeDimensions(_) => DecodeError::TooLarge(e.to_string()),
            DecodeErrors::Unsupported(_) => DecodeError::Unsupported(e.to_string()),
            other => DecodeError::Corrupt(format!("JPEG: {other}")),
        }
    }
}

impl From<png::DecodingError> for DecodeError {
    fn from(e: png::DecodingError) -> Self {
        match e {
            png::DecodingError::LimitsExceeded => DecodeError::TooLarge(e.to_string()),
            other => DecodeError::Corrupt(format!("PNG: {other}")),
        }
    }
}

/// How much one image may cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Largest canvas, in pixels (width × height as the header declares them).
    pub max_pixels: u64,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        Self {
            max_pixels: MAX_PIXELS,
        }
    }
}

impl DecodeLimits {
    /// Refuses a canvas that is empty or over the limits, before any pixel is allocated.
    fn check(&self, w: u32, h: u32) -> Result<(), DecodeError> {
        if w == 0 || h == 0 {
            return Err(DecodeError::Corrupt(format!("{w}x{h} image has no pixels")));
        }
        self.over("canvas", w, h).map_or(Ok(()), Err)
    }

    /// Refuses a GIF, WebP or APNG with a frame over the limits, from its container alone.
    fn check_frames(&self, bytes: &[u8]) -> Result<(), DecodeError> {
        match facematch_core::image_frames::oversized_frame(bytes, |w, h| {
            self.over("frame", w, h).is_none()
        }) {
            Some((w, h)) => Err(self
                .over("frame", w, h)
                .expect("an oversized frame is over the limits: this is a bug")),
            None => Ok(()),
        }
    }

    /// Why `w`×`h` pixels (of a `what`) are over the limits, if they are.
    fn over(&self, what: &str, w: u32, h: u32) -> Option<DecodeError> {
        if w > MAX_DIMENSION || h > MAX_DIMENSION {
            return Some(DecodeError::TooLarge(format!(
                "{w}x{h} {what} exceeds {MAX_DIMENSION} pixels a side"
            )));
        }
        let pixels = u64::from(w) * u64::from(h);
        (pixels > self.max_pixels || pixels * 3 > MAX_ALLOC).then(|| {
            DecodeError::TooLarge(format!(
                "{w}x{h} {what} is {:.1} Mpx, over the budget of {:.1} Mpx per image",
                pixels as f64 / 1e6,
                self.max_pixels.min(MAX_ALLOC / 3) as f64 / 1e6
            ))
        })
    }
}

/// Whether an end-of-image marker (`FF D9`) follows the last start-of-scan (`FF DA`).
/// Entropy-coded data stuffs every `FF` byte, so neither marker occurs inside a scan.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let last = |m: u8| bytes.windows(2).rposition(|w| w == [0xFF, m]);
    match (last(0xDA), last(0xD9)) {
        (Some(sos), Some(eoi)) => eoi > sos,
        (None, Some(_)) => true,
        _ => false,
    }
}

/// Default decoding limits of the image crate (formats other than JPEG and PNG).
pub fn limits() -> Limits {
    let mut l = Limits::default();
    l.max_image_width = Some(MAX_DIMENSION);
    l.max_image_height = Some(MAX_DIMENSION);
    l.max_alloc = Some(MAX_ALLOC);
    l
}

fn reader(bytes: &[u8]) -> Result<ImageReader<Cursor<&[u8]>>, DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::Empty);
    }
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| DecodeError::Corrupt(e.to_string()))?;
    if reader.format().is_none() {
        return Err(DecodeError::UnknownFormat);
    }
    Ok(reader)
}

/// The canvas `bytes` declare (width, height), read from the header only.
pub fn canvas_size(bytes: &[u8]) -> Result<(u32, u32), DecodeError> {
    let mut reader = reader(bytes)?;
    reader.limits(limits());
    Ok(reader.into_decoder()?.dimensions())
}

/// Decodes `bytes` (JPEG, PNG, WebP, GIF, BMP) into upright RGB8 pixels, within the default
/// [`DecodeLimits`].
pub fn decode_image(bytes: &[u8]) -> Result<RgbImage, DecodeError> {
    decode_image_with(bytes, &DecodeLimits::default())
}

/// Decodes `bytes` into upright RGB8 pixels, refusing a canvas or a frame over `budget`.
pub fn decode_image_with(bytes: &[u8], budget: &DecodeLimits) -> Result<RgbImage, DecodeError> {
    let mut reader = reader(bytes)?;
    budget.check_frames(bytes)?;
    let (mut img, orientation) = match reader.format() {
        Some(ImageFormat::Jpeg) => decode_jpeg(bytes, budget)?,
        Some(ImageFormat::Png) => decode_png(bytes, budget)?,
        _ => {
            reader.limits(limits());
            let mut decoder = reader.into_decoder()?;
            let (w, h) = decoder.dimensions();
            budget.check(w, h)?;
            // A missing or unreadable EXIF block is not an error: the image is then upright.
            let orientation = decoder.orientation().ok();
            let rgb = match DynamicImage::from_decoder(decoder)? {
                DynamicImage::ImageRgb8(rgb) => rgb,
                other => other.to_rgb8(),
            };
            (rgb, orientation)
        }
    };
    if let Some(o) = orientation {
        let mut dynamic = DynamicImage::ImageRgb8(std::mem::take(&mut img));
        dynamic.apply_orientation(o);
        img = match dynamic {
            DynamicImage::ImageRgb8(rgb) => rgb,
            other => other.to_rgb8(),
        };
    }
    Ok(img)
}

type Decoded = (RgbImage, Option<Orientation>);

/// zune-jpeg in strict mode, straight to RGB.
fn decode_jpeg(bytes: &[u8], budget: &DecodeLimits) -> Result<Decoded, DecodeError> {
    if !jpeg_is_complete(bytes) {
        return Err(DecodeError::Corrupt(
            "truncated JPEG: no end-of-image marker".into(),
        ));
    }
    jpeg_scan::check_scans(bytes, budget)?;
    let options = DecoderOptions::default()
        .set_strict_mode(true)
        .jpeg_set_max_scans(jpeg_scan::MAX_SCANS)
        .jpeg_set_out_colorspace(ColorSpace::RGB)
        .set_max_width(MAX_DIMENSION as usize)
        .set_max_height(MAX_DIMENSION as usize);
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), options);
    decoder.decode_headers()?;
    let info = decoder
        .info()
        .ok_or_else(|| DecodeError::Corrupt("JPEG without a frame header".into()))?;
    let (w, h) = (u32::from(info.width), u32::from(info.height));
    budget.check(w, h)?;
    let orientation = decoder.exif().and_then(|e| Orientation::from_exif_chunk(e));
    let pixels = decoder.decode()?;
    let img = RgbImage::from_raw(w, h, pixels)
        .ok_or_else(|| DecodeError::Corrupt(format!("JPEG: {w}x{h} decoded to a short buffer")))?;
    Ok((img, orientation))
}

/// The png crate, expanded and stripped to 8 bits while decoding, then RGB in place.
fn decode_png(bytes: &[u8], budget: &DecodeLimits) -> Result<Decoded, DecodeError> {
    let mut decoder = png::Decoder::new_with_limits(
        Cursor::new(bytes),
        png::Limits {
            bytes: usize::try_from(MAX_ALLOC).unwrap_or(usize::MAX),
        },
    );
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info()?;
    let (w, h) = (reader.info().width, reader.info().height);
    budget.check(w, h)?;
    let orientation = reader
        .info()
        .exif_metadata
        .as_deref()
        .and_then(Orientation::from_exif_chunk);
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| DecodeError::TooLarge(format!("{w}x{h} PNG")))?;
    let mut buf = vec![0u8; size];
    let frame = reader.next_frame(&mut buf)?;
    buf.truncate(frame.buffer_size());
    let n = (w as usize) * (h as usize);
    let rgb = match reader.output_color_type().0 {
        png::ColorType::Rgb => buf,
        png::ColorType::Rgba => {
            // Drop alpha in place: the write index (3i) never passes the read index (4i).
            for i in 0..n {
                buf.copy_within(4 * i..4 * i + 3, 3 * i);
            }
            buf.truncate(3 * n);
            buf
        }
        png::ColorType::Grayscale => buf.iter().flat_map(|&v| [v, v, v]).collect(),
        png::ColorType::GrayscaleAlpha => buf
            .chunks_exact(2)
            .flat_map(|ga| [ga[0], ga[0], ga[0]])
            .collect(),
        png::ColorType::Indexed => {
            return Err(DecodeError::Unsupported("PNG palette not expanded".into()));
        }
    };
    let img = RgbImage::from_raw(w, h, rgb)
        .ok_or_else(|| DecodeError::Corrupt(format!("PNG: {w}x{h} decoded to a short buffer")))?;
    Ok((img, orientation))
}

#[cfg(test)]
mod tests;
