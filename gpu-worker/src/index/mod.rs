//! The worker's in-memory copy of `facelog`: every stored descriptor as a row of a matrix on the
//! worker's device, compared with a whole batch of new faces in one pass.
//!
//! Exactness: the fast pass is only a conservative filter — an int8 copy scanned with integer
//! arithmetic on the CPU, the matrix product on CUDA — and every candidate's distance is
//! recomputed in f64 from the stored f32 values, so the answer never depends on how a batch was
//! formed or how the device sums.

mod device;
mod erase;
mod host;
mod quantized;

use candle_core::Device;
use facematch_core::{
    ImageHash,
    store::{DESCRIPTOR_LEN, FacelogEntry, LogId},
};

use self::{
    device::{Chunk, upload},
    quantized::QUANT_BYTES,
};

/// Rows per sealed device chunk (CUDA).
pub const CHUNK_ROWS: usize = 16_384;

/// Why the index could not take entries or answer.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error(
        "facelog entry {0} holds a descriptor that is not a finite number; the store is \
         damaged (repair or delete the entry)"
    )]
    NotFinite(LogId),
    #[error("device: {0}")]
    Device(#[from] candle_core::Error),
}

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
    /// The newest log entry read, face or erasure (ahead of `ids` after an erasure).
    seen: Option<LogId>,
    /// Rows erased on the device layout, skipped by searches until the index is rebuilt (the
    /// CPU layout drops its erased rows at once).
    erased: std::collections::HashSet<LogId>,
    /// The device layout's copy of the first rows of its host tail, grown by the rows appended
    /// since the last search rather than uploaded whole by every search.
    tail_copy: std::sync::Mutex<Option<Chunk>>,
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
            seen: None,
            erased: std::collections::HashSet::new(),
            tail_copy: std::sync::Mutex::new(None),
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

    /// Faces held (erased ones excluded).
    pub fn len(&self) -> usize {
        self.ids.len() - self.erased.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The newest log entry read into the index (a face or an erasure).
    pub fn last_id(&self) -> Option<LogId> {
        self.seen.max(self.ids.last().copied())
    }

    /// Notes that the log was read up to `id` (an erasure entry adds no row).
    pub fn saw(&mut self, id: LogId) {
        self.seen = self.seen.max(Some(id));
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

    /// Bytes held by the index (rows erased on the device layout still count: they are held
    /// until a rebuild).
    pub fn memory_bytes(&self) -> usize {
        self.ids.len() * self.bytes_per_face()
    }

    /// Appends entries newer than [`Self::last_id`] (older ones are ignored).
    pub fn extend(&mut self, entries: &[FacelogEntry]) -> Result<(), IndexError> {
        // All or nothing: a damaged entry leaves the index as it was.
        if let Some(bad) = entries
            .iter()
            .find(|e| !e.descriptor.iter().all(|v| v.is_finite()))
        {
            return Err(IndexError::NotFinite(bad.id));
        }
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
                        match upload(tail, &self.device) {
                            Ok(chunk) => chunks.push(chunk),
                            Err(e) => {
                                tail.truncate(tail.len() - DESCRIPTOR_LEN);
                                return Err(e.into());
                            }
                        }
                        tail.clear();
                        // A new tail: its copy starts afresh.
                        *self
                            .tail_copy
                            .get_mut()
                            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
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
    pub fn search(&self, queries: &[Query], threshold: f32) -> Result<Vec<Hit>, IndexError> {
        if queries.is_empty() || self.ids.is_empty() {
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
        if self.owners[row] == query.hash
            || (!self.erased.is_empty() && self.erased.contains(&self.ids[row]))
        {
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

    /// Entry `i` of a log of varied descriptors (`images` images, faces spread over them).
    fn varied(i: usize, images: u64) -> FacelogEntry {
        let mut descriptor = [0f32; DESCRIPTOR_LEN];
        for (k, v) in descriptor.iter_mut().enumerate() {
            *v = ((i * 31 + k * 17) as f32 * 0.618).sin() * 0.12;
        }
        FacelogEntry {
            id: LogId {
                ms: i as u64 + 1,
                seq: 0,
            },
            hash: ImageHash::of(&(i as u64 % images).to_le_bytes()),
            descriptor,
        }
    }

    #[test]
    fn the_int8_filter_and_the_matrix_path_agree_exactly() {
        let n = CHUNK_ROWS + 300;
        let entries: Vec<FacelogEntry> = (0..n).map(|i| varied(i, 500)).collect();
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
    fn the_device_tail_copy_follows_appends_and_seals() {
        let make = |i: usize| varied(i, 300);
        let mut host = FaceIndex::new(Device::Cpu);
        let mut matrix = FaceIndex::new_matrix(Device::Cpu);
        let mut next = 0;
        // Searches between appends, across a seal (16,384 rows), a search with nothing new, and
        // a refused append in between.
        for step in [5000, 1, 0, 6000, 5383, 1, 700, 3] {
            let entries: Vec<FacelogEntry> = (next..next + step).map(make).collect();
            next += step;
            host.extend(&entries).expect("extend");
            matrix.extend(&entries).expect("extend");
            let mut bad = make(next + 1_000_000);
            bad.descriptor[0] = f32::INFINITY;
            assert!(matrix.extend(&[bad]).is_err());
            let queries: Vec<Query> = (next.saturating_sub(5)..next + 3)
                .map(|i| query(&make(i)))
                .collect();
            assert_eq!(
                host.search(&queries, 0.6).expect("host"),
                matrix.search(&queries, 0.6).expect("matrix"),
                "after {next} rows"
            );
        }
        assert!(next > CHUNK_ROWS, "the tail was sealed once");
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

    #[test]
    fn a_descriptor_that_is_not_finite_is_refused_and_changes_nothing() {
        for mut index in [
            FaceIndex::new(Device::Cpu),
            FaceIndex::new_matrix(Device::Cpu),
        ] {
            index.extend(&[entry(1, 1, 0.0)]).expect("extend");
            let mut bad = entry(3, 3, 0.0);
            bad.descriptor[7] = f32::NAN;
            let err = index
                .extend(&[entry(2, 2, 0.1), bad])
                .expect_err("NaN accepted");
            assert!(matches!(
                err,
                IndexError::NotFinite(LogId { ms: 3, seq: 0 })
            ));
            assert!(err.to_string().contains("not a finite number"), "{err}");
            assert_eq!(index.len(), 1, "nothing of the failed call was kept");
            index.extend(&[entry(2, 2, 0.1)]).expect("extend after");
            assert_eq!(index.len(), 2);
        }
    }
}
