//! Whether a JPEG's entropy-coded data really holds every coefficient its frame header
//! declares. A cut-off file with an end-of-image marker appended decodes "successfully" in
//! zune-jpeg (even in strict mode): the bit reader stops at the marker and feeds zero bits, and
//! the scans that never came leave their coefficients zero, so the missing part comes out as
//! grey or blurred filler. Here the markers and the Huffman codes are walked
//! ([`super::jpeg_blocks`]: no IDCT, no pixel memory) and such a file is refused as truncated.
//!
//! - **Sequential** frames (baseline, extended: `SOF0`, `SOF1`): every scan holds all its
//!   blocks, and every component of the frame is in some scan.
//! - **Progressive** frames (`SOF2`): every scan holds all its blocks (end-of-band runs and
//!   refinement bits walked exactly, see [`super::jpeg_blocks`]), and at the end-of-image marker
//!   the scans present cover every coefficient of every component down to its last bit
//!   (`Al = 0`). The scan parameters must follow T.81 G.1.1.1: a DC scan has `Se = 0`, an AC
//!   scan one component and `1 ≤ Ss ≤ Se ≤ 63`, a refinement `Al = Ah − 1` with `Ah` the bit
//!   the previous scan of those coefficients stopped at, `Al ≤ 13`; a scan that sends bits
//!   already sent, or skips some, is refused (libjpeg only warns; no encoder writes one).
//!   A progressive JPEG whose encoder left some bands out on purpose, if one does, cannot be
//!   told from a cut-off one and is refused too.
//! - At most [`MAX_SCANS`] scans (zune-jpeg's own cap, which the decoder is given too): each
//!   scan costs a walk over every block even when its data is a few bytes.
//! - Other frame types (lossless, hierarchical, arithmetic coding) are not walked: zune-jpeg
//!   does not decode them and refuses them itself.
//!
//! The walk reads a well-formed stream as the decoder does, bit for bit (the tests cut real
//! progressive files at every byte: no cut reads as whole). A malformed one is refused as
//! corrupt where the walk notices (a code that matches no value, a coefficient past its band);
//! one crafted to be read differently here and by the decoder may exist, but what it can show
//! is filler its author chose, no worse than an image made grey on purpose. The cut-off
//! uploads this guards against are well-formed up to the cut.

use super::{
    DecodeError, DecodeLimits,
    huffman::{Bits, Huffman},
    jpeg_blocks::{self, Fault, Part, Pass, Scan},
};

/// Most scans a JPEG may have.
pub(super) const MAX_SCANS: usize = 100;

/// The most components a progressive frame, or any scan, may have (T.81 B.2.2, B.2.3;
/// zune-jpeg's limit too).
const MAX_SCAN_COMPONENTS: usize = 4;

#[derive(Clone, Copy)]
struct Component {
    id: u8,
    h: u32,
    v: u32,
}

struct Frame {
    width: u32,
    height: u32,
    progressive: bool,
    components: Vec<Component>,
    /// Per component: for each coefficient, the lowest bit the scans so far have sent (`Al`),
    /// `None` before its first scan.
    sent: Vec<[Option<u8>; 64]>,
    /// Per component of a progressive frame: the nonzero AC coefficients of each block,
    /// allocated at its first AC scan (see [`Scan::nonzero`]).
    nonzero: Vec<Vec<u64>>,
}

impl Frame {
    fn h_max(&self) -> u32 {
        self.components.iter().map(|c| c.h).max().unwrap_or(1)
    }

    fn v_max(&self) -> u32 {
        self.components.iter().map(|c| c.v).max().unwrap_or(1)
    }

    /// The blocks a single-component scan of component `c` covers, one by one: the component's
    /// own samples, rounded up to whole blocks (not to whole MCUs).
    fn blocks(&self, c: &Component) -> u32 {
        let bw = ceil_div(ceil_div(self.width * c.h, self.h_max()), 8);
        let bh = ceil_div(ceil_div(self.height * c.v, self.v_max()), 8);
        bw * bh
    }

    /// The MCUs of an interleaved scan, each holding H×V blocks of each of its components.
    fn mcus(&self) -> u32 {
        ceil_div(self.width, 8 * self.h_max()) * ceil_div(self.height, 8 * self.v_max())
    }

    /// `Err` naming the first component and coefficient the scans have not sent in full.
    fn check_complete(&self, scans: usize) -> Result<(), DecodeError> {
        for (c, sent) in self.components.iter().zip(&self.sent) {
            let Some(k) = sent.iter().position(|&al| al != Some(0)) else {
                continue;
            };
            return Err(corrupt(if self.progressive {
                format!(
                    "truncated JPEG: coefficient {k} of component {} is incomplete after {scans} \
                     scan(s) (data cut off)",
                    c.id
                )
            } else {
                format!(
                    "truncated JPEG: no scan holds component {} (data cut off)",
                    c.id
                )
            }));
        }
        Ok(())
    }
}

