//! Shared helpers of the benchmark binaries in `src/bin/`, and the measurements that more than
//! one of them runs (`gpu-check` runs them all on one device).

pub mod crowding;
pub mod index_bench;
pub mod pipeline_bench;

use std::{path::Path, time::Duration};

use anyhow::Context;

/// Median of a set of durations.
pub fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}

/// Resident set size of this process in bytes (Linux), if known.
pub fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Peak resident set size of this process in bytes (Linux `VmHWM`), if known.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// The six demo JPEGs of `weights_dir/demo` (put there by `scripts/fetch-weights.sh`).
pub fn demo_jpegs(weights_dir: &Path) -> anyhow::Result<Vec<Vec<u8>>> {
    (1..=6)
        .map(|i| {
            let path = weights_dir.join(format!("demo/sample{i}.jpg"));
            std::fs::read(&path)
                .with_context(|| format!("{} (run scripts/fetch-weights.sh)", path.display()))
        })
        .collect()
}

/// The same JPEG with a comment segment after SOI: same pixels, different bytes and hash.
pub fn unique_jpeg(jpeg: &[u8], n: usize) -> Vec<u8> {
    let note = format!("facematch perf {n}");
    let len = u16::try_from(note.len() + 2).unwrap_or(u16::MAX);
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xFE]);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(note.as_bytes());
    out.extend_from_slice(&jpeg[2..]);
    out
}
