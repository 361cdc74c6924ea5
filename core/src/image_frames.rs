//! The size of every frame of a multi-frame image, read from its container without decoding a
//! pixel. A header's canvas says nothing of its frames: a 91 KB GIF may declare a 10×10 screen
//! and hold an 11000×11000 frame, which a decoder allocates and fills (121 Mpx) before drawing
//! it onto the screen. Each frame's *own* width × height must fit the pixel budget.
//!
//! - **GIF**: every image descriptor (its width and height; where it lies does not matter: a
//!   decoder allocates the frame's own size and clips it to the screen, and real GIFs hold
//!   frames that stick out). Extensions and frame data are skipped sub-block by sub-block; the
//!   walk ends at the trailer, at a block type the decoder refuses too, or where the data ends.
//! - **WebP**: every `ANMF` frame's size, and the size in every `VP8` / `VP8L` bitstream
//!   header, top level or inside a frame: the VP8 decoder allocates what its bitstream
//!   declares before comparing it with the canvas.
//! - **PNG**: every `fcTL` (APNG frame control) chunk's size. The png crate also refuses a frame
//!   that leaves the canvas, and the worker decodes the default image only; this keeps the rule
//!   one rule whatever that crate does.
//! - JPEG and BMP hold one image: their header's size is the one checked.
//!
//! The walk only moves forward, by at least one byte a step, and allocates nothing: a file of a
//! million tiny frames costs one pass over its bytes. Missing or cut-off data ends the walk
//! with what it found (the decoder then fails on it), never a panic.
//!
//! The gateway's sniffing and the worker's decoder both call it, so an image is never accepted
//! by one side and refused by the other.

/// The first frame of `bytes` (a GIF, WebP or PNG, recognised by its magic bytes) whose own
/// width × height `fits` refuses; `None` when every frame fits or the format has no frames.
pub fn oversized_frame(bytes: &[u8], fits: impl Fn(u32, u32) -> bool) -> Option<(u32, u32)> {
    let mut check = |w: u32, h: u32| (!fits(w, h)).then_some((w, h));
    if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        gif(bytes, &mut check)
    } else if bytes.starts_with(b"RIFF") && bytes.get(8..12) == Some(b"WEBP") {
        webp_chunks(bytes.get(12..)?, false, &mut check)
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        apng(bytes, &mut check)
    } else {
        None
    }
}

/// A frame's size to `check`: `Some` (the frame is over the limits) ends the walk with it.
type Check<'a> = dyn FnMut(u32, u32) -> Option<(u32, u32)> + 'a;

fn le16(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at + 2)?;
    Some(u32::from(u16::from_le_bytes([s[0], s[1]])))
}

fn le24(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at + 3)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], 0]))
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at + 4)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at + 4)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// Bytes of the colour table a GIF screen or image descriptor's `flags` announce.
fn gif_palette(flags: u8) -> usize {
    if flags & 0x80 == 0 {
        0
    } else {
        3 << ((flags & 7) + 1)
    }
}

/// The position after the data sub-blocks starting at `i` (each a length byte, 0 ends them).
fn gif_sub_blocks(b: &[u8], mut i: usize) -> Option<usize> {
    loop {
        let n = usize::from(*b.get(i)?);
        i += 1 + n;
        if n == 0 {
            return Some(i);
        }
    }
}

fn gif(b: &[u8], check: &mut Check) -> Option<(u32, u32)> {
    // Header (6), logical screen descriptor (7), global colour table.
    let mut i = 13 + gif_palette(*b.get(10)?);
    loop {
        match *b.get(i)? {
            0x2C => {
                // Separator, left, top, width, height (16-bit LE each), flags.
                if let Some(frame) = check(le16(b, i + 5)?, le16(b, i + 7)?) {
                    return Some(frame);
                }
                // Descriptor, local colour table, LZW minimum code size, then the data.
                i = gif_sub_blocks(b, i + 10 + gif_palette(*b.get(i + 9)?) + 1)?;
            }
            0x21 => i = gif_sub_blocks(b, i + 2)?, // introducer, label, sub-blocks
            _ => return None, // trailer (0x3B), or a block type the decoder refuses
        }
    }
}