fn corrupt(what: String) -> DecodeError {
    DecodeError::Corrupt(what)
}

fn be16(data: &[u8], at: usize) -> Option<u32> {
    Some(u32::from(u16::from_be_bytes([
        *data.get(at)?,
        *data.get(at + 1)?,
    ])))
}

fn ceil_div(a: u32, b: u32) -> u32 {
    a.div_ceil(b.max(1))
}

/// Huffman tables by slot, DC and AC.
#[derive(Default)]
struct Tables {
    dc: [Option<Huffman>; 4],
    ac: [Option<Huffman>; 4],
}

/// `Ok` when every scan of a sequential or progressive Huffman JPEG holds all its blocks and
/// its scans cover every coefficient (or the JPEG is of a kind the decoder refuses anyway);
/// `Err` says what is missing. The frame is checked against `budget` before anything is
/// allocated for it.
pub(super) fn check_scans(data: &[u8], budget: &DecodeLimits) -> Result<(), DecodeError> {
    let bad = |what: &str| Err(corrupt(format!("corrupt JPEG: {what}")));
    let cut = |what: &str| Err(corrupt(format!("truncated JPEG: {what}")));
    let mut tables = Tables::default();
    let mut frame: Option<Frame> = None;
    let mut restart = 0u32;
    let mut scans = 0usize;
    let mut i = 2; // after SOI
    loop {
        while data.get(i) == Some(&0xFF) && data.get(i + 1) == Some(&0xFF) {
            i += 1; // fill bytes
        }
        match data.get(i) {
            Some(0xFF) => {}
            Some(_) => return bad("expected a marker"),
            None => return cut("the data ends between segments"),
        }
        let Some(&marker) = data.get(i + 1) else {
            return cut("the data ends inside a marker");
        };
        i += 2;
        match marker {
            0xD9 => return frame.map_or(Ok(()), |f| f.check_complete(scans)),
            0x01 | 0xD0..=0xD7 => continue,
            _ => {}
        }
        let Some(len) = be16(data, i) else {
            return cut("the data ends inside a segment header");
        };
        let len = (len as usize).max(2);
        let Some(seg) = data.get(i + 2..i + len) else {
            return cut("a segment runs past the end of the data");
        };
        i += len;
        match marker {
            0xC0..=0xC2 => frame = Some(read_frame(seg, marker == 0xC2, budget)?),
            0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => return Ok(()),
            0xC4 => read_tables(seg, &mut tables)?,
            0xDD => restart = be16(seg, 0).unwrap_or(0),
            0xDA => {
                let Some(frame) = frame.as_mut() else {
                    return bad("scan before the frame header");
                };
                scans += 1;
                if scans > MAX_SCANS {
                    return Err(DecodeError::Unsupported(format!(
                        "JPEG with more than {MAX_SCANS} scans"
                    )));
                }
                let mut bits = Bits::new(data, i);
                walk_scan(frame, seg, &tables, restart, &mut bits, scans)?;
                match bits.next_marker() {
                    Some(at) => i = at,
                    None => return cut("no marker after its last scan"),
                }
            }
            _ => {}
        }
    }
}

fn read_frame(seg: &[u8], progressive: bool, budget: &DecodeLimits) -> Result<Frame, DecodeError> {
    let short = || corrupt("corrupt JPEG: short frame header".into());
    let (height, width) = be16(seg, 1).zip(be16(seg, 3)).ok_or_else(short)?;
    budget.check(width, height)?;
    let n = usize::from(*seg.get(5).ok_or_else(short)?);
    if progressive && n > MAX_SCAN_COMPONENTS {
        return Err(corrupt(format!(
            "corrupt JPEG: progressive frame with {n} components"
        )));
    }
    let mut components = Vec::with_capacity(n);
    for c in 0..n {
        let spec = seg.get(6 + 3 * c..9 + 3 * c).ok_or_else(short)?;
        components.push(Component {
            id: spec[0],
            h: u32::from(spec[1] >> 4).max(1),
            v: u32::from(spec[1] & 15).max(1),
        });
    }
    Ok(Frame {
        width,
        height,
        progressive,
        sent: vec![[None; 64]; n],
        nonzero: vec![Vec::new(); n],
        components,
    })
}

fn read_tables(seg: &[u8], tables: &mut Tables) -> Result<(), DecodeError> {
    let short = || corrupt("corrupt JPEG: short Huffman table".into());
    let mut t = 0;
    while t < seg.len() {
        let class_id = seg[t];
        let counts = seg.get(t + 1..t + 17).ok_or_else(short)?;
        let total: usize = counts.iter().map(|&c| usize::from(c)).sum();
        let values = seg.get(t + 17..t + 17 + total).ok_or_else(short)?;
        let table = Some(Huffman::new(counts, values));
        let slot = usize::from(class_id & 3);
        if class_id >> 4 == 0 {
            tables.dc[slot] = table;
        } else {
            tables.ac[slot] = table;
        }
        t += 17 + total;
    }
    Ok(())
}

