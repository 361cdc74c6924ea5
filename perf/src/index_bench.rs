//! Time to compare new faces against 10^4..10^6 stored faces with the worker's index, the
//! index's memory, and (with `--check-against-cpu`) whether the chosen device's index finds
//! exactly what the CPU's does.

use std::time::{Duration, Instant};

use candle_core::Device;
use facematch_core::{
    ImageHash,
    store::{DESCRIPTOR_LEN, FacelogEntry, LogId},
};
use gpu_worker::index::{FaceIndex, Hit, Query};
use rand::{Rng, SeedableRng, rngs::StdRng};

use crate::{median, rss_bytes};

const THRESHOLD: f32 = 0.6;
/// New faces per search.
const QUERIES: usize = 8;
/// One stored face in this many is planted near a query when checking (see [`planted`]).
const PLANT_EVERY: usize = 1_000;

#[derive(Debug, Clone, clap::Args)]
pub struct IndexBenchArgs {
    /// Index sizes to measure.
    #[arg(long, value_delimiter = ',', default_values_t = [10_000usize, 100_000, 1_000_000])]
    pub sizes: Vec<usize>,
    /// Timed searches per size.
    #[arg(long, default_value_t = 20)]
    pub repeats: usize,
    /// `cpu` or `cuda[:N]`.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Also build the CPU index of the same faces (the matrix path when the device is the CPU
    /// too) and require the same pairs at bit-equal distances; plants near faces so there are
    /// pairs to compare. Exits non-zero on any difference.
    #[arg(long)]
    pub check_against_cpu: bool,
}

/// A random descriptor on the scale of real ones (norm ≈ 1).
fn descriptor(rng: &mut impl Rng) -> [f32; DESCRIPTOR_LEN] {
    let mut d = [0f32; DESCRIPTOR_LEN];
    for v in &mut d {
        *v = (rng.random::<f32>() - 0.5) * 0.3;
    }
    d
}

/// `centre` moved by `distance` in a random direction: a stored face at a known distance
/// from a query, from near zero to past the threshold.
fn planted(rng: &mut impl Rng, centre: &[f32; DESCRIPTOR_LEN]) -> [f32; DESCRIPTOR_LEN] {
    let direction = descriptor(rng);
    let norm = direction.iter().map(|v| v * v).sum::<f32>().sqrt();
    let distance = rng.random::<f32>() * THRESHOLD * 1.4;
    let mut d = *centre;
    for (v, u) in d.iter_mut().zip(direction) {
        *v += u / norm * distance;
    }
    d
}

/// The new faces, newer than every stored one, and the stored faces (one image each, in log
/// order) made on demand: the same for the same size, so a second index gets the same rows
/// without holding them all twice.
fn faces(size: usize, plant: bool) -> (Vec<Query>, impl Iterator<Item = FacelogEntry>) {
    let mut rng = StdRng::seed_from_u64(size as u64);
    let queries: Vec<Query> = (0..QUERIES)
        .map(|i| Query {
            hash: ImageHash::of(&[i as u8, 0xAA]),
            id: LogId {
                ms: size as u64 + 10,
                seq: 0,
            },
            descriptor: descriptor(&mut rng),
        })
        .collect();
    let centres: Vec<_> = queries.iter().map(|q| q.descriptor).collect();
    let entries = (0..size).map(move |i| FacelogEntry {
        id: LogId {
            ms: i as u64 + 1,
            seq: 0,
        },
        hash: ImageHash::of(&(i as u64).to_le_bytes()),
        descriptor: if plant && i % PLANT_EVERY == 0 {
            planted(&mut rng, &centres[(i / PLANT_EVERY) % QUERIES])
        } else {
            descriptor(&mut rng)
        },
    });
    (queries, entries)
}

/// Fills `index` in pages, as the worker's catch-up reads the log.
fn build(
    mut index: FaceIndex,
    mut entries: impl Iterator<Item = FacelogEntry>,
) -> Result<FaceIndex, gpu_worker::index::IndexError> {
    let mut page = Vec::with_capacity(10_000);
    loop {
        page.clear();
        page.extend(entries.by_ref().take(10_000));
        if page.is_empty() {
            return Ok(index);
        }
        index.extend(&page)?;
    }
}

