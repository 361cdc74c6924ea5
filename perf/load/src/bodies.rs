//! Upload bodies: a real JPEG of an exact size, made distinct per request by a fixed-length
//! comment segment after SOI, so every request has its own hash without copying the image.

use std::io::Cursor;

use image::{DynamicImage, codecs::jpeg::JpegEncoder, imageops::FilterType};

/// Largest payload of one JPEG comment segment.
const MAX_COMMENT: usize = 65_533;
/// Length of the per-request comment segment: marker, length, payload.
pub const TAG_LEN: usize = 4 + 32;

/// `source` re-encoded as a JPEG of exactly `target` bytes: scaled (up or down) until it
/// takes most of `target` at quality 90, then padded with comment segments (decoders skip them).
pub fn sized_jpeg(source: &DynamicImage, target: usize) -> anyhow::Result<Vec<u8>> {
    anyhow::ensure!(
        target >= 2_000,
        "a body of {target} bytes is too small for a JPEG"
    );
    let mut scale = 1.0f64;
    let mut best: Option<Vec<u8>> = None;
    for _ in 0..10 {
        let w = ((f64::from(source.width()) * scale).round() as u32).max(16);
        let h = ((f64::from(source.height()) * scale).round() as u32).max(16);
        let img = source.resize_exact(w, h, FilterType::Triangle);
        let mut out = Vec::new();
        JpegEncoder::new_with_quality(Cursor::new(&mut out), 90).encode_image(&img)?;
        let fits = out.len() + 4 <= target;
        let ratio = target as f64 / out.len() as f64;
        if fits && best.as_ref().is_none_or(|b| b.len() < out.len()) {
            best = Some(out);
        }
        if fits && ratio < 1.3 {
            break;
        }
        scale *= ratio.sqrt() * 0.97;
    }
    let encoded = best.ok_or_else(|| anyhow::anyhow!("no JPEG under {target} bytes"))?;
    let mut padded = encoded[..2].to_vec();
    let mut missing = target - encoded.len();
    while missing > 0 {
        // Each segment costs 4 bytes of header; never leave a remainder under 4.
        let mut payload = (missing - 4).min(MAX_COMMENT);
        if missing - 4 - payload > 0 && missing - 4 - payload < 4 {
            payload -= 4;
        }
        comment(&mut padded, &vec![b' '; payload]);
        missing -= payload + 4;
    }
    padded.extend_from_slice(&encoded[2..]);
    Ok(padded)
}

fn comment(out: &mut Vec<u8>, payload: &[u8]) {
    let len = u16::try_from(payload.len() + 2).expect("payload fits one segment: this is a bug");
    out.extend_from_slice(&[0xFF, 0xFE]);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
}

/// The bytes that go between SOI and the rest of the image for request `n` of run `run`:
/// a comment of fixed length, so every body has the same size.
pub fn tag(run: u64, n: u64) -> [u8; TAG_LEN] {
    let mut out = [0u8; TAG_LEN];
    let mut seg = Vec::with_capacity(TAG_LEN);
    comment(&mut seg, format!("{run:016x}{n:016x}").as_bytes());
    out.copy_from_slice(&seg);
    out
}

/// A body with its tag: SOI + tag + the rest of `jpeg` (which starts with SOI).
pub fn tagged(jpeg: &[u8], run: u64, n: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(jpeg.len() + TAG_LEN);
    out.extend_from_slice(&jpeg[..2]);
    out.extend_from_slice(&tag(run, n));
    out.extend_from_slice(&jpeg[2..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_sizes_that_still_decode() {
        let source = DynamicImage::new_rgb8(640, 480);
        for target in [20_000, 100 * 1024, 300_000] {
            let jpeg = sized_jpeg(&source, target).expect("encodes");
            assert_eq!(jpeg.len(), target);
            let body = tagged(&jpeg, 7, 42);
            assert_eq!(body.len(), target + TAG_LEN);
            let img = image::load_from_memory(&body).expect("decodes");
            // Scaled to fit the size, within a pixel of the source's aspect.
            let aspect = f64::from(img.width()) / f64::from(img.height());
            assert!((aspect - 4.0 / 3.0).abs() < 0.01, "{aspect}");
        }
        assert_ne!(tag(1, 2), tag(1, 3));
    }
}
