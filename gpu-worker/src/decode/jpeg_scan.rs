//! Whether a sequential JPEG's entropy-coded data really holds every block its frame header
//! declares. A cut-off file with an end-of-image marker appended decodes "successfully" in
//! zune-jpeg (even in strict mode): the bit reader stops at the marker and feeds zero bits, so
//! the missing part comes out as filler. Here the Huffman codes are walked (no IDCT, nothing
//! allocated per pixel) and a scan that reaches a marker before its last block is refused.
//!
//! Progressive and other frame types are not walked: their refinement scans cannot be parsed
//! without the coefficient history a full decoder keeps; the decoder decides for them.

use super::huffman::{Bits, Huffman, Stop};

#[derive(Clone, Copy)]
struct Component {
    id: u8,
    h: u32,
    v: u32,
}

struct Frame {
    width: u32,
    height: u32,
    components: Vec<Component>,
}

fn be16(data: &[u8], at: usize) -> Option<usize> {
    Some(usize::from(u16::from_be_bytes([
        *data.get(at)?,
        *data.get(at + 1)?,
    ])))
}

fn ceil_div(a: u32, b: u32) -> u32 {
    a.div_ceil(b.max(1))
}

/// `Ok` when every scan of a sequential (baseline or extended) Huffman JPEG holds all its
/// blocks, or the JPEG is of a kind this does not walk; `Err` says what is missing.
pub fn check_scans(data: &[u8]) -> Result<(), String> {
    let corrupt = |what: &str| Err(format!("corrupt JPEG: {what}"));
    let mut dc: [Option<Huffman>; 4] = Default::default();
    let mut ac: [Option<Huffman>; 4] = Default::default();
    let mut frame: Option<Frame> = None;
    let mut restart = 0u32;
    let mut i = 2; // after SOI
    loop {
        while data.get(i) == Some(&0xFF) && data.get(i + 1) == Some(&0xFF) {
            i += 1; // fill bytes
        }
        if data.get(i) != Some(&0xFF) {
            return corrupt("expected a marker");
        }
        let Some(&marker) = data.get(i + 1) else {
            return corrupt("ends inside a marker");
        };
        i += 2;
        match marker {
            0xD9 => return Ok(()),
            0x01 | 0xD0..=0xD7 => continue,
            _ => {}
        }
        let Some(len) = be16(data, i) else {
            return corrupt("ends inside a segment header");
        };
        let Some(seg) = data.get(i + 2..i + len.max(2)) else {
            return corrupt("segment runs past the end");
        };
        i += len.max(2);
        match marker {
            0xC0 | 0xC1 => {
                let (Some(height), Some(width)) = (be16(seg, 1), be16(seg, 3)) else {
                    return corrupt("short frame header");
                };
                let n = usize::from(*seg.get(5).unwrap_or(&0));
                let mut components = Vec::with_capacity(n);
                for c in 0..n {
                    let Some(spec) = seg.get(6 + 3 * c..9 + 3 * c) else {
                        return corrupt("short frame header");
                    };
                    components.push(Component {
                        id: spec[0],
                        h: u32::from(spec[1] >> 4).max(1),
                        v: u32::from(spec[1] & 15).max(1),
                    });
                }
                frame = Some(Frame {
                    width: width as u32,
                    height: height as u32,
                    components,
                });
            }
            0xC2..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => return Ok(()),
            0xC4 => {
                let mut t = 0;
                while t < seg.len() {
                    let class_id = seg[t];
                    let Some(counts) = seg.get(t + 1..t + 17) else {
                        return corrupt("short Huffman table");
                    };
                    let total: usize = counts.iter().map(|&c| usize::from(c)).sum();
                    let Some(values) = seg.get(t + 17..t + 17 + total) else {
                        return corrupt("short Huffman table");
                    };
                    let table = Some(Huffman::new(counts, values));
                    let slot = usize::from(class_id & 3);
                    if class_id >> 4 == 0 {
                        dc[slot] = table;
                    } else {
                        ac[slot] = table;
                    }
                    t += 17 + total;
                }
            }
            0xDD => restart = be16(seg, 0).unwrap_or(0) as u32,
            0xDA => {
                let Some(frame) = &frame else {
                    return corrupt("scan before the frame header");
                };
                let ns = usize::from(*seg.first().unwrap_or(&0));
                let mut scan = Vec::with_capacity(ns);
                for s in 0..ns {
                    let Some(spec) = seg.get(1 + 2 * s..3 + 2 * s) else {
                        return corrupt("short scan header");
                    };
                    let Some(component) = frame.components.iter().find(|c| c.id == spec[0]) else {
                        return corrupt("scan names an unknown component");
                    };
                    scan.push((
                        *component,
                        usize::from(spec[1] >> 4),
                        usize::from(spec[1] & 3),
                    ));
                }
                let mut bits = Bits::new(data, i);
                walk_scan(frame, &scan, &dc, &ac, restart, &mut bits)?;
                match bits.next_marker() {
                    Some(at) => i = at,
                    None => return corrupt("no marker after the scan"),
                }
            }
            _ => {}
        }
    }
}

