//! The worker's in-memory copy of `facelog`: every stored descriptor as a row of a matrix on the
//! worker's device, compared with a whole batch of new faces in one pass.
//!
//! Exactness: the fast pass is only a conservative filter — an int8 copy scanned with integer
//! arithmetic on the CPU, the matrix product on CUDA — and every candidate's distance is
//! recomputed in f64 from the stored f32 values, so the answer never depends on how a batch was
//! formed or how the device sums.

use candle_core::{D, DType, Device, Tensor};
use facematch_core::{
    ImageHash,
    store::{DESCRIPTOR_LEN, FacelogEntry, LogId},
};
use rayon::prelude::*;

use super::quantized::{self, QUANT_BYTES};

/// Rows per sealed device chunk (CUDA).
pub const CHUNK_ROWS: usize = 16_384;
/// Slack on the squared threshold for the device filter, far above f32 summation error.
const FILTER_MARGIN: f32 = 1e-3;
/// Rows per parallel task of the host scan.
const HOST_BLOCK: usize = 4_096;

/// One new face to compare: who it belongs to and its own log id.
#[derive(Debug, Clone)]
pub struct Query {
    pub hash: ImageHash,
    pub id: LogId,
    pub descriptor: [f32; DESCRIPTOR_LEN],
}

/// A face pair within the threshold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    /// Index into the queries.
    pub query: usize,
    /// The stored face's image.
    pub other: ImageHash,
    pub distance: f64,
}

struct Chunk {
    rows: Tensor,
    norms: Tensor,
}

/// Where the descriptor matrix lives.
enum Storage {
    /// CPU: exact f32 rows plus an int8 copy scanned as a conservative filter.
    Host {
        exact: Vec<f32>,
        quant: Vec<i8>,
        /// Rows whose values the int8 copy cannot bound: always checked exactly.
        outliers: Vec<usize>,
    },
    /// CUDA: sealed chunks on the device plus a host tail not yet uploaded.
    Device { chunks: Vec<Chunk>, tail: Vec<f32> },
}

/// The descriptor matrix plus each row's image and log id (rows in log order).
pub struct FaceIndex {
    device: Device,
    storage: Storage,
    owners: Vec<ImageHash>,
    ids: Vec<LogId>,
}

impl std::fmt::Debug for FaceIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaceIndex")
            .field("len", &self.len())
            .field("device", &self.device)
            .finish()
    }
}

impl FaceIndex {
    pub fn new(device: Device) -> Self {
        let storage = if device.is_cpu() {
            Storage::Host {
                exact: Vec::new(),
                quant: Vec::new(),
                outliers: Vec::new(),
            }
        } else {
            Storage::Device {
                chunks: Vec::new(),
                tail: Vec::with_capacity(CHUNK_ROWS * DESCRIPTOR_LEN),
            }
        };
        Self {
            device,
            storage,
            owners: Vec::new(),
            ids: Vec::new(),
        }
    }

    /// An index that keeps its rows as device matrices whatever the device (the CUDA layout;
    /// on the CPU only for comparing the two paths).
    pub fn new_matrix(device: Device) -> Self {
        Self {
            storage: Storage::Device {
                chunks: Vec::new(),
                tail: Vec::with_capacity(CHUNK_ROWS * DESCRIPTOR_LEN),
            },
            ..Self::new(device)
        }
    }

    /// Faces held.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The newest log id held.
    pub fn last_id(&self) -> Option<LogId> {
        self.ids.last().copied()
    }

    /// Bytes held per face: descriptor (f32), its int8 filter copy on the CPU (norm on
    /// CUDA), owner and log id.
    pub fn bytes_per_face(&self) -> usize {
        let filter = match self.storage {
            Storage::Host { .. } => QUANT_BYTES,
            Storage::Device { .. } => 4,
        };
        DESCRIPTOR_LEN * 4 + filter + 16 + 16
    }

