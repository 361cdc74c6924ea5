//! The CUDA search: sealed chunks of rows on the device, compared with the whole batch of
//! queries in one matrix product; the product is a filter (with a margin far above f32
//! summation error), every candidate is then checked exactly.

use candle_core::{D, DType, Device, Tensor};
use facematch_core::store::DESCRIPTOR_LEN;

use super::{CHUNK_ROWS, FaceIndex, Hit, Query};

/// Slack on the squared threshold for the device filter, far above f32 summation error.
const FILTER_MARGIN: f32 = 1e-3;

/// A sealed block of rows on the device and their squared norms.
pub(super) struct Chunk {
    rows: Tensor,
    norms: Tensor,
}

impl FaceIndex {
    pub(super) fn search_device(
        &self,
        queries: &[Query],
        visible: &[usize],
        threshold: f32,
        chunks: &[Chunk],
        tail: &[f32],
    ) -> candle_core::Result<Vec<(usize, usize, Hit)>> {
        let flat: Vec<f32> = queries.iter().flat_map(|q| q.descriptor).collect();
        let q = Tensor::from_vec(flat, (queries.len(), DESCRIPTOR_LEN), &self.device)?;
        let q_norms = q.sqr()?.sum_keepdim(D::Minus1)?;
        let limit = threshold * threshold + FILTER_MARGIN;
        let tail = if tail.is_empty() {
            None
        } else {
            Some(upload(tail, &self.device)?)
        };
        let mut hits = Vec::new();
        for (c, chunk) in chunks.iter().chain(tail.as_ref()).enumerate() {
            let base = c * CHUNK_ROWS;
            if visible.iter().all(|&v| v <= base) {
                break;
            }
            // ‖q − r‖² = ‖q‖² + ‖r‖² − 2 q·r, for the whole batch at once.
            let dots = q.matmul(&chunk.rows.t()?)?;
            let d2 = q_norms
                .broadcast_add(&chunk.norms.unsqueeze(0)?)?
                .sub(&(dots * 2.0)?)?;
            let close = d2.le(limit)?.to_dtype(DType::U8)?.to_vec2::<u8>()?;
            for (qi, flags) in close.iter().enumerate() {
                for (r, _) in flags.iter().enumerate().filter(|(_, f)| **f != 0) {
                    let row = base + r;
                    if row >= visible[qi] {
                        continue;
                    }
                    let stored = chunk.rows.get(r)?.to_vec1::<f32>()?;
                    if let Some(hit) = self.exact_hit(qi, &queries[qi], row, &stored, threshold) {
                        hits.push(hit);
                    }
                }
            }
        }
        Ok(hits)
    }
}

pub(super) fn upload(rows: &[f32], device: &Device) -> candle_core::Result<Chunk> {
    let rows = Tensor::from_slice(rows, (rows.len() / DESCRIPTOR_LEN, DESCRIPTOR_LEN), device)?;
    let norms = rows.sqr()?.sum(D::Minus1)?;
    Ok(Chunk { rows, norms })
}
