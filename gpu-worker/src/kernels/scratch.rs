//! The fused CPU kernels' working memory: they cut their output into tiles whose intermediate
//! rows fit in about half of a core's L2 cache ([`TILE_BYTES`]), and each rayon thread keeps
//! two buffers for those rows from tile to tile and layer to layer ([`with_scratch`]). The
//! buffers only grow, to the largest tile, so no tile allocates; a kernel never runs inside
//! another, so one pair per thread serves them all.

use std::cell::RefCell;

/// Bytes of intermediate rows per tile.
pub(super) const TILE_BYTES: usize = 512 * 1024;

thread_local! {
    static SCRATCH: RefCell<(Vec<f32>, Vec<f32>)> =
        const { RefCell::new((Vec::new(), Vec::new())) };
}

/// Runs `f` with this thread's two scratch buffers (holding whatever the last tile left).
pub(super) fn with_scratch<R>(f: impl FnOnce(&mut Vec<f32>, &mut Vec<f32>) -> R) -> R {
    SCRATCH.with_borrow_mut(|(a, b)| f(a, b))
}
