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

/// A GIF whose logical `screen` holds one `frame`-sized frame of a single colour at its top
/// left: a decoder allocates and fills the frame at its own size, whatever the screen says.
/// The pixels are LZW-coded for real (a solid run packs about 1400 pixels a byte), so an
/// 11000×11000 frame takes about 90 KB.
pub fn gif_solid_frame(screen: (u16, u16), frame: (u16, u16)) -> Vec<u8> {
    let mut out = b"GIF89a".to_vec();
    out.extend_from_slice(&screen.0.to_le_bytes());
    out.extend_from_slice(&screen.1.to_le_bytes());
    // A two-colour global palette: index 0 is the frame's colour.
    out.extend_from_slice(&[0x80, 0, 0, 200, 30, 30, 0, 0, 0]);
    out.push(0x2C);
    for v in [0, 0, frame.0, frame.1] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&[0x00, 0x02]); // no local palette; LZW minimum code size 2
    let data = lzw_solid(u64::from(frame.0) * u64::from(frame.1));
    for block in data.chunks(255) {
        out.push(block.len() as u8);
        out.extend_from_slice(block);
    }
    out.extend_from_slice(&[0x00, 0x3B]);
    out
}

/// GIF LZW (minimum code size 2) of `pixels` pixels of index 0, coded as the classic encoder
/// does: each code stands for a run one longer than the last, the code width grows when the
/// next table entry would not fit, and a full table is cleared.
fn lzw_solid(pixels: u64) -> Vec<u8> {
    const CLEAR: u32 = 4;
    const END: u32 = 5;
    let (mut out, mut acc, mut bits) = (Vec::new(), 0u32, 0u32);
    let mut put = |code: u32, width: u32| {
        acc |= code << bits;
        bits += width;
        while bits >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            bits -= 8;
        }
    };
    let (mut width, mut next, mut run) = (3u32, 6u32, 1u64);
    put(CLEAR, width);
    let mut left = pixels;
    while left > 0 {
        let take = run.min(left);
        // Index 0 alone, or the entry for `take` zeros (entry 6 holds two).
        put(if take == 1 { 0 } else { 4 + take as u32 }, width);
        left -= take;
        if next >= 1 << width && width < 12 {
            width += 1;
        }
        if left == 0 {
            break;
        }
        if next < 4096 {
            next += 1; // the run one longer
            run += 1;
        } else {
            put(CLEAR, width);
            (width, next, run) = (3, 6, 1);
        }
    }
    put(END, width);
    if bits > 0 {
        out.push(acc as u8);
    }
    out
}
