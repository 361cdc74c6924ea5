//! One scan's entropy-coded data walked block by block, for [`super::jpeg_scan`]: Huffman
//! codes are decoded and their extra bits skipped, nothing is dequantised or transformed, so a
//! scan costs a few nanoseconds a block and no pixel memory.
//!
//! A sequential scan codes each block whole. A progressive scan (T.81 Annex G) codes one part
//! of each coefficient: a DC scan the first bits of the DC value, or one more bit of it; an AC
//! scan a band `Ss..=Se` of one component, either the first bits of each coefficient (with
//! end-of-band runs that cover whole blocks in one code) or one more bit of it (a refinement).
//! How many bits a refinement holds for a block depends on which of its coefficients earlier
//! scans made nonzero (each of those gets a correction bit), so the walk keeps that history:
//! one bit per AC coefficient (a `u64` per block, where the decoder keeps 64 `i16`s).

use super::huffman::{Bits, Huffman, Stop};

/// What a scan codes of each block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Pass {
    /// The whole block (a sequential frame).
    Sequential,
    /// The first bits of the DC coefficient.
    DcFirst,
    /// One more bit of the DC coefficient.
    DcRefine,
    /// The first bits of the AC coefficients `ss..=se`.
    AcFirst,
    /// One more bit of the AC coefficients `ss..=se`.
    AcRefine,
}

/// One component of a scan: its tables and how many of its blocks an MCU holds.
pub(super) struct Part<'a> {
    pub dc: Option<&'a Huffman>,
    pub ac: Option<&'a Huffman>,
    pub blocks_per_mcu: u32,
}

/// A scan, ready to walk.
pub(super) struct Scan<'a> {
    pub pass: Pass,
    pub ss: u32,
    pub se: u32,
    pub parts: Vec<Part<'a>>,
    pub mcus: u32,
    /// MCUs per restart interval; 0 when there are no restart markers.
    pub restart: u32,
    /// AC passes (one component, one block per MCU): which AC coefficients of each block are
    /// nonzero so far, bit `k` for coefficient `k` in zigzag order. Updated by the walk.
    pub nonzero: &'a mut [u64],
}

/// Why a scan's data is refused.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Fault {
    /// A marker (or the end of the data) came before the scan's MCU `done` was complete.
    Truncated { done: u32 },
    /// The coded data is not a valid scan.
    Corrupt(&'static str),
}

/// Walks every MCU of `scan` from `bits`; `Ok` once the last one is read.
pub(super) fn walk(scan: &mut Scan<'_>, bits: &mut Bits) -> Result<(), Fault> {
    let mut eob_run = 0u32;
    let mut mcu = 0u32;
    while mcu < scan.mcus {
        let stop = |e| match e {
            Stop::Marker => Fault::Truncated { done: mcu },
            Stop::Corrupt => Fault::Corrupt("invalid Huffman code"),
        };
        // At each restart interval's end the data must go on after an RSTn marker.
        if scan.restart > 0 && mcu > 0 && mcu.is_multiple_of(scan.restart) {
            if !bits.restart() {
                return Err(Fault::Truncated { done: mcu });
            }
            eob_run = 0;
        }
        if scan.pass == Pass::AcFirst && eob_run > 0 {
            // The run covers whole blocks without a bit of their own: jump over them, up to
            // the interval's end (a run never crosses a restart marker).
            let interval_end = match scan.restart {
                0 => scan.mcus,
                r => (mcu / r + 1).saturating_mul(r).min(scan.mcus),
            };
            let n = eob_run.min(interval_end - mcu);
            eob_run -= n;
            mcu += n;
            continue;
        }
        match scan.pass {
            Pass::Sequential | Pass::DcFirst | Pass::DcRefine => {
                for part in &scan.parts {
                    for _ in 0..part.blocks_per_mcu {
                        match scan.pass {
                            Pass::Sequential => {
                                sequential_block(table(part.dc)?, table(part.ac)?, bits)
                            }
                            Pass::DcFirst => dc_first(table(part.dc)?, bits),
                            _ => bits.skip(1),
                        }
                        .map_err(stop)?;
                    }
                }
            }
            Pass::AcFirst | Pass::AcRefine => {
                let ac = table(scan.parts.first().and_then(|p| p.ac))?;
                let nonzero = scan
                    .nonzero
                    .get_mut(mcu as usize)
                    .ok_or(Fault::Corrupt("block outside the component"))?;
                let (ss, se) = (scan.ss, scan.se);
                eob_run = if scan.pass == Pass::AcFirst {
                    ac_first(ac, ss, se, nonzero, bits)
                } else {
                    ac_refine(ac, ss, se, nonzero, eob_run, bits)
                }
                .map_err(stop)?;
            }
        }
        mcu += 1;
    }
    Ok(())
}

