//! Is it an image? Magic-byte sniffing plus header dimensions, without decoding pixels: the
//! canvas the header declares, and every frame of a GIF, WebP or APNG at its own size (a 10×10
//! GIF screen may hold an 11000×11000 frame), against the workers' pixel budget. The frame walk
//! is the workers' own ([`facematch_core::image_frames`]), so what is accepted here is never
//! refused there for its size.

use std::io::Cursor;

use facematch_core::{
    image_frames,
    image_limits::{self, MAX_IMAGE_SIDE},
};
use image::{ImageFormat, ImageReader};

/// A recognised image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sniffed {
    pub mime: &'static str,
    pub width: u32,
    pub height: u32,
}

/// Why bytes are not an acceptable image.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SniffError {
    #[error("not a JPEG, PNG, WebP, GIF or BMP image")]
    UnknownFormat,
    #[error("the {0} header cannot be read: {1}")]
    BadHeader(&'static str, String),
    #[error(
        "{width}×{height} is too large (at most {MAX_IMAGE_SIDE} per side and {max_pixels} pixels)"
    )]
    TooLarge {
        width: u32,
        height: u32,
        max_pixels: u64,
    },
    #[error("the image has no pixels ({width}×{height})")]
    Empty { width: u32, height: u32 },
}

fn format_of(bytes: &[u8]) -> Option<(ImageFormat, &'static str)> {
    let starts = |magic: &[u8]| bytes.starts_with(magic);
    if starts(&[0xFF, 0xD8, 0xFF]) {
        Some((ImageFormat::Jpeg, "image/jpeg"))
    } else if starts(b"\x89PNG\r\n\x1a\n") {
        Some((ImageFormat::Png, "image/png"))
    } else if starts(b"GIF87a") || starts(b"GIF89a") {
        Some((ImageFormat::Gif, "image/gif"))
    } else if bytes.len() >= 12 && starts(b"RIFF") && &bytes[8..12] == b"WEBP" {
        Some((ImageFormat::WebP, "image/webp"))
    } else if starts(b"BM") {
        Some((ImageFormat::Bmp, "image/bmp"))
    } else {
        None
    }
}

/// A PNG's size straight from its IHDR chunk (the decoder wants more of the file first).
fn png_ihdr_dimensions(bytes: &[u8]) -> Option<(u32, u32)> {
    if bytes.len() < 24 || &bytes[12..16] != b"IHDR" {
        return None;
    }
    let be =
        |at: usize| u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    Some((be(16), be(20)))
}

/// Sniffs the format from magic bytes and reads the dimensions from the header only; refuses
/// an image over `max_pixels` (the workers' budget, `FACEMATCH_MAX_IMAGE_PIXELS`).
pub fn sniff(bytes: &[u8], max_pixels: u64) -> Result<Sniffed, SniffError> {
    let (format, mime) = format_of(bytes).ok_or(SniffError::UnknownFormat)?;
    let (width, height) = match png_ihdr_dimensions(bytes) {
        Some(dims) if format == ImageFormat::Png => dims,
        _ => ImageReader::with_format(Cursor::new(bytes), format)
            .into_dimensions()
            .map_err(|e| SniffError::BadHeader(mime, e.to_string()))?,
    };
    if width == 0 || height == 0 {
        return Err(SniffError::Empty { width, height });
    }
    if !image_limits::fits(width, height, max_pixels) {
        return Err(SniffError::TooLarge {
            width,
            height,
            max_pixels,
        });
    }
    if let Some((width, height)) =
        image_frames::oversized_frame(bytes, |w, h| image_limits::fits(w, h, max_pixels))
    {
        return Err(SniffError::TooLarge {
            width,
            height,
            max_pixels,
        });
    }
    Ok(Sniffed {
        mime,
        width,
        height,
    })
}

#[cfg(test)]
mod tests {
    use facematch_core::image_limits::MAX_IMAGE_PIXELS;

    use super::*;

    fn sniff(bytes: &[u8]) -> Result<Sniffed, SniffError> {
        super::sniff(bytes, MAX_IMAGE_PIXELS)
    }

    fn png(width: u32, height: u32) -> Vec<u8> {
        let mut out = Vec::new();
        image::RgbImage::new(width, height)
            .write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
            .expect("encode png");
        out
    }

    #[test]
    fn recognises_a_real_png() {
        let s = sniff(&png(3, 2)).expect("png");
        assert_eq!((s.mime, s.width, s.height), ("image/png", 3, 2));
    }

    #[test]
    fn rejects_non_images_and_absurd_headers() {
        assert_eq!(sniff(b"hello world"), Err(SniffError::UnknownFormat));
        assert_eq!(sniff(b""), Err(SniffError::UnknownFormat));
        let huge = sniff(&facematch_core::testing::png_claiming(100_000, 100_000));
        assert!(matches!(huge, Err(SniffError::TooLarge { .. })), "{huge:?}");
        // 45 Mpx: over the workers' budget, so refused here rather than failed there.
        let over = sniff(&facematch_core::testing::png_claiming(7500, 6000));
        assert!(matches!(over, Err(SniffError::TooLarge { .. })), "{over:?}");
        assert!(sniff(&facematch_core::testing::png_claiming(7700, 5194)).is_ok());
        assert!(matches!(
            sniff(&[0xFF, 0xD8, 0xFF, 0x00]),
            Err(SniffError::BadHeader(..))
        ));
    }

    #[test]
    fn refuses_a_small_screen_holding_a_huge_frame() {
        let bomb = image_frames::samples::gif_frame_bomb();
        assert_eq!(
            sniff(&bomb),
            Err(SniffError::TooLarge {
                width: 11_000,
                height: 11_000,
                max_pixels: MAX_IMAGE_PIXELS
            })
        );
        let fine =
            image_frames::samples::gif((10, 10), &[image_frames::samples::gif_frame(2, 2, 6, 6)]);
        let s = sniff(&fine).expect("a small frame");
        assert_eq!((s.mime, s.width, s.height), ("image/gif", 10, 10));
        // A frame as big as the budget allows, on a tiny screen: accepted, as the worker does.
        let edge = image_frames::samples::gif(
            (10, 10),
            &[image_frames::samples::gif_frame(0, 0, 8000, 5000)],
        );
        assert!(sniff(&edge).is_ok());
        assert!(matches!(
            super::sniff(&edge, 39_999_999),
            Err(SniffError::TooLarge { width: 8000, .. })
        ));
    }
}