    /// Bytes held by the index.
    pub fn memory_bytes(&self) -> usize {
        self.len() * self.bytes_per_face()
    }

    /// Appends entries newer than [`Self::last_id`] (older ones are ignored).
    pub fn extend(&mut self, entries: &[FacelogEntry]) -> candle_core::Result<()> {
        for entry in entries {
            if self.last_id().is_some_and(|last| entry.id <= last) {
                continue;
            }
            let row = self.ids.len();
            match &mut self.storage {
                Storage::Host {
                    exact,
                    quant,
                    outliers,
                } => {
                    exact.extend_from_slice(&entry.descriptor);
                    if !quantized::push(quant, &entry.descriptor) {
                        outliers.push(row);
                    }
                }
                Storage::Device { chunks, tail } => {
                    tail.extend_from_slice(&entry.descriptor);
                    if tail.len() == CHUNK_ROWS * DESCRIPTOR_LEN {
                        chunks.push(upload(tail, &self.device)?);
                        tail.clear();
                    }
                }
            }
            self.owners.push(entry.hash);
            self.ids.push(entry.id);
        }
        Ok(())
    }

    /// Every stored face within `threshold` of each query that is older than the query
    /// (`id` lower) and belongs to another image, in (query, row) order.
    pub fn search(&self, queries: &[Query], threshold: f32) -> candle_core::Result<Vec<Hit>> {
        if queries.is_empty() || self.is_empty() {
            return Ok(Vec::new());
        }
        // Rows each query may see: those with a lower log id.
        let visible: Vec<usize> = queries
            .iter()
            .map(|query| self.ids.partition_point(|id| *id < query.id))
            .collect();
        let mut hits = match &self.storage {
            Storage::Host {
                exact,
                quant,
                outliers,
            } => self.search_host(queries, &visible, threshold, exact, quant, outliers),
            Storage::Device { chunks, tail } => {
                self.search_device(queries, &visible, threshold, chunks, tail)?
            }
        };
        hits.sort_by_key(|h| (h.0, h.1));
        hits.dedup_by(|a, b| (a.0, a.1) == (b.0, b.1));
        Ok(hits.into_iter().map(|(_, _, hit)| hit).collect())
    }

    /// Checks one (query, row) pair exactly; `Some` when within the threshold.
    fn exact_hit(
        &self,
        qi: usize,
        query: &Query,
        row: usize,
        stored: &[f32],
        threshold: f32,
    ) -> Option<(usize, usize, Hit)> {
        if self.owners[row] == query.hash {
            return None;
        }
        let distance = exact_distance(&query.descriptor, stored);
        (distance <= f64::from(threshold)).then_some((
            qi,
            row,
            Hit {
                query: qi,
                other: self.owners[row],
                distance,
            },
        ))
    }