fn table(t: Option<&Huffman>) -> Result<&Huffman, Fault> {
    t.ok_or(Fault::Corrupt("scan uses a missing Huffman table"))
}

/// A whole block: the DC difference, then run/size codes up to the end of block.
fn sequential_block(dc: &Huffman, ac: &Huffman, bits: &mut Bits) -> Result<(), Stop> {
    dc_first(dc, bits)?;
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
        k += u32::from(r);
        bits.skip(u32::from(s))?;
        k += 1;
    }
    Ok(())
}

/// A DC difference: its size category, then that many bits.
fn dc_first(dc: &Huffman, bits: &mut Bits) -> Result<(), Stop> {
    let s = dc.decode(bits)?;
    bits.skip(u32::from(s))
}

/// The end-of-band run an EOBr code starts: 2^r blocks plus r more bits' worth.
fn run_length(r: u8, bits: &mut Bits) -> Result<u32, Stop> {
    Ok((1 << r) + bits.get(u32::from(r))?)
}

/// The first bits of band `ss..=se` of one block; returns how many *further* blocks the
/// end-of-band run it ended with covers (0 when it ended otherwise).
fn ac_first(
    ac: &Huffman,
    ss: u32,
    se: u32,
    nonzero: &mut u64,
    bits: &mut Bits,
) -> Result<u32, Stop> {
    let mut k = ss;
    while k <= se {
        let rs = ac.decode(bits)?;
        let (r, s) = (rs >> 4, rs & 15);
        if s == 0 {
            if r == 15 {
                k += 16; // sixteen zeros
                continue;
            }
            return Ok(run_length(r, bits)? - 1);
        }
        k += u32::from(r);
        bits.skip(u32::from(s))?;
        if k > se {
            return Err(Stop::Corrupt); // a coefficient past the band
        }
        *nonzero |= 1 << k;
        k += 1;
    }
    Ok(0)
}

/// One more bit of band `ss..=se` of one block (T.81 G.1.2.3, as zune-jpeg and libjpeg decode
/// it): each coefficient that is already nonzero gets a correction bit wherever the walk
/// passes it; a newly nonzero one has a sign bit. `eob_run` is the run in progress when the
/// block starts; returns the run left after it.
fn ac_refine(
    ac: &Huffman,
    ss: u32,
    se: u32,
    nonzero: &mut u64,
    mut eob_run: u32,
    bits: &mut Bits,
) -> Result<u32, Stop> {
    let mut k = ss;
    if eob_run == 0 {
        while k <= se {
            let rs = ac.decode(bits)?;
            // Zeros to pass before the new coefficient (16 for ZRL).
            let (mut zeros, new) = (i32::from(rs >> 4), rs & 15 != 0);
            if new {
                bits.skip(1)?; // its sign (a size other than 1 is read as 1, as decoders do)
            } else if zeros != 15 {
                eob_run = run_length(rs >> 4, bits)?;
                break;
            }
            loop {
                if *nonzero >> k & 1 == 1 {
                    bits.skip(1)?; // correction bit
                } else {
                    zeros -= 1;
                    if zeros < 0 {
                        break; // the zero that becomes the new coefficient
                    }
                }
                if k == se {
                    break;
                }
                k += 1;
            }
            if new {
                *nonzero |= 1 << k;
            }
            k += 1;
        }
    }
    if eob_run > 0 {
        // The rest of the band is in the run: a correction bit for each nonzero coefficient.
        let band = if k > se {
            0
        } else {
            (u64::MAX >> (63 - se)) & (u64::MAX << k)
        };
        bits.skip((*nonzero & band).count_ones())?;
        eob_run -= 1;
    }
    Ok(eob_run)
}
