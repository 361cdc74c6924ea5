//! The decoder's limits and strictness, on hand-made and hostile inputs.

use super::*;

/// The error of a decode that must fail (without printing a decoded image).
fn must_fail(result: Result<RgbImage, DecodeError>) -> DecodeError {
    match result {
        Err(e) => e,
        Ok(img) => panic!("decoded a {}x{} image", img.width(), img.height()),
    }
}

#[test]
fn refuses_huge_png_from_header() {
    let e = must_fail(decode_image(&facematch_core::testing::png_claiming(
        100_000, 100_000,
    )));
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
    let e = must_fail(decode_image(&png[..png.len() / 2]));
    assert!(matches!(e, DecodeError::Corrupt(_)), "{e}");
}

fn encoded(img: DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Vec::new();
    img.write_to(&mut Cursor::new(&mut out), format)
        .expect("encode");
    out
}

fn gradient(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x % 251) as u8, (y % 241) as u8, 77])
    })
}

#[test]
fn a_truncated_jpeg_with_an_end_marker_appended_fails() {
    let jpeg = encoded(
        DynamicImage::ImageRgb8(gradient(320, 240)),
        ImageFormat::Jpeg,
    );
    decode_image(&jpeg).expect("the whole JPEG decodes");
    for percent in [20, 50, 80, 95, 99] {
        let mut cut = jpeg[..jpeg.len() * percent / 100].to_vec();
        cut.extend_from_slice(&[0xFF, 0xD9]);
        assert!(jpeg_is_complete(&cut), "passes the marker check");
        match must_fail(decode_image(&cut)) {
            DecodeError::Corrupt(e) => assert!(e.contains("truncated"), "{percent}%: {e}"),
            e => panic!("{percent}%: wrong error: {e}"),
        }
    }
}

#[test]
fn every_demo_jpeg_holds_all_its_blocks() {
    let demo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../model-weights/demo");
    let Ok(entries) = std::fs::read_dir(&demo) else {
        return; // weights not fetched: the golden tests say so
    };
    for entry in entries.flatten() {
        let bytes = std::fs::read(entry.path()).expect("read");
        if bytes.starts_with(&[0xFF, 0xD8]) {
            jpeg_scan::check_scans(&bytes)
                .unwrap_or_else(|e| panic!("{}: {e}", entry.path().display()));
            decode_image(&bytes).expect("demo decodes");
        }
    }
}

/// A 1×1 GIF whose logical screen (the canvas every frame is drawn on) claims 16000×3000.
fn gif_canvas_bomb() -> Vec<u8> {
    let mut gif = encoded(
        DynamicImage::ImageRgba8(image::RgbaImage::from_pixel(
            1,
            1,
            image::Rgba([9, 9, 9, 255]),
        )),
        ImageFormat::Gif,
    );
    gif[6..8].copy_from_slice(&16_000u16.to_le_bytes());
    gif[8..10].copy_from_slice(&3_000u16.to_le_bytes());
    gif
}

#[test]
fn a_gif_canvas_bomb_is_refused_from_its_header() {
    let gif = gif_canvas_bomb();
    assert!(gif.len() < 100, "{} bytes", gif.len());
    assert_eq!(canvas_size(&gif).expect("header"), (16_000, 3_000));
    let e = must_fail(decode_image(&gif));
    assert!(matches!(e, DecodeError::TooLarge(_)), "{e}");
    // Within a larger budget the canvas is decoded whole, as declared.
    let big = DecodeLimits {
        max_pixels: 50_000_000,
    };
    let img = decode_image_with(&gif, &big).expect("within budget");
    assert_eq!(img.dimensions(), (16_000, 3_000));
}

#[test]
fn sixteen_bit_pngs_decode_to_8_bits() {
    let rgb16 = image::ImageBuffer::<image::Rgb<u16>, _>::from_fn(64, 48, |x, y| {
        image::Rgb([(x as u16) << 10, (y as u16) << 10, 0xABCD])
    });
    let png = encoded(DynamicImage::ImageRgb16(rgb16), ImageFormat::Png);
    let img = decode_image(&png).expect("16-bit RGB PNG");
    assert_eq!(img.dimensions(), (64, 48));
    assert_eq!(img.get_pixel(5, 7).0, [5 << 2, 7 << 2, 0xAB]);
    let la16 = image::ImageBuffer::<image::LumaA<u16>, _>::from_pixel(
        9,
        4,
        image::LumaA([0x8000, 0xFFFF]),
    );
    let png = encoded(DynamicImage::ImageLumaA16(la16), ImageFormat::Png);
    assert_eq!(
        decode_image(&png)
            .expect("16-bit grey+alpha")
            .get_pixel(8, 3)
            .0,
        [0x80; 3]
    );
    let rgba = image::RgbaImage::from_pixel(3, 2, image::Rgba([1, 2, 3, 4]));
    let png = encoded(DynamicImage::ImageRgba8(rgba), ImageFormat::Png);
    assert_eq!(
        decode_image(&png).expect("RGBA").get_pixel(2, 1).0,
        [1, 2, 3]
    );
}

#[test]
fn the_pixel_budget_counts_the_canvas() {
    let png = encoded(
        DynamicImage::ImageRgb8(gradient(200, 100)),
        ImageFormat::Png,
    );
    let small = DecodeLimits { max_pixels: 19_999 };
    assert!(matches!(
        decode_image_with(&png, &small),
        Err(DecodeError::TooLarge(_))
    ));
    let exact = DecodeLimits { max_pixels: 20_000 };
    assert_eq!(
        decode_image_with(&png, &exact).expect("fits").dimensions(),
        (200, 100)
    );
}
