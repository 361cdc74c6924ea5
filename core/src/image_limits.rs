//! The one size limit of an image, shared by the gateway (which refuses a larger one from its
//! header, before queueing it) and the workers (which refuse it before decoding), so that an
//! image is never accepted by one and refused by the other.

/// Largest width or height accepted.
pub const MAX_IMAGE_SIDE: u32 = 16_384;

/// Default pixel budget of one image (its canvas, width × height as declared): 40 Mpx, a
/// 7700×5200 photo. Both sides read `FACEMATCH_MAX_IMAGE_PIXELS`; set it once for both.
pub const MAX_IMAGE_PIXELS: u64 = 40_000_000;

/// Whether `width × height` is within the side limit and `max_pixels`.
pub fn fits(width: u32, height: u32, max_pixels: u64) -> bool {
    width <= MAX_IMAGE_SIDE
        && height <= MAX_IMAGE_SIDE
        && u64::from(width) * u64::from(height) <= max_pixels
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits() {
        assert!(fits(7700, 5194, MAX_IMAGE_PIXELS));
        assert!(!fits(7500, 6000, MAX_IMAGE_PIXELS), "45 Mpx");
        assert!(!fits(16_385, 10, MAX_IMAGE_PIXELS));
    }
}
