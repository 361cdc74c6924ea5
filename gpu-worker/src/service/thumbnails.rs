//! Face thumbnails: a small JPEG of each face kept, cut square around its box from the decoded
//! image, for the web page (`FACEMATCH_FACE_THUMBNAILS=off` keeps none).

use clap::ValueEnum;
use image::{RgbImage, codecs::jpeg::JpegEncoder, imageops};

/// Side of a thumbnail, in pixels.
pub const SIDE: u32 = 96;
/// Largest thumbnail kept, in bytes.
pub const MAX_BYTES: usize = 8 * 1024;
/// How much wider than the face box the cut is (hair, chin and ears in view).
const MARGIN: f32 = 1.4;
/// JPEG qualities tried in turn until one fits in [`MAX_BYTES`].
const QUALITIES: [u8; 4] = [80, 65, 50, 35];

/// Whether the worker keeps a thumbnail of each face.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Thumbnails {
    On,
    Off,
}

/// The square around a face box, `MARGIN` times its longer side, moved inside the image and
/// at most as large as it: `(x, y, side)` in whole pixels, side ≥ 1.
fn square_around(bbox: [f32; 4], width: u32, height: u32) -> (u32, u32, u32) {
    let [x, y, w, h] = bbox;
    let limit = width.min(height).max(1);
    let side = ((w.max(h) * MARGIN).round() as u32).clamp(1, limit);
    let centre = |start: f32, len: f32, room: u32| {
        let from = (start + len / 2.0 - side as f32 / 2.0).round();
        (from.max(0.0) as u32).min(room.saturating_sub(side))
    };
    (centre(x, w, width), centre(y, h, height), side)
}

/// The thumbnail of the face in `bbox` (`[x, y, width, height]`) of `image`: at most
/// [`SIDE`]² pixels and [`MAX_BYTES`] bytes.
pub fn thumbnail(image: &RgbImage, bbox: [f32; 4]) -> Vec<u8> {
    let (x, y, side) = square_around(bbox, image.width(), image.height());
    let cut = imageops::crop_imm(image, x, y, side, side);
    // Scaled down straight from the image (no copy of the cut) by `thumbnail`'s box
    // averaging, each source pixel read once: a filtered resize cost the worker 7 % of its
    // throughput on the demo images.
    let small = if side > SIDE {
        imageops::thumbnail(&*cut, SIDE, SIDE)
    } else {
        cut.to_image()
    };
    let mut out = Vec::new();
    for quality in QUALITIES {
        out.clear();
        let encoded = JpegEncoder::new_with_quality(&mut out, quality).encode_image(&small);
        if encoded.is_ok() && out.len() <= MAX_BYTES {
            break;
        }
    }
    out
}

/// One thumbnail per face box of each image, in order. The faces are cut in parallel: the
/// batch waits for them (they are stored with the faces), so they use every core.
pub fn thumbnails_of(images: &[RgbImage], boxes: &[Vec<[f32; 4]>]) -> Vec<Vec<Vec<u8>>> {
    use rayon::prelude::*;
    let faces: Vec<(&RgbImage, [f32; 4])> = images
        .iter()
        .zip(boxes)
        .flat_map(|(image, boxes)| boxes.iter().map(move |b| (image, *b)))
        .collect();
    let mut cut = faces
        .into_par_iter()
        .map(|(image, b)| thumbnail(image, b))
        .collect::<Vec<_>>()
        .into_iter();
    boxes
        .iter()
        .map(|boxes| cut.by_ref().take(boxes.len()).collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_square_stays_inside_the_image() {
        assert_eq!(
            square_around([40.0, 40.0, 20.0, 20.0], 100, 100),
            (36, 36, 28)
        );
        // A box over the top-left corner, and one larger than the image.
        assert_eq!(
            square_around([-10.0, -10.0, 30.0, 30.0], 100, 80),
            (0, 0, 42)
        );
        assert_eq!(
            square_around([0.0, 0.0, 500.0, 500.0], 100, 80),
            (20, 0, 80)
        );
        assert_eq!(
            square_around([95.0, 70.0, 20.0, 20.0], 100, 80),
            (72, 52, 28)
        );
    }

    #[test]
    fn a_thumbnail_is_a_small_jpeg_even_of_noise() {
        let noise = RgbImage::from_fn(800, 600, |x, y| {
            let v = (x.wrapping_mul(7919) ^ y.wrapping_mul(104_729)).wrapping_mul(2_654_435_761);
            image::Rgb([(v >> 8) as u8, (v >> 16) as u8, (v >> 24) as u8])
        });
        let jpeg = thumbnail(&noise, [100.0, 100.0, 400.0, 400.0]);
        assert!(jpeg.len() <= MAX_BYTES, "{} bytes", jpeg.len());
        let decoded = image::load_from_memory(&jpeg).expect("a JPEG");
        assert_eq!((decoded.width(), decoded.height()), (SIDE, SIDE));
        let tiny = thumbnail(&noise, [10.0, 10.0, 4.0, 4.0]);
        assert_eq!(image::load_from_memory(&tiny).expect("a JPEG").width(), 6);
        let per_image = thumbnails_of(&[noise], &[vec![[0.0; 4], [50.0, 50.0, 80.0, 80.0]]]);
        assert_eq!(per_image.len(), 1);
        assert_eq!(per_image[0].len(), 2, "one per box, in order");
    }
}
