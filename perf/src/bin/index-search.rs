//! Time to compare new faces against 10^4, 10^5 and 10^6 stored faces with the worker's
//! index, and the index's memory per million faces.
//!
//! `cargo run --release -p facematch-perf --bin index-search [-- --sizes 10000,100000,1000000]`

use std::time::Instant;

use clap::Parser;
use facematch_core::{
    ImageHash,
    store::{DESCRIPTOR_LEN, FacelogEntry, LogId},
};
use facematch_perf::{median, rss_bytes};
use gpu_worker::index::{FaceIndex, Query};

#[derive(Debug, Parser)]
struct Args {
    /// Index sizes to measure.
    #[arg(long, value_delimiter = ',', default_values_t = [10_000usize, 100_000, 1_000_000])]
    sizes: Vec<usize>,
    /// Timed searches per size.
    #[arg(long, default_value_t = 20)]
    repeats: usize,
    /// `cpu` or `cuda[:N]`.
    #[arg(long, default_value = "cpu")]
    device: String,
}

/// A random descriptor on the scale of real ones (norm ≈ 1).
fn descriptor() -> [f32; DESCRIPTOR_LEN] {
    let mut d = [0f32; DESCRIPTOR_LEN];
    for v in &mut d {
        *v = (rand::random::<f32>() - 0.5) * 0.3;
    }
    d
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let device = gpu_worker::select_device(&args.device)?;
    println!(
        "| stored faces | 1 new face (median) | 8 new faces (median) | index bytes | bytes per face | RSS |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: | ---: |");
    for &size in &args.sizes {
        let mut index = FaceIndex::new(device.clone());
        let mut page = Vec::with_capacity(10_000);
        for i in 0..size {
            page.push(FacelogEntry {
                id: LogId {
                    ms: i as u64 + 1,
                    seq: 0,
                },
                hash: ImageHash::of(&(i as u64).to_le_bytes()),
                descriptor: descriptor(),
            });
            if page.len() == 10_000 {
                index.extend(&page)?;
                page.clear();
            }
        }
        index.extend(&page)?;
        let newest = LogId {
            ms: size as u64 + 10,
            seq: 0,
        };
        let queries: Vec<Query> = (0..8)
            .map(|i| Query {
                hash: ImageHash::of(&[i as u8, 0xAA]),
                id: newest,
                descriptor: descriptor(),
            })
            .collect();
        index.search(&queries, 0.6)?; // warm-up
        let mut one = Vec::new();
        let mut eight = Vec::new();
        for _ in 0..args.repeats {
            let t = Instant::now();
            index.search(&queries[..1], 0.6)?;
            one.push(t.elapsed());
            let t = Instant::now();
            index.search(&queries, 0.6)?;
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
    }
    Ok(())
}