/// The CPU search's result against the device's, at one size.
#[derive(Debug, Clone)]
pub struct Checked {
    pub size: usize,
    pub device_hits: usize,
    pub cpu_hits: usize,
    /// Pairs in one result and not the other, or at another distance.
    pub differing: usize,
    pub cpu_search: Duration,
}

impl Checked {
    pub fn ok(&self) -> bool {
        self.differing == 0 && self.device_hits == self.cpu_hits && self.cpu_hits > 0
    }
}

fn compare(a: &[Hit], b: &[Hit]) -> usize {
    let key = |h: &Hit| (h.query, h.other, h.distance.to_bits());
    let mut a: Vec<_> = a.iter().map(key).collect();
    let mut b: Vec<_> = b.iter().map(key).collect();
    a.sort();
    b.sort();
    let common = {
        let (mut i, mut j, mut n) = (0, 0, 0);
        while i < a.len() && j < b.len() {
            match a[i].cmp(&b[j]) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => (i, j, n) = (i + 1, j + 1, n + 1),
            }
        }
        n
    };
    a.len() + b.len() - 2 * common
}

/// Prints the timing table (and the check's table); `Ok(false)` when a check failed.
pub fn run(args: &IndexBenchArgs) -> anyhow::Result<bool> {
    let device = gpu_worker::select_device(&args.device)?;
    println!(
        "| stored faces | 1 new face (median) | 8 new faces (median) | index bytes | bytes per face | RSS |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut checks = Vec::new();
    for &size in &args.sizes {
        let (queries, entries) = faces(size, args.check_against_cpu);
        let index = build(FaceIndex::new(device.clone()), entries)?;
        let found = index.search(&queries, THRESHOLD)?; // also the warm-up
        let mut one = Vec::new();
        let mut eight = Vec::new();
        for _ in 0..args.repeats {
            let t = Instant::now();
            index.search(&queries[..1], THRESHOLD)?;
            one.push(t.elapsed());
            let t = Instant::now();
            index.search(&queries, THRESHOLD)?;
            eight.push(t.elapsed());
        }
        println!(
            "| {size} | {:.2} ms | {:.2} ms | {} | {} | {} MiB |",
            median(one).as_secs_f64() * 1e3,
            median(eight).as_secs_f64() * 1e3,
            index.memory_bytes(),
            index.memory_bytes() / size.max(1),
            rss_bytes().unwrap_or(0) >> 20,
        );
        if args.check_against_cpu {
            drop(index);
            // On the CPU the other path is the matrix layout CUDA uses, computed on the CPU.
            let reference = if device.is_cpu() {
                FaceIndex::new_matrix(Device::Cpu)
            } else {
                FaceIndex::new(Device::Cpu)
            };
            let reference = build(reference, faces(size, true).1)?;
            reference.search(&queries, THRESHOLD)?; // warm-up
            let t = Instant::now();
            let expected = reference.search(&queries, THRESHOLD)?;
            checks.push(Checked {
                size,
                device_hits: found.len(),
                cpu_hits: expected.len(),
                differing: compare(&found, &expected),
                cpu_search: t.elapsed(),
            });
        }
    }
    if checks.is_empty() {
        return Ok(true);
    }
    let other = if device.is_cpu() {
        "CPU matrix path"
    } else {
        "CPU path"
    };
    println!();
    println!(
        "| stored faces | pairs ≤ {THRESHOLD} ({}) | pairs ({other}) | differing pairs | {other}, 8 new faces | identical |",
        args.device
    );
    println!("| ---: | ---: | ---: | ---: | ---: | :---: |");
    for c in &checks {
        println!(
            "| {} | {} | {} | {} | {:.2} ms | {} |",
            c.size,
            c.device_hits,
            c.cpu_hits,
            c.differing,
            c.cpu_search.as_secs_f64() * 1e3,
            if c.ok() { "yes" } else { "**NO**" },
        );
    }
    Ok(checks.iter().all(Checked::ok))
}
