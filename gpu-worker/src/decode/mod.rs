//! Safe image decoding for untrusted bytes: format sniffing, size and allocation limits,
//! EXIF orientation, conversion to RGB8. A failure is an error value, never a panic, and
//! oversized images are refused from their header before any pixel buffer is allocated.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader, Limits, RgbImage};

/// Largest accepted width or height.
pub const MAX_DIMENSION: u32 = 16_384;
/// Largest allocation the decoder may make, and the largest RGB8 result, in bytes.
pub const MAX_ALLOC: u64 = 512 * 1024 * 1024;

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

/// Default decoding limits.
pub fn limits() -> Limits {
    let mut l = Limits::default();
    l.max_image_width = Some(MAX_DIMENSION);
    l.max_image_height = Some(MAX_DIMENSION);
    l.max_alloc = Some(MAX_ALLOC);
    l
}

/// Decodes `bytes` (JPEG, PNG, WebP, GIF, BMP) into upright RGB8 pixels.
pub fn decode_image(bytes: &[u8]) -> Result<RgbImage, DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::Empty);
    }
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| DecodeError::Corrupt(e.to_string()))?;
    if reader.format().is_none() {
        return Err(DecodeError::UnknownFormat);
    }
    if reader.format() == Some(ImageFormat::Jpeg) && !jpeg_is_complete(bytes) {
        // zune-jpeg fills a cut-off scan with grey instead of failing: refuse it here.
        return Err(DecodeError::Corrupt(
            "truncated JPEG: no end-of-image marker".into(),
        ));
    }
    reader.limits(limits());
    let mut decoder = reader.into_decoder()?;
    let (w, h) = decoder.dimensions();
    if w == 0 || h == 0 {
        return Err(DecodeError::Corrupt(format!("{w}x{h} image has no pixels")));
    }
    let rgb_bytes = u64::from(w) * u64::from(h) * 3;
    if rgb_bytes > MAX_ALLOC {
        return Err(DecodeError::TooLarge(format!(
            "{w}x{h} needs {rgb_bytes} bytes as RGB8"
        )));
    }
    // A missing or unreadable EXIF block is not an error: the image is then taken as upright.
    let orientation = decoder.orientation().ok();
    let mut img = DynamicImage::from_decoder(decoder)?;
    if let Some(o) = orientation {
        img.apply_orientation(o);
    }
    Ok(match img {
        DynamicImage::ImageRgb8(rgb) => rgb,
        other => other.to_rgb8(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_huge_png_from_header() {
        let e = decode_image(&facematch_core::testing::png_claiming(100_000, 100_000))
            .expect_err("must refuse");
        assert!(matches!(e, DecodeError::TooLarge(_)), "{e}");
    }

    #[test]
    fn clear_errors_for_bad_input() {
        assert!(matches!(decode_image(&[]), Err(DecodeError::Empty)));
        assert!(matches!(
            decode_image(b"hello, not an image"),
            Err(DecodeError::UnknownFormat)
        ));
        let mut png = Vec::new();
        RgbImage::from_pixel(8, 8, image::Rgb([1, 2, 3]))
            .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
            .expect("encode");
        let ok = decode_image(&png).expect("valid png");
        assert_eq!(
            (ok.width(), ok.height(), ok.get_pixel(0, 0).0),
            (8, 8, [1, 2, 3])
        );
        let e = decode_image(&png[..png.len() / 2]).expect_err("truncated");
        assert!(matches!(e, DecodeError::Corrupt(_)), "{e}");
    }
}
