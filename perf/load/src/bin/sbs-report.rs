//! Turns a `perf/side-by-side.sh` run (`uploads.jsonl`, `e2e.jsonl`, `index.md`,
//! `peer-match.jsonl`) into markdown tables with both systems and their ratio, PNG plots of
//! latency against load, and the "Side by side" section at the end of `perf/RESULTS.md`
//! (replaced between its markers on a later run, so other sections are left alone).

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
};

use anyhow::Context;
use clap::Parser;
use facematch_load::report::{E2eRun, MatchRow, UploadPoint, read_jsonl};

#[derive(Debug, Parser)]
struct Args {
    /// The run's output folder.
    #[arg(long)]
    dir: PathBuf,
    /// 1 when the run was `--quick`.
    #[arg(long, default_value_t = 0)]
    quick: u8,
    /// Cargo profile of the binaries measured (`release` or `dev`).
    #[arg(long, default_value = "release")]
    profile: String,
    /// The command that made the run, recorded with it.
    #[arg(long)]
    command: String,
    /// Where the section is written (between its markers, else appended).
    #[arg(long)]
    results: PathBuf,
    /// Folder for the PNG plots.
    #[arg(long)]
    plots: PathBuf,
}

const BEGIN: &str = "<!-- side-by-side: begin (written by perf/side-by-side.sh) -->";
const END: &str = "<!-- side-by-side: end -->";

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            let kb: u64 = s.lines().next()?.split_whitespace().nth(1)?.parse().ok()?;
            Some(kb >> 20)
        })
        .unwrap_or(0);
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cpus} CPUs ({cpu}), {mem} GiB")
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let uploads: Vec<UploadPoint> = read_jsonl(&args.dir.join("uploads.jsonl"))?;
    let e2e: Vec<E2eRun> = read_jsonl(&args.dir.join("e2e.jsonl"))?;
    let peer_match: Vec<MatchRow> = read_jsonl(&args.dir.join("peer-match.jsonl"))?;
    let index = std::fs::read_to_string(args.dir.join("index.md")).unwrap_or_default();
    std::fs::create_dir_all(&args.plots)?;

    let mut md = String::new();
    let date = std::process::Command::new("date")
        .arg("-u")
        .arg("+%Y-%m-%d %H:%M UTC")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    writeln!(md, "{BEGIN}")?;
    writeln!(md, "## Side by side with the seed's design\n")?;
    writeln!(
        md,
        "facematch against the peer (`perf/peer`: Flask under gunicorn with 2 sync workers, pika, \
         `face_recognition` worker with prefetch 1, Redis dbs 1–4), same RabbitMQ and Redis.\n"
    )?;
    writeln!(
        md,
        "**Machine:** {}; run {date}; {} build{}.\n",
        machine(),
        args.profile,
        if args.quick == 1 {
            "; `--quick` (short points: indicative only)"
        } else {
            ""
        }
    )?;
    writeln!(
        md,
        "**Command:** `{}` (builds, installs the peer, runs everything below, writes this section and `perf/plots/`).\n",
        args.command
    )?;
    facematch_load::report::uploads_section(&mut md, &uploads)?;
    for (name, file) in facematch_load::plot::upload_plots(&uploads, &args.plots)? {
        writeln!(md, "![{name}]({})\n", relative(&args.results, &file))?;
    }
    facematch_load::report::e2e_section(&mut md, &e2e)?;
    facematch_load::report::match_section(&mut md, &index, &peer_match)?;
    writeln!(md, "{END}")?;
    std::fs::write(args.dir.join("side-by-side.md"), &md)?;

    let old = std::fs::read_to_string(&args.results)
        .with_context(|| format!("cannot read {}", args.results.display()))?;
    let new = match (old.find(BEGIN), old.find(END)) {
        (Some(b), Some(e)) if e > b => {
            format!("{}{}{}", &old[..b], md.trim_end(), &old[e + END.len()..])
        }
        _ => format!("{}\n\n{}", old.trim_end(), md),
    };
    std::fs::write(&args.results, new)?;
    println!(
        "wrote {} and {}",
        args.results.display(),
        args.plots.display()
    );
    Ok(())
}

/// `file` relative to the folder of `doc` (both under the repository root).
fn relative(doc: &Path, file: &Path) -> String {
    let base = doc.parent().unwrap_or(Path::new(""));
    file.strip_prefix(base)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| file.display().to_string())
}