fn walk_scan(
    frame: &Frame,
    scan: &[(Component, usize, usize)],
    dc: &[Option<Huffman>; 4],
    ac: &[Option<Huffman>; 4],
    restart: u32,
    bits: &mut Bits,
) -> Result<(), String> {
    let h_max = frame.components.iter().map(|c| c.h).max().unwrap_or(1);
    let v_max = frame.components.iter().map(|c| c.v).max().unwrap_or(1);
    // A single-component scan covers that component's blocks one by one; an interleaved one
    // covers MCUs of every component's H×V blocks.
    let (mcus, per_mcu): (u32, Vec<u32>) = if let [(c, _, _)] = scan {
        let bw = ceil_div(ceil_div(frame.width * c.h, h_max), 8);
        let bh = ceil_div(ceil_div(frame.height * c.v, v_max), 8);
        (bw * bh, vec![1])
    } else {
        let mw = ceil_div(frame.width, 8 * h_max);
        let mh = ceil_div(frame.height, 8 * v_max);
        (mw * mh, scan.iter().map(|(c, _, _)| c.h * c.v).collect())
    };
    let tables: Vec<(&Huffman, &Huffman)> = scan
        .iter()
        .map(|(_, d, a)| dc[*d].as_ref().zip(ac[*a].as_ref()))
        .collect::<Option<_>>()
        .ok_or_else(|| "corrupt JPEG: scan uses a missing Huffman table".to_owned())?;
    let truncated = |mcu: u32| {
        format!("truncated JPEG: its scan ends after {mcu} of {mcus} blocks (data cut off)")
    };
    for mcu in 0..mcus {
        // At each restart interval's end the data must go on after an RSTn marker.
        let interval_ends = restart > 0 && mcu > 0 && mcu % restart == 0;
        if interval_ends && !bits.restart() {
            return Err(truncated(mcu));
        }
        for ((dc, ac), blocks) in tables.iter().zip(&per_mcu) {
            for _ in 0..*blocks {
                match walk_block(dc, ac, bits) {
                    Ok(()) => {}
                    Err(Stop::Marker) => return Err(truncated(mcu)),
                    Err(Stop::Corrupt) => {
                        return Err("corrupt JPEG: invalid Huffman code".to_owned());
                    }
                }
            }
        }
    }
    Ok(())
}

fn walk_block(dc: &Huffman, ac: &Huffman, bits: &mut Bits) -> Result<(), Stop> {
    let s = dc.decode(bits)?;
    bits.skip(u32::from(s))?;
    let mut k = 1;
    while k < 64 {
        let rs = ac.decode(bits)?;
        let (r, s) = (rs >> 4, rs & 15);
        if s == 0 {
            if r == 15 {
                k += 16;
                continue;
            }
            break; // end of block
        }
        k += usize::from(r);
        bits.skip(u32::from(s))?;
        k += 1;
    }
    Ok(())
}