    fn search_host(
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

    fn search_device(
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

fn upload(rows: &[f32], device: &Device) -> candle_core::Result<Chunk> {
    let rows = Tensor::from_slice(rows, (rows.len() / DESCRIPTOR_LEN, DESCRIPTOR_LEN), device)?;
    let norms = rows.sqr()?.sum(D::Minus1)?;
    Ok(Chunk { rows, norms })
}

/// Euclidean distance summed in f64 in a fixed order: the same on every worker and device.
pub fn exact_distance(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            let d = f64::from(*x) - f64::from(*y);
            d * d
        })
        .sum::<f64>()
        .sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(ms: u64, owner: u8, value: f32) -> FacelogEntry {
        let mut descriptor = [0f32; DESCRIPTOR_LEN];
        descriptor[0] = value;
        FacelogEntry {
            id: LogId { ms, seq: 0 },
            hash: ImageHash::of(&[owner]),
            descriptor,
        }
    }

    fn query(e: &FacelogEntry) -> Query {
        Query {
            hash: e.hash,
            id: e.id,
            descriptor: e.descriptor,
        }
    }

    #[test]
    fn finds_only_older_faces_of_other_images_within_threshold() {
        let mut index = FaceIndex::new(Device::Cpu);
        let entries = [
            entry(1, 1, 0.0),
            entry(2, 2, 0.5),  // 0.5 from the first: a match
            entry(3, 3, 2.0),  // far from everything
            entry(4, 2, 0.55), // same image as entry 2
            entry(5, 4, 0.1),
        ];
        index.extend(&entries).expect("extend");
        let queries: Vec<Query> = entries.iter().map(query).collect();
        let mut hits = index.search(&queries, 0.6).expect("search");
        hits.sort_by(|a, b| {
            (a.query, a.distance)
                .partial_cmp(&(b.query, b.distance))
                .expect("cmp")
        });
        let got: Vec<(usize, u8)> = hits
            .iter()
            .map(|h| {
                let owner = (1..=4u8)
                    .find(|o| ImageHash::of(&[*o]) == h.other)
                    .expect("owner");
                (h.query, owner)
            })
            .collect();
        // Entry 2 sees entry 1; entry 4 sees entry 1 (0.55) but not its own image's entry 2;
        // entry 5 sees entries 1 (0.1), 2 (0.4) and 4 (0.45).
        assert_eq!(got, vec![(1, 1), (3, 1), (4, 1), (4, 2), (4, 2)]);
        assert!(
            hits.iter()
                .any(|h| h.query == 1 && (h.distance - 0.5).abs() < 1e-6)
        );
        assert!(
            !hits.iter().any(|h| h.query == 0),
            "the first face has nothing older"
        );
        assert!(
            !hits.iter().any(|h| h.query == 2),
            "the far face matches nothing"
        );
        assert!(hits.iter().all(|h| h.other != queries[h.query].hash));
        assert_eq!(hits.iter().filter(|h| h.query == 4).count(), 3);
    }

    #[test]
    fn the_int8_filter_and_the_matrix_path_agree_exactly() {
        let n = CHUNK_ROWS + 300;
        let entries: Vec<FacelogEntry> = (0..n)
            .map(|i| {
                let mut descriptor = [0f32; DESCRIPTOR_LEN];
                for (k, v) in descriptor.iter_mut().enumerate() {
                    *v = ((i * 31 + k * 17) as f32 * 0.618).sin() * 0.12;
                }
                FacelogEntry {
                    id: LogId {
                        ms: i as u64 + 1,
                        seq: 0,
                    },
                    hash: ImageHash::of(&(i as u64 % 500).to_le_bytes()),
                    descriptor,
                }
            })
            .collect();
        let mut host = FaceIndex::new(Device::Cpu);
        let mut matrix = FaceIndex::new_matrix(Device::Cpu);
        host.extend(&entries).expect("extend");
        matrix.extend(&entries).expect("extend");
        let queries: Vec<Query> = entries[n - 40..].iter().map(query).collect();
        let a = host.search(&queries, 0.6).expect("host");
        let b = matrix.search(&queries, 0.6).expect("matrix");
        assert!(!a.is_empty());
        assert_eq!(a, b);
    }

    #[test]
    fn results_do_not_depend_on_chunking() {
        let mut index = FaceIndex::new(Device::Cpu);
        let n = CHUNK_ROWS + 10;
        let entries: Vec<FacelogEntry> = (0..n)
            .map(|i| entry(i as u64 + 1, (i % 200) as u8, (i as f32) * 1e-4))
            .collect();
        index.extend(&entries).expect("extend");
        assert_eq!(index.len(), n);
        let probe = entry(n as u64 + 5, 250, 0.3);
        let hits = index.search(&[query(&probe)], 0.05).expect("search");
        let expected = entries
            .iter()
            .filter(|e| (e.descriptor[0] - 0.3).abs() <= 0.05 + 1e-9)
            .count();
        assert_eq!(hits.len(), expected);
        assert!(hits.iter().all(|h| h.distance <= 0.05));
    }
}
