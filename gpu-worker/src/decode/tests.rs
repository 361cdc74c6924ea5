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
            jpeg_scan::check_scans(&bytes, &DecodeLimits::default())
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

/// Progressive JPEGs written by libjpeg-turbo (through Pillow; see `tests/data/README.md`):
/// 4:2:0 colour; 4:4:4 colour with a restart interval of 7 MCUs; grey with one per row.
const PROGRESSIVE: [(&str, &[u8], (u32, u32)); 3] = [
    (
        "progressive.jpg",
        include_bytes!("../../tests/data/progressive.jpg"),
        (227, 151),
    ),
    (
        "progressive-444-restart.jpg",
        include_bytes!("../../tests/data/progressive-444-restart.jpg"),
        (201, 134),
    ),
    (
        "progressive-grey-restart.jpg",
        include_bytes!("../../tests/data/progressive-grey-restart.jpg"),
        (150, 101),
    ),
];

/// Where each `SOS` marker of `jpeg` starts (scans are never inside another segment).
fn scan_starts(jpeg: &[u8]) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut i = 2;
    while i + 4 <= jpeg.len() {
        let (marker, len) = (
            jpeg[i + 1],
            usize::from(jpeg[i + 2]) << 8 | usize::from(jpeg[i + 3]),
        );
        match marker {
            0xD9 => break,
            0xDA => {
                starts.push(i);
                // Skip the header, then the entropy-coded data up to the next marker.
                i += 2 + len;
                while jpeg[i] != 0xFF || matches!(jpeg[i + 1], 0x00 | 0xD0..=0xD7) {
                    i += 1;
                }
            }
            _ => i += 2 + len,
        }
    }
    starts
}

/// `jpeg[..cut]` with an end-of-image marker appended.
fn cut_with_eoi(jpeg: &[u8], cut: usize) -> Vec<u8> {
    [&jpeg[..cut], &[0xFF, 0xD9][..]].concat()
}

fn is_truncation(e: &DecodeError) -> bool {
    matches!(e, DecodeError::Corrupt(m) if m.starts_with("truncated JPEG"))
}

#[test]
fn whole_progressive_jpegs_decode() {
    for (name, jpeg, dims) in PROGRESSIVE {
        assert_eq!(jpeg[..2], [0xFF, 0xD8], "{name}");
        assert!(scan_starts(jpeg).len() >= 6, "{name} is multi-scan");
        let img = decode_image(jpeg).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(img.dimensions(), dims, "{name}");
        // Real content, not a flat fill: the photo's pixels spread widely.
        let lumas: Vec<u8> = img.pixels().map(|p| p.0[1]).collect();
        let (lo, hi) = (lumas.iter().min(), lumas.iter().max());
        assert!(hi.zip(lo).is_some_and(|(h, l)| h - l > 100), "{name}");
    }
}

#[test]
fn a_progressive_jpeg_cut_between_scans_fails() {
    for (name, jpeg, _) in PROGRESSIVE {
        // Before each scan but the first: earlier scans whole, later ones missing. (Cutting
        // before the first leaves no scan at all.)
        for (n, &start) in scan_starts(jpeg).iter().enumerate() {
            let cut = cut_with_eoi(jpeg, start);
            assert!(jpeg_is_complete(&cut), "passes the marker check");
            let e = must_fail(decode_image(&cut));
            assert!(is_truncation(&e), "{name}, before scan {}: {e}", n + 1);
            if n > 0 {
                assert!(e.to_string().contains("incomplete after"), "{name}: {e}");
            }
        }
    }
}

#[test]
fn a_progressive_jpeg_cut_inside_a_scan_fails() {
    for (name, jpeg, _) in PROGRESSIVE {
        let starts = scan_starts(jpeg);
        let ends = starts.iter().skip(1).copied().chain([jpeg.len() - 2]);
        for (n, (start, end)) in starts.iter().zip(ends).enumerate() {
            for eighth in [1, 4, 7] {
                let at = start + (end - start) * eighth / 8;
                let e = must_fail(decode_image(&cut_with_eoi(jpeg, at)));
                assert!(is_truncation(&e), "{name}, scan {} at {at}: {e}", n + 1);
            }
        }
    }
}

#[test]
fn every_cut_of_a_progressive_jpeg_fails() {
    // Every cut from the first scan on, to the last byte of the last scan: the walk is exact,
    // so no cut, however close to a scan's end, leaves a file that reads as whole.
    for (name, jpeg, _) in PROGRESSIVE {
        let first = scan_starts(jpeg)[0];
        for cut in first..jpeg.len() - 2 {
            let result = jpeg_scan::check_scans(&cut_with_eoi(jpeg, cut), &DecodeLimits::default());
            assert!(
                result.is_err(),
                "{name} cut at {cut} of {} reads as whole",
                jpeg.len()
            );
        }
        jpeg_scan::check_scans(jpeg, &DecodeLimits::default()).expect("the whole file");
    }
}