/// RIFF chunks: a four-byte tag, a 32-bit LE size, the payload padded to an even length.
/// `in_frame`: the chunks inside an `ANMF` frame (which holds no further frames).
fn webp_chunks(mut b: &[u8], in_frame: bool, check: &mut Check) -> Option<(u32, u32)> {
    while let (Some(tag), Some(size)) = (b.get(..4), le32(b, 4)) {
        let body = &b[8..];
        let size = usize::try_from(size).ok()?;
        // A chunk cut short: look at what there is of it.
        let payload = body.get(..size).unwrap_or(body);
        let found = match tag {
            b"VP8 " => vp8_size(payload).and_then(|(w, h)| check(w, h)),
            b"VP8L" => vp8l_size(payload).and_then(|(w, h)| check(w, h)),
            b"ANMF" if !in_frame => {
                // X, Y, width − 1, height − 1 (24-bit LE each), duration, flags; then chunks.
                let (w, h) = (le24(payload, 6)? + 1, le24(payload, 9)? + 1);
                check(w, h).or_else(|| webp_chunks(payload.get(16..)?, true, check))
            }
            _ => None,
        };
        if found.is_some() {
            return found;
        }
        b = body.get(size.checked_add(size & 1)?..)?;
    }
    None
}

/// A VP8 key frame's size: 3-byte frame tag, start code `9D 01 2A`, 14-bit width and height.
fn vp8_size(p: &[u8]) -> Option<(u32, u32)> {
    let key_frame = p.first()? & 1 == 0;
    if !key_frame || p.get(3..6) != Some(&[0x9D, 0x01, 0x2A][..]) {
        return None; // no size to read; the decoder refuses it
    }
    Some((le16(p, 6)? & 0x3FFF, le16(p, 8)? & 0x3FFF))
}

/// A VP8L bitstream's size: signature `2F`, then width − 1 and height − 1 in 14 bits each.
fn vp8l_size(p: &[u8]) -> Option<(u32, u32)> {
    let bits = le32(p, 1)?;
    (*p.first()? == 0x2F).then_some(((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1))
}

/// PNG chunks: a 32-bit BE length, a four-byte type, the data, a CRC.
fn apng(b: &[u8], check: &mut Check) -> Option<(u32, u32)> {
    let mut i = 8;
    loop {
        let len = usize::try_from(be32(b, i)?).ok()?;
        match b.get(i + 4..i + 8)? {
            // Sequence number, then width and height (32-bit BE).
            b"fcTL" => {
                if let Some(frame) = check(be32(b, i + 12)?, be32(b, i + 16)?) {
                    return Some(frame);
                }
            }
            b"IEND" => return None,
            _ => {}
        }
        i = i.checked_add(12)?.checked_add(len)?;
    }
}

/// Hand-made GIFs for the tests of the gateway and the worker (feature `test-support`).
#[cfg(any(test, feature = "test-support"))]
pub mod samples {
    /// One GIF image descriptor of `w`×`h` at `(left, top)` with one pixel of data (a minimal
    /// LZW stream: clear, index 0, end), as many decoders take it.
    pub fn gif_frame(left: u16, top: u16, w: u16, h: u16) -> Vec<u8> {
        let mut out = vec![0x2C];
        for v in [left, top, w, h] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&[0x00, 0x02, 0x02, 0x44, 0x01, 0x00]);
        out
    }

    /// A GIF with a `screen` logical screen (two-colour palette) and the given frames.
    pub fn gif(screen: (u16, u16), frames: &[Vec<u8>]) -> Vec<u8> {
        let mut out = b"GIF89a".to_vec();
        out.extend_from_slice(&screen.0.to_le_bytes());
        out.extend_from_slice(&screen.1.to_le_bytes());
        out.extend_from_slice(&[0x80, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF]);
        // A comment extension between frames: skipped like any other.
        out.extend_from_slice(&[0x21, 0xFE, 0x03, b'h', b'i', b'!', 0x00]);
        for f in frames {
            out.extend_from_slice(f);
        }
        out.push(0x3B);
        out
    }

    /// A 10×10 screen holding one 11000×11000 frame: 121 Mpx behind a 100-pixel header.
    pub fn gif_frame_bomb() -> Vec<u8> {
        gif((10, 10), &[gif_frame(0, 0, 11_000, 11_000)])
    }
}

