//! Time to compare new faces against 10^4, 10^5 and 10^6 stored faces with the worker's
//! index, and the index's memory per million faces; `--check-against-cpu` also requires the
//! device's index to find exactly what the CPU's does (see `facematch_perf::index_bench`).
//!
//! `cargo run --release -p facematch-perf --bin index-search [-- --sizes 10000,100000,1000000]`

use clap::Parser;
use facematch_perf::index_bench::{self, IndexBenchArgs};

#[derive(Debug, Parser)]
struct Args {
    #[command(flatten)]
    bench: IndexBenchArgs,
}

fn main() -> anyhow::Result<()> {
    anyhow::ensure!(
        index_bench::run(&Args::parse().bench)?,
        "the device's index and the CPU's differ (see the table)"
    );
    Ok(())
}
