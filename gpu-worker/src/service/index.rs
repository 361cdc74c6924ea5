//! The worker's in-memory copy of `facelog`: every stored descriptor as rows of a matrix on the
//! worker's device, compared with a batch of new faces as one matrix product per chunk.
//!
//! Exactness: the matrix product is only a filter (with a margin); every candidate's distance is
//! recomputed in f64 from the stored f32 values, so the answer never depends on how a batch was
//! formed or how the device sums.

use candle_core::{D, DType, Device, Tensor};
use facematch_core::{
    ImageHash,
    store::{DESCRIPTOR_LEN, FacelogEntry, LogId},
};

/// Rows per sealed device chunk.
pub const CHUNK_ROWS: usize = 16_384;
/// Slack on the squared threshold for the filter, far above f32 summation error.
const FILTER_MARGIN: f32 = 1e-3;

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

/// The descriptor matrix plus each row's image and log id (rows in log order).
pub struct FaceIndex {
    device: Device,
    chunks: Vec<Chunk>,
    tail: Vec<f32>,
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
        Self {
            device,
            chunks: Vec::new(),
            tail: Vec::with_capacity(CHUNK_ROWS * DESCRIPTOR_LEN),
            owners: Vec::new(),
            ids: Vec::new(),
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

    /// Bytes held for descriptors, norms, owners and ids.
    pub fn memory_bytes(&self) -> usize {
        self.len() * (DESCRIPTOR_LEN * 4 + 4 + 16 + 16)
    }

    /// Appends entries newer than [`Self::last_id`] (older ones are ignored).
    pub fn extend(&mut self, entries: &[FacelogEntry]) -> candle_core::Result<()> {
        for entry in entries {
            if self.last_id().is_some_and(|last| entry.id <= last) {
                continue;
            }
            self.tail.extend_from_slice(&entry.descriptor);
            self.owners.push(entry.hash);
            self.ids.push(entry.id);
            if self.tail.len() == CHUNK_ROWS * DESCRIPTOR_LEN {
                let rows =
                    Tensor::from_slice(&self.tail, (CHUNK_ROWS, DESCRIPTOR_LEN), &self.device)?;
                let norms = rows.sqr()?.sum(D::Minus1)?;
                self.chunks.push(Chunk { rows, norms });
                self.tail.clear();
            }
        }
        Ok(())
    }

    /// Every stored face within `threshold` of each query that is older than the query
    /// (`id` lower) and belongs to another image.
    pub fn search(&self, queries: &[Query], threshold: f32) -> candle_core::Result<Vec<Hit>> {
        if queries.is_empty() || self.is_empty() {
            return Ok(Vec::new());
        }
        let flat: Vec<f32> = queries.iter().flat_map(|q| q.descriptor).collect();
        let q = Tensor::from_vec(flat, (queries.len(), DESCRIPTOR_LEN), &self.device)?;
        let q_norms = q.sqr()?.sum_keepdim(D::Minus1)?;
        // Rows each query may see: those with a lower log id.
        let visible: Vec<usize> = queries
            .iter()
            .map(|query| self.ids.partition_point(|id| *id < query.id))
            .collect();
        let limit = threshold * threshold + FILTER_MARGIN;
        let mut hits = Vec::new();
        let tail_rows = self.tail.len() / DESCRIPTOR_LEN;
        let tail = if tail_rows > 0 {
            let rows = Tensor::from_slice(&self.tail, (tail_rows, DESCRIPTOR_LEN), &self.device)?;
            let norms = rows.sqr()?.sum(D::Minus1)?;
            Some(Chunk { rows, norms })
        } else {
            None
        };
        for (c, chunk) in self.chunks.iter().chain(tail.as_ref()).enumerate() {
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
            for (qi, row_flags) in close.iter().enumerate() {
                for (r, _) in row_flags.iter().enumerate().filter(|(_, f)| **f != 0) {
                    let row = base + r;
                    if row >= visible[qi] || self.owners[row] == queries[qi].hash {
                        continue;
                    }
                    let stored = self.row(&chunk.rows, r)?;
                    let distance = exact_distance(&queries[qi].descriptor, &stored);
                    if distance <= f64::from(threshold) {
                        hits.push(Hit {
                            query: qi,
                            other: self.owners[row],
                            distance,
                        });
                    }
                }
            }
        }
        Ok(hits)
    }

    fn row(&self, rows: &Tensor, r: usize) -> candle_core::Result<Vec<f32>> {
        rows.get(r)?.to_vec1::<f32>()
    }
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
