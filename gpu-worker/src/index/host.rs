//! The CPU search: the int8 copy scanned in parallel blocks as a conservative filter, every
//! candidate (and every row the codes cannot bound) then checked exactly.

use facematch_core::store::DESCRIPTOR_LEN;
use rayon::prelude::*;

use super::{FaceIndex, Hit, Query, quantized};

/// Rows per parallel task of the host scan.
const HOST_BLOCK: usize = 4_096;

impl FaceIndex {
    pub(super) fn search_host(
        &self,
        queries: &[Query],
        visible: &[usize],
        threshold: f32,
        exact: &[f32],
        quant: &[i8],
        outliers: &[usize],
    ) -> Vec<(usize, usize, Hit)> {
        let row_of = |r: usize| &exact[r * DESCRIPTOR_LEN..(r + 1) * DESCRIPTOR_LEN];
        let quantized: Vec<Option<[i8; DESCRIPTOR_LEN]>> = queries
            .iter()
            .map(|q| quantized::quantize(&q.descriptor))
            .collect();
        let limit = quantized::filter_limit(threshold);
        let rows = visible.iter().copied().max().unwrap_or(0);
        let mut hits: Vec<(usize, usize, Hit)> = quant[..rows * DESCRIPTOR_LEN]
            .par_chunks(HOST_BLOCK * DESCRIPTOR_LEN)
            .enumerate()
            .flat_map_iter(|(block, codes)| {
                let base = block * HOST_BLOCK;
                let block_rows = codes.len() / DESCRIPTOR_LEN;
                let mut found = Vec::new();
                let mut candidates = Vec::new();
                for (qi, query) in queries.iter().enumerate() {
                    let end = visible[qi].saturating_sub(base).min(block_rows);
                    if end == 0 {
                        continue;
                    }
                    candidates.clear();
                    match &quantized[qi] {
                        Some(code) => quantized::filter_block(
                            code,
                            &codes[..end * DESCRIPTOR_LEN],
                            limit,
                            &mut candidates,
                        ),
                        // A query the int8 copy cannot bound is compared exactly everywhere.
                        None => candidates.extend(0..end),
                    }
                    for &offset in &candidates {
                        let row = base + offset;
                        if let Some(hit) = self.exact_hit(qi, query, row, row_of(row), threshold) {
                            found.push(hit);
                        }
                    }
                }
                found
            })
            .collect();
        for &row in outliers {
            for (qi, query) in queries.iter().enumerate() {
                if row < visible[qi]
                    && let Some(hit) = self.exact_hit(qi, query, row, row_of(row), threshold)
                {
                    hits.push(hit);
                }
            }
        }
        hits
    }
}
