//! The int8 filter copy of the CPU index: each descriptor component scaled by a fixed step and
//! rounded. Squared distances between codes are exact integers (so the compiler may vectorise
//! them freely), and the rounding error has a hard bound that becomes the filter's margin:
//! with step `s`, `| ‖q − r‖ − s‖q̂ − r̂‖ | ≤ s·√128`, since each component of the difference is
//! off by at most `s`.

use facematch_core::store::DESCRIPTOR_LEN;

/// Bytes per face of the filter copy.
pub const QUANT_BYTES: usize = DESCRIPTOR_LEN;
/// Largest component magnitude the codes represent; descriptors stay well inside it.
const RANGE: f32 = 1.0;
/// The quantisation step.
const STEP: f32 = RANGE / 127.0;

/// The code of a descriptor, or `None` if a component is outside `±RANGE`.
pub fn quantize(d: &[f32; DESCRIPTOR_LEN]) -> Option<[i8; DESCRIPTOR_LEN]> {
    let mut out = [0i8; DESCRIPTOR_LEN];
    for (o, v) in out.iter_mut().zip(d) {
        if v.is_nan() || v.abs() > RANGE {
            return None;
        }
        *o = (v / STEP).round() as i8;
    }
    Some(out)
}

/// Appends a descriptor's code (zeros when it cannot be coded); false when it cannot.
pub fn push(codes: &mut Vec<i8>, d: &[f32; DESCRIPTOR_LEN]) -> bool {
    match quantize(d) {
        Some(code) => {
            codes.extend_from_slice(&code);
            true
        }
        None => {
            codes.extend_from_slice(&[0; DESCRIPTOR_LEN]);
            false
        }
    }
}

/// Appends to `out` the offset of every row of `codes` (rows of [`DESCRIPTOR_LEN`] codes) whose
/// code distance to `q` is at most `limit`. Uses AVX2 when the CPU has it (4–5× faster on
/// this scan), the baseline instruction set otherwise; both give the same answer.
pub fn filter_block(q: &[i8; DESCRIPTOR_LEN], codes: &[i8], limit: i32, out: &mut Vec<usize>) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: `filter_block_avx2` only needs AVX2, which the CPU was just checked to have.
        #[allow(unsafe_code)]
        unsafe {
            filter_block_avx2(q, codes, limit, out);
        }
        return;
    }
    filter_rows(q, codes, limit, out);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn filter_block_avx2(q: &[i8; DESCRIPTOR_LEN], codes: &[i8], limit: i32, out: &mut Vec<usize>) {
    filter_rows(q, codes, limit, out);
}

/// The scan itself; always inlined so each caller compiles it for its own instruction set.
#[inline(always)]
fn filter_rows(q: &[i8; DESCRIPTOR_LEN], codes: &[i8], limit: i32, out: &mut Vec<usize>) {
    for (offset, row) in codes.chunks_exact(DESCRIPTOR_LEN).enumerate() {
        if squared_distance(q, row) <= limit {
            out.push(offset);
        }
    }
}

/// `‖q̂ − r̂‖²` in code units.
#[inline(always)]
pub fn squared_distance(q: &[i8; DESCRIPTOR_LEN], r: &[i8]) -> i32 {
    q.iter()
        .zip(r)
        .map(|(a, b)| {
            // An i16 difference squared into i32 is one `pmaddwd` on baseline x86-64.
            let d = i16::from(*a) - i16::from(*b);
            i32::from(d) * i32::from(d)
        })
        .sum()
}

/// The largest code distance (squared, in code units) that may still be within `threshold`.
pub fn filter_limit(threshold: f32) -> i32 {
    let bound = f64::from(STEP) * (DESCRIPTOR_LEN as f64).sqrt();
    let limit = (f64::from(threshold) + bound) / f64::from(STEP);
    (limit * limit).ceil() as i32 + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_never_drops_a_pair_within_the_threshold() {
        for trial in 0..2000u32 {
            let mut q = [0f32; DESCRIPTOR_LEN];
            let mut r = [0f32; DESCRIPTOR_LEN];
            for i in 0..DESCRIPTOR_LEN {
                let x = ((trial as f32 * 0.37 + i as f32 * 1.13).sin()) * 0.2;
                q[i] = x;
                r[i] = x + ((trial as f32 * 0.91 + i as f32 * 0.71).cos()) * 0.06;
            }
            let exact = q
                .iter()
                .zip(&r)
                .map(|(a, b)| (a - b) * (a - b))
                .sum::<f32>()
                .sqrt();
            let (qc, rc) = (
                quantize(&q).expect("in range"),
                quantize(&r).expect("in range"),
            );
            let threshold = exact + 1e-4;
            assert!(
                squared_distance(&qc, &rc) <= filter_limit(threshold),
                "trial {trial}"
            );
        }
    }

    #[test]
    fn filter_block_keeps_exactly_the_rows_within_the_limit() {
        let q = [3i8; DESCRIPTOR_LEN];
        let mut codes = Vec::new();
        for row in 0..50i8 {
            codes.extend_from_slice(&[3 + row; DESCRIPTOR_LEN]);
        }
        let limit = 128 * 16; // rows 0..=4 are within: 128·row² ≤ 2048
        let mut out = Vec::new();
        filter_block(&q, &codes, limit, &mut out);
        assert_eq!(out, vec![0, 1, 2, 3, 4]);
        let mut portable = Vec::new();
        filter_rows(&q, &codes, limit, &mut portable);
        assert_eq!(out, portable);
    }

    #[test]
    fn out_of_range_values_are_not_coded() {
        let mut d = [0f32; DESCRIPTOR_LEN];
        d[3] = 1.5;
        assert!(quantize(&d).is_none());
        d[3] = f32::NAN;
        assert!(quantize(&d).is_none());
        let mut codes = Vec::new();
        assert!(!push(&mut codes, &d));
        assert_eq!(codes.len(), DESCRIPTOR_LEN);
    }
}
