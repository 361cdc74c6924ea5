//! The mirrored descriptor ([`super::PipelineOptions::mirror`]): each face's chip is also
//! described flipped left to right, and its descriptor is the mean of the two, scaled back to
//! their mean length (the 0.6 threshold is a distance between descriptors of the network's own
//! length). Off by default: on the recall crops it brings genuine pairs closer (mean 0.167 →
//! 0.150) but impostor pairs too, so that more of them fall within 0.6 (60 → 103 of 1116 on the
//! demo crops, 10 → 15 of 540 held-out) while every genuine pair was within already; and it
//! doubles the recognition net's work (12.3 → 16.8 ms per crop; `perf/RESULTS.md`).

use super::DESCRIPTOR_LEN;

/// `chips` (`n` HWC chips of `size`×`size`) followed by each one flipped left to right.
pub fn with_flipped(chips: &mut Vec<f32>, size: usize) {
    let row = size * 3;
    let n = chips.len() / (row * size);
    chips.reserve(n * row * size);
    for r in 0..n * size {
        for x in (0..size).rev() {
            let at = r * row + x * 3;
            chips.extend_from_within(at..at + 3);
        }
    }
}

/// The mean of `a` and `b`, scaled to their mean length.
pub fn average(a: &[f32], b: &[f32]) -> [f32; DESCRIPTOR_LEN] {
    let len = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    let mut out = [0f32; DESCRIPTOR_LEN];
    for ((o, x), y) in out.iter_mut().zip(a).zip(b) {
        *o = (x + y) / 2.0;
    }
    let (have, want) = (len(&out), (len(a) + len(b)) / 2.0);
    if have > 0.0 {
        for o in &mut out {
            *o *= want / have;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flipped_chips_follow_the_originals_mirrored_pixel_by_pixel() {
        // Two 2×2 chips, pixel values naming (chip, y, x).
        let mut chips: Vec<f32> = (0..2)
            .flat_map(|c| {
                (0..2).flat_map(move |y| (0..2).flat_map(move |x| [c as f32, y as f32, x as f32]))
            })
            .collect();
        let original = chips.clone();
        with_flipped(&mut chips, 2);
        assert_eq!(&chips[..original.len()], original.as_slice());
        let flipped = &chips[original.len()..];
        assert_eq!(flipped.len(), original.len());
        // Chip 1, row 0, first pixel: was x = 1.
        assert_eq!(&flipped[12..15], &[1.0, 0.0, 1.0]);
        assert_eq!(&flipped[15..18], &[1.0, 0.0, 0.0]);
    }

    #[test]
    fn the_average_keeps_the_mean_length() {
        let mut a = [0f32; DESCRIPTOR_LEN];
        let mut b = [0f32; DESCRIPTOR_LEN];
        a[0] = 1.0;
        b[1] = 3.0;
        let m = average(&a, &b);
        let len = m.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((len - 2.0).abs() < 1e-6, "{len}");
        assert!((m[0] / m[1] - 1.0 / 3.0).abs() < 1e-6);
        assert_eq!(
            average(&[0.0; DESCRIPTOR_LEN], &[0.0; DESCRIPTOR_LEN]),
            [0.0; DESCRIPTOR_LEN]
        );
    }
}