/// Reads a scan header, checks its progression and walks its data.
fn walk_scan(
    frame: &mut Frame,
    seg: &[u8],
    tables: &Tables,
    restart: u32,
    bits: &mut Bits,
    scan_no: usize,
) -> Result<(), DecodeError> {
    let bad = |what: String| Err(corrupt(format!("corrupt JPEG: scan {scan_no}: {what}")));
    let ns = usize::from(*seg.first().unwrap_or(&0));
    let Some(&[ss, se, ahal]) = seg.get(1 + 2 * ns..4 + 2 * ns) else {
        return bad("short scan header".into());
    };
    let (ss, se, ah, al) = (u32::from(ss), u32::from(se), ahal >> 4, ahal & 15);
    if ns == 0 || ns > MAX_SCAN_COMPONENTS {
        return bad(format!("{ns} components"));
    }
    let mut members = Vec::with_capacity(ns); // (component index, DC slot, AC slot)
    for s in 0..ns {
        let spec = &seg[1 + 2 * s..3 + 2 * s];
        let Some(c) = frame.components.iter().position(|c| c.id == spec[0]) else {
            return bad(format!("names unknown component {}", spec[0]));
        };
        if members.iter().any(|&(m, _, _)| m == c) {
            return bad(format!("lists component {} twice", spec[0]));
        }
        members.push((c, usize::from(spec[1] >> 4), usize::from(spec[1] & 3)));
    }
    let pass = if !frame.progressive {
        Pass::Sequential
    } else {
        let pass = match (ss, ah) {
            (0, 0) => Pass::DcFirst,
            (0, _) => Pass::DcRefine,
            (_, 0) => Pass::AcFirst,
            _ => Pass::AcRefine,
        };
        let ac = ss > 0;
        if (!ac && se != 0) || (ac && (se < ss || se > 63 || ns != 1)) {
            return bad(format!(
                "invalid progression: Ss={ss} Se={se} with {ns} components"
            ));
        }
        if al > 13 || (ah != 0 && al + 1 != ah) {
            return bad(format!("invalid successive approximation Ah={ah} Al={al}"));
        }
        pass
    };
    // What this scan sends: whole coefficients (sequential) or bits Ah-1..=Al of Ss..=Se.
    let band = if pass == Pass::Sequential {
        0..=63
    } else {
        ss as usize..=se as usize
    };
    for &(c, _, _) in &members {
        for sent in &mut frame.sent[c][band.clone()] {
            if pass == Pass::Sequential {
                *sent = Some(0);
                continue;
            }
            let in_order = match *sent {
                None => ah == 0,
                Some(bit) => ah == bit && bit > 0,
            };
            if !in_order {
                return bad(format!(
                    "sends bits of component {} out of order (Ah={ah} Al={al})",
                    frame.components[c].id
                ));
            }
            *sent = Some(al);
        }
    }
    let (mcus, blocks_per_mcu): (u32, Vec<u32>) = match members.as_slice() {
        [(c, _, _)] => (frame.blocks(&frame.components[*c]), vec![1]),
        _ => (
            frame.mcus(),
            members
                .iter()
                .map(|&(c, _, _)| frame.components[c].h * frame.components[c].v)
                .collect(),
        ),
    };
    let parts = members
        .iter()
        .zip(blocks_per_mcu)
        .map(|(&(_, dc, ac), blocks_per_mcu)| Part {
            // A slot past 3 names no table (the walk then refuses the scan).
            dc: tables.dc.get(dc).and_then(Option::as_ref),
            ac: tables.ac.get(ac).and_then(Option::as_ref),
            blocks_per_mcu,
        })
        .collect();
    let nonzero: &mut [u64] = match (pass, members.first()) {
        (Pass::AcFirst | Pass::AcRefine, Some(&(c, _, _))) => {
            let history = &mut frame.nonzero[c];
            if history.is_empty() {
                // Within the budget checked at the frame header: a u64 per 64 samples.
                history.resize(mcus as usize, 0);
            }
            history
        }
        _ => &mut [],
    };
    let mut scan = Scan {
        pass,
        ss,
        se,
        parts,
        mcus,
        restart,
        nonzero,
    };
    jpeg_blocks::walk(&mut scan, bits).map_err(|fault| match fault {
        Fault::Truncated { done } => corrupt(format!(
            "truncated JPEG: scan {scan_no} ends after {done} of its {mcus} blocks (data cut off)"
        )),
        Fault::Corrupt(what) => corrupt(format!("corrupt JPEG: scan {scan_no}: {what}")),
    })
}