#[cfg(test)]
mod tests {
    use super::{
        oversized_frame,
        samples::{gif, gif_frame, gif_frame_bomb},
    };

    /// Within a 40 Mpx budget and 16384 a side, as the defaults.
    fn fits(w: u32, h: u32) -> bool {
        w <= 16_384 && h <= 16_384 && u64::from(w) * u64::from(h) <= 40_000_000
    }

    fn chunk(tag: &[u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut out = tag.to_vec();
        out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        out.extend_from_slice(payload);
        if payload.len() % 2 == 1 {
            out.push(0);
        }
        out
    }

    fn riff(chunks: &[Vec<u8>]) -> Vec<u8> {
        let body: Vec<u8> = chunks.concat();
        let mut out = b"RIFF".to_vec();
        out.extend_from_slice(&(body.len() as u32 + 4).to_le_bytes());
        out.extend_from_slice(b"WEBP");
        out.extend_from_slice(&body);
        out
    }

    fn vp8(w: u16, h: u16) -> Vec<u8> {
        let mut p = vec![0x10, 0x02, 0x00, 0x9D, 0x01, 0x2A];
        p.extend_from_slice(&w.to_le_bytes());
        p.extend_from_slice(&h.to_le_bytes());
        p.extend_from_slice(&[0; 8]);
        chunk(b"VP8 ", &p)
    }

    fn anmf(w: u32, h: u32, inner: &[u8]) -> Vec<u8> {
        let mut p = vec![0; 6];
        p.extend_from_slice(&(w - 1).to_le_bytes()[..3]);
        p.extend_from_slice(&(h - 1).to_le_bytes()[..3]);
        p.extend_from_slice(&[100, 0, 0, 0]);
        p.extend_from_slice(inner);
        chunk(b"ANMF", &p)
    }

    /// An animated WebP of a 10×10 canvas: VP8X, ANIM, then `frames`.
    fn animated_webp(frames: &[Vec<u8>]) -> Vec<u8> {
        let vp8x = chunk(b"VP8X", &[0x02, 0, 0, 0, 9, 0, 0, 9, 0, 0]);
        let anim = chunk(b"ANIM", &[0, 0, 0, 0, 0, 0]);
        riff(&[vec![vp8x, anim], frames.to_vec()].concat())
    }

    fn png_chunk(tag: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let mut out = (data.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(tag);
        out.extend_from_slice(data);
        out.extend_from_slice(&[0; 4]); // the CRC is not the walk's business
        out
    }

    fn apng(frames: &[(u32, u32)]) -> Vec<u8> {
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        let ihdr = [
            &10u32.to_be_bytes()[..],
            &10u32.to_be_bytes(),
            &[8, 2, 0, 0, 0],
        ]
        .concat();
        out.extend(png_chunk(b"IHDR", &ihdr));
        out.extend(png_chunk(b"acTL", &[0, 0, 0, 2, 0, 0, 0, 0]));
        for (seq, &(w, h)) in frames.iter().enumerate() {
            let mut fctl = (seq as u32).to_be_bytes().to_vec();
            for v in [w, h, 0, 0] {
                fctl.extend_from_slice(&v.to_be_bytes());
            }
            fctl.extend_from_slice(&[0, 1, 0, 10, 0, 0]);
            out.extend(png_chunk(b"fcTL", &fctl));
            out.extend(png_chunk(b"IDAT", &[0; 7]));
        }
        out.extend(png_chunk(b"IEND", &[]));
        out
    }

    #[test]
    fn a_gif_frame_is_counted_at_its_own_size() {
        assert_eq!(
            oversized_frame(&gif_frame_bomb(), fits),
            Some((11_000, 11_000))
        );
        // The second frame is the big one, off the screen: its size counts, not its place.
        let two = gif(
            (10, 10),
            &[
                gif_frame(0, 0, 10, 10),
                gif_frame(60_000, 60_000, 9000, 9000),
            ],
        );
        assert_eq!(oversized_frame(&two, fits), Some((9000, 9000)));
        let within = gif(
            (10, 10),
            &[gif_frame(0, 0, 10, 10), gif_frame(5, 5, 6000, 6000)],
        );
        assert_eq!(oversized_frame(&within, fits), None);
        assert_eq!(
            oversized_frame(&gif((20_000, 10), &[]), fits),
            None,
            "the screen is the header's check"
        );
    }

    #[test]
    fn webp_frames_and_bitstreams_are_counted() {
        let small = animated_webp(&[anmf(10, 10, &vp8(10, 10))]);
        assert_eq!(oversized_frame(&small, fits), None);
        let big_frame = animated_webp(&[anmf(10, 10, &vp8(10, 10)), anmf(9000, 9000, &[])]);
        assert_eq!(oversized_frame(&big_frame, fits), Some((9000, 9000)));
        // A 10×10 frame whose bitstream says 16383×16383: the decoder allocates the latter.
        let big_stream = animated_webp(&[anmf(10, 10, &vp8(16_383, 16_383))]);
        assert_eq!(oversized_frame(&big_stream, fits), Some((16_383, 16_383)));
        let still = riff(&[
            chunk(b"VP8X", &[0, 0, 0, 0, 9, 0, 0, 9, 0, 0]),
            vp8(12_000, 12_000),
        ]);
        assert_eq!(oversized_frame(&still, fits), Some((12_000, 12_000)));
        let lossless = riff(&[chunk(b"VP8L", &[0x2F, 0xFF, 0xFF, 0xFF, 0x0F])]);
        assert_eq!(oversized_frame(&lossless, fits), Some((16_384, 16_384)));
    }

    #[test]
    fn apng_frames_are_counted() {
        assert_eq!(oversized_frame(&apng(&[(10, 10), (4, 4)]), fits), None);
        assert_eq!(
            oversized_frame(&apng(&[(10, 10), (70_000, 2)]), fits),
            Some((70_000, 2))
        );
    }

    #[test]
    fn cut_or_garbled_input_ends_the_walk_without_a_panic() {
        let inputs = [
            gif_frame_bomb(),
            animated_webp(&[anmf(10, 10, &vp8(10, 10)), anmf(9000, 9000, &[])]),
            apng(&[(10, 10), (70_000, 2)]),
        ];
        for input in &inputs {
            let whole = oversized_frame(input, fits);
            assert!(whole.is_some());
            for cut in 0..input.len() {
                let found = oversized_frame(&input[..cut], fits);
                assert!(found.is_none() || found == whole, "cut at {cut}: {found:?}");
            }
            // Every byte replaced in turn by a few values: still no panic.
            for at in 0..input.len() {
                for v in [0x00, 0x21, 0x2C, 0x80, 0xFF] {
                    let mut garbled = input.clone();
                    garbled[at] = v;
                    let _ = oversized_frame(&garbled, fits);
                }
            }
        }
    }

    #[test]
    fn a_million_tiny_frames_are_one_cheap_pass() {
        let frame = gif_frame(0, 0, 1, 1);
        let many = gif((10, 10), &[frame.repeat(1_000_000)]);
        assert_eq!(oversized_frame(&many, fits), None);
        let mut last_big = many.clone();
        let at = many.len() - 1 - frame.len() + 5; // the last descriptor's width
        last_big[at..at + 4].copy_from_slice(&[0xF8, 0x2A, 0xF8, 0x2A]);
        assert_eq!(oversized_frame(&last_big, fits), Some((11_000, 11_000)));
    }
}
