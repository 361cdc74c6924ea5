//! Process memory settings for inference on the CPU.
//!
//! A CPU forward pass allocates every layer's output afresh (candle owns those buffers): 8 to
//! 64 MiB per layer on the detector. glibc serves blocks that large with `mmap` and returns
//! them to the kernel when they are freed, so each layer's output is new memory that the
//! kernel must fault in and zero page by page, which costs about as much as the convolution
//! that fills it. Raising glibc's mmap and trim thresholds keeps freed blocks in the heap for
//! the next layer: 1.5–2× more images per second at batch 4 (see `perf/RESULTS.md`). Peak
//! memory is unchanged; the process keeps what it used at its peak instead of giving it back
//! between layers.
//!
//! The worker runs the networks on its engine thread. glibc gives threads other than the main
//! one arenas whose heaps hold at most 64 MiB, so a larger block (an activation of a batch of 8)
//! would still be mapped afresh there. Limiting glibc to one arena keeps every thread on the
//! main heap (worker at batch 8: 14.5 → 21.7 images/s); the worker's other threads allocate
//! little. The limit only binds threads that get their arena later, so binaries call
//! [`reuse_freed_memory`] first thing in `main`, before any other thread starts;
//! [`crate::FacePipeline::load`] calls it too, for library users, where the thresholds still
//! apply but the arena limit may come too late.

use std::sync::Once;

/// Largest block served from the heap rather than by its own `mmap`, and the free space at the
/// top of the heap kept rather than returned to the kernel.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const KEEP_BYTES: libc::c_int = 1 << 30;

/// Keeps large freed blocks in the process for reuse (glibc only; elsewhere a no-op). The
/// first call does the work; later calls do nothing.
pub fn reuse_freed_memory() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        {
            // SAFETY: `mallopt` only changes three of glibc's allocator tunables; it is called
            // with valid parameters and touches no memory of ours.
            #[allow(unsafe_code)]
            let ok = unsafe {
                libc::mallopt(libc::M_MMAP_THRESHOLD, KEEP_BYTES) == 1
                    && libc::mallopt(libc::M_TRIM_THRESHOLD, KEEP_BYTES) == 1
                    && libc::mallopt(libc::M_ARENA_MAX, 1) == 1
            };
            if !ok {
                tracing::warn!(
                    "could not raise glibc's mmap threshold; CPU inference will be slower"
                );
            }
        }
    });
}

/// How long the worker waits with nothing to do before it gives freed memory back.
pub const IDLE_BEFORE_TRIM: std::time::Duration = std::time::Duration::from_secs(2);

/// Gives the memory freed since the last call back to the kernel (glibc's `malloc_trim`;
/// elsewhere a no-op). [`reuse_freed_memory`] keeps freed blocks for the next batch, which is
/// what makes back-to-back batches fast, but it also keeps a large batch's peak for ever: the
/// worker calls this once it has been idle for [`IDLE_BEFORE_TRIM`], so its memory returns
/// towards its baseline between bursts of work without slowing a busy worker. Takes a few
/// milliseconds: call it on a blocking thread.
pub fn give_back_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: `malloc_trim` only returns free heap pages to the kernel; it touches no
        // memory in use.
        #[allow(unsafe_code)]
        unsafe {
            libc::malloc_trim(0);
        }
    }
}
