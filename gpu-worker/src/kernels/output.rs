//! A layer's output buffer, zeroed and written chunk by chunk on the rayon threads.
//!
//! `vec![0f32; n]` zeroes the whole output on the calling thread before the parallel kernel
//! starts. With glibc keeping freed layer outputs (`crate::memory`), that is a real memset of
//! up to tens of MiB per layer while the other cores wait. Here each chunk is zeroed by the
//! thread about to write it, just before it does, so the zeroing runs in parallel and on cache
//! lines the kernel then fills (batch 4 on two cores: describe 11.9 → 9.5 ms and detect
//! 31.6 → 29.0 ms per image, `perf/RESULTS.md`).

use std::mem::MaybeUninit;

use candle_core::Result;
use rayon::prelude::*;

/// A vector of `len` values cut into chunks of `chunk` values (the last may be shorter); each
/// chunk, zeroed, is handed with its index to `fill` on a rayon thread. The first error of
/// `fill` is returned.
pub fn par_filled<F>(len: usize, chunk: usize, fill: F) -> Result<Vec<f32>>
where
    F: Fn(usize, &mut [f32]) -> Result<()> + Sync,
{
    let mut out: Vec<f32> = Vec::with_capacity(len);
    if len == 0 {
        return Ok(out);
    }
    out.spare_capacity_mut()[..len]
        .par_chunks_mut(chunk.max(1))
        .enumerate()
        .try_for_each(|(i, part)| {
            for v in part.iter_mut() {
                v.write(0.0);
            }
            // SAFETY: every element of `part` was just written, and `MaybeUninit<f32>` has the
            // layout of `f32`, so this is the same memory as initialised values.
            #[allow(unsafe_code)]
            let part = unsafe { &mut *(part as *mut [MaybeUninit<f32>] as *mut [f32]) };
            fill(i, part)
        })?;
    // SAFETY: the chunks cover the first `len` values of the capacity and every one of them
    // was written (zeroed, then by `fill`); an error or a panic returns before this line and
    // leaves the vector empty.
    #[allow(unsafe_code)]
    unsafe {
        out.set_len(len)
    };
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_chunk_is_zeroed_then_filled_in_place() {
        let out = par_filled(10, 4, |i, part| {
            assert!(part.iter().all(|&v| v == 0.0));
            part[0] = i as f32 + 1.0;
            Ok(())
        })
        .expect("filled");
        assert_eq!(out, [1.0, 0.0, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0, 3.0, 0.0]);
    }

    #[test]
    fn an_error_of_one_chunk_is_returned() {
        let err = par_filled(64, 8, |i, _| {
            if i == 5 {
                candle_core::bail!("chunk {i} failed");
            }
            Ok(())
        })
        .expect_err("chunk 5 fails");
        assert!(err.to_string().contains("chunk 5 failed"), "{err}");
    }

    #[test]
    fn an_empty_output_calls_nothing() {
        let out = par_filled(0, 0, |_, _| unreachable!("no chunk")).expect("empty");
        assert!(out.is_empty());
    }
}
