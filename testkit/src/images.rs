//! Test images: images without faces, tiny distinct PNGs; with the `worker` feature, crops of
//! the demo photos' faces (`faces`).

use std::io::Cursor;

use image::{ImageFormat, RgbImage};

#[cfg(feature = "worker")]
pub use crate::faces::{eight_images, face_crop};

/// An image's bytes in `format`.
pub fn encode(img: &RgbImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Vec::new();
    img.write_to(&mut Cursor::new(&mut out), format)
        .expect("encode");
    out
}

/// A smooth gradient: an image with no face.
pub fn no_face() -> Vec<u8> {
    let img = RgbImage::from_fn(240, 180, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 128])
    });
    encode(&img, ImageFormat::Png)
}

/// A small PNG whose pixels depend on `seed`, so every seed gives different bytes.
pub fn png(seed: u32) -> Vec<u8> {
    let img = RgbImage::from_fn(8, 8, |x, y| {
        image::Rgb([
            (seed & 0xff) as u8,
            ((seed >> 8) & 0xff) as u8,
            (x * 16 + y) as u8,
        ])
    });
    encode(&img, ImageFormat::Png)
}
