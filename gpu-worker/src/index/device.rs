//! The CUDA search: sealed chunks of rows on the device, compared with the whole batch of
//! queries in one matrix product; the product is a filter (with a margin far above f32
//! summation error), every candidate is then checked exactly. The rows not yet sealed (the host
//! tail) are kept on the device too, as a copy that each search grows by the rows appended since
//! the last one: a search uploads what is new, not the whole tail (up to 8 MiB) again.

use candle_core::{D, DType, Device, Tensor};
use facematch_core::store::DESCRIPTOR_LEN;

use super::{CHUNK_ROWS, FaceIndex, Hit, Query};

/// Slack on the squared threshold for the device filter, far above f32 summation error.
const FILTER_MARGIN: f32 = 1e-3;

/// A block of rows on the device and their squared norms (cheap to clone: tensors are shared).
#[derive(Clone)]
pub(super) struct Chunk {
    rows: Tensor,
    norms: Tensor,
}

impl Chunk {
    fn len(&self) -> usize {
        self.rows.dims().first().copied().unwrap_or(0)
    }

    /// This chunk followed by `more` rows (only those are uploaded).
    fn extended(&self, more: &[f32], device: &Device) -> candle_core::Result<Chunk> {
        let more = upload(more, device)?;
        Ok(Chunk {
            rows: Tensor::cat(&[&self.rows, &more.rows], 0)?,
            norms: Tensor::cat(&[&self.norms, &more.norms], 0)?,
        })
    }
}

impl FaceIndex {
    pub(super) fn search_device(
        &self,
        queries: &[Query],
        visible: &[usize],
        threshold: f32,
        chunks: &[Chunk],
        tail_rows: &[f32],
    ) -> candle_core::Result<Vec<(usize, usize, Hit)>> {
        let flat: Vec<f32> = queries.iter().flat_map(|q| q.descriptor).collect();
        let q = Tensor::from_vec(flat, (queries.len(), DESCRIPTOR_LEN), &self.device)?;
        let q_norms = q.sqr()?.sum_keepdim(D::Minus1)?;
        let limit = threshold * threshold + FILTER_MARGIN;
        let tail = self.tail_on_device(tail_rows)?;
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
            let candidates: Vec<(usize, usize)> = close
                .iter()
                .enumerate()
                .flat_map(|(qi, flags)| {
                    flags
                        .iter()
                        .enumerate()
                        .filter(move |&(r, f)| *f != 0 && base + r < visible[qi])
                        .map(move |(r, _)| (qi, r))
                })
                .collect();
            if candidates.is_empty() {
                continue;
            }
            // The candidates' stored rows, for the exact check: the host tail as it is, a
            // sealed chunk's rows in one gather and one copy (not one copy per candidate).
            let mut rows: Vec<usize> = candidates.iter().map(|&(_, r)| r).collect();
            rows.sort_unstable();
            rows.dedup();
            let fetched: Option<Vec<Vec<f32>>> = if c == chunks.len() {
                None
            } else {
                let picks: Vec<u32> = rows.iter().map(|&r| r as u32).collect();
                let picks = Tensor::from_vec(picks, rows.len(), &self.device)?;
                Some(chunk.rows.index_select(&picks, 0)?.to_vec2::<f32>()?)
            };
            for (qi, r) in candidates {
                let stored = match &fetched {
                    None => &tail_rows[r * DESCRIPTOR_LEN..(r + 1) * DESCRIPTOR_LEN],
                    Some(fetched) => {
                        let Ok(k) = rows.binary_search(&r) else {
                            continue;
                        };
                        fetched[k].as_slice()
                    }
                };
                if let Some(hit) = self.exact_hit(qi, &queries[qi], base + r, stored, threshold) {
                    hits.push(hit);
                }
            }
        }
        Ok(hits)
    }
}

impl FaceIndex {
    /// The device copy of the host tail `tail_rows`: the held copy when it has every row,
    /// grown by the missing rows when it has a prefix of them (the tail only grows until it is
    /// sealed, which drops the copy), uploaded whole otherwise.
    fn tail_on_device(&self, tail_rows: &[f32]) -> candle_core::Result<Option<Chunk>> {
        let rows = tail_rows.len() / DESCRIPTOR_LEN;
        if rows == 0 {
            return Ok(None);
        }
        let mut copy = self
            .tail_copy
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let chunk = match copy.take() {
            Some(held) if held.len() == rows => held,
            Some(held) if held.len() < rows => {
                held.extended(&tail_rows[held.len() * DESCRIPTOR_LEN..], &self.device)?
            }
            _ => upload(tail_rows, &self.device)?,
        };
        *copy = Some(chunk.clone());
        Ok(Some(chunk))
    }
}

pub(super) fn upload(rows: &[f32], device: &Device) -> candle_core::Result<Chunk> {
    let rows = Tensor::from_slice(rows, (rows.len() / DESCRIPTOR_LEN, DESCRIPTOR_LEN), device)?;
    let norms = rows.sqr()?.sum(D::Minus1)?;
    Ok(Chunk { rows, norms })
}