#[test]
fn scans_out_of_progression_are_refused() {
    let (_, jpeg, _) = PROGRESSIVE[0];
    let starts = scan_starts(jpeg);
    // The scan header ends with Ss, Se, Ah|Al; the second scan sends Y 1..5 from bit 2.
    let header = |n: usize| {
        let at = starts[n];
        at + 2 + (usize::from(jpeg[at + 2]) << 8 | usize::from(jpeg[at + 3]))
    };
    let mut skips_a_bit = jpeg.to_vec();
    skips_a_bit[header(1) - 1] = 0x13; // Ah=1 for coefficients never sent
    let mut sends_twice = jpeg.to_vec();
    let last = starts.len() - 1;
    sends_twice[header(last) - 1] = 0x21; // Ah=2 Al=1: Y's bit 1 again
    let mut dc_band = jpeg.to_vec();
    dc_band[header(0) - 2] = 5; // Ss=0 Se=5: DC and AC in one scan
    for (what, bytes) in [
        ("skips a bit", skips_a_bit),
        ("sends twice", sends_twice),
        ("DC with AC", dc_band),
    ] {
        match jpeg_scan::check_scans(&bytes, &DecodeLimits::default()) {
            Err(DecodeError::Corrupt(e)) => assert!(e.starts_with("corrupt JPEG"), "{what}: {e}"),
            other => panic!("{what}: {other:?}"),
        }
    }
}

#[test]
fn the_scan_walk_survives_garbled_progressive_data() {
    // xorshift64: a fixed pseudo-random sequence of byte changes; any result but a panic.
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for (_, jpeg, _) in PROGRESSIVE {
        for _ in 0..3000 {
            let mut bytes = jpeg.to_vec();
            for _ in 0..1 + next() % 4 {
                let at = 2 + (next() as usize) % (bytes.len() - 2);
                bytes[at] = next() as u8;
            }
            let _ = jpeg_scan::check_scans(&bytes, &DecodeLimits::default());
        }
    }
}

#[test]
fn more_scans_than_the_cap_are_refused() {
    let grey = encoded(
        DynamicImage::ImageLuma8(image::GrayImage::from_fn(64, 48, |x, y| {
            image::Luma([(x * 3 + y) as u8])
        })),
        ImageFormat::Jpeg,
    );
    let starts = scan_starts(&grey);
    assert_eq!(starts.len(), 1, "one baseline scan");
    let scan = &grey[starts[0]..grey.len() - 2];
    let repeated = |n: usize| [&grey[..starts[0]], &scan.repeat(n), &[0xFF, 0xD9][..]].concat();
    jpeg_scan::check_scans(&repeated(jpeg_scan::MAX_SCANS), &DecodeLimits::default())
        .expect("a component sent again is no truncation");
    let e = jpeg_scan::check_scans(
        &repeated(jpeg_scan::MAX_SCANS + 1),
        &DecodeLimits::default(),
    );
    assert!(matches!(e, Err(DecodeError::Unsupported(_))), "{e:?}");
}

#[test]
fn a_gif_frame_bomb_is_refused_before_decoding() {
    let gif = facematch_core::image_frames::samples::gif_frame_bomb();
    assert!(gif.len() < 100, "{} bytes", gif.len());
    assert_eq!(canvas_size(&gif).expect("header"), (10, 10));
    match must_fail(decode_image(&gif)) {
        DecodeError::TooLarge(e) => assert!(e.contains("11000x11000 frame"), "{e}"),
        e => panic!("wrong error: {e}"),
    }
}

#[test]
fn a_gif_frame_counts_its_own_size_not_the_screens() {
    // A real 300×200 frame (image's encoder), its screen then shrunk to 10×10.
    let mut gif = encoded(
        DynamicImage::ImageRgba8(image::RgbaImage::from_pixel(
            300,
            200,
            image::Rgba([200, 10, 10, 255]),
        )),
        ImageFormat::Gif,
    );
    gif[6..10].copy_from_slice(&[10, 0, 10, 0]);
    let img = decode_image(&gif).expect("within the default budget");
    assert_eq!(
        (img.dimensions(), img.get_pixel(5, 5).0),
        ((10, 10), [200, 10, 10])
    );
    let tight = DecodeLimits { max_pixels: 59_999 };
    match decode_image_with(&gif, &tight) {
        Err(DecodeError::TooLarge(e)) => assert!(e.contains("300x200 frame"), "{e}"),
        other => panic!("{:?}", other.map(|i| i.dimensions())),
    }
    let exact = DecodeLimits { max_pixels: 60_000 };
    decode_image_with(&gif, &exact).expect("exactly the budget");
}
