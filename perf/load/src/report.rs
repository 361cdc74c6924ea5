//! The markdown tables of a side-by-side run: each benchmark with both systems and the ratio,
//! and the targets checked against the figures.

use std::{collections::BTreeMap, fmt::Write as _, path::Path};

use serde::{Deserialize, de::DeserializeOwned};

/// One point of `upload-load`.
#[derive(Debug, Clone, Deserialize)]
pub struct UploadPoint {
    pub system: String,
    pub mode: String,
    pub level: f64,
    pub body_bytes: usize,
    pub same_bytes: bool,
    pub ok: u64,
    pub errors: BTreeMap<String, u64>,
    pub throughput: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub server_rss_peak_mib: f64,
    pub server_cpu: f64,
    #[serde(default)]
    pub broker_cpu: f64,
    pub load_avg: String,
}

impl UploadPoint {
    /// The load point, whatever the system: mode, level, size, dedupe.
    pub fn key(&self) -> (String, u64, usize, bool) {
        (
            self.mode.clone(),
            self.level as u64,
            self.body_bytes,
            self.same_bytes,
        )
    }
}

/// One image of an `e2e` run.
#[derive(Debug, Clone, Deserialize)]
pub struct E2eImage {
    pub name: String,
    pub faces: usize,
    pub latency_ms: f64,
    pub state: String,
}

/// One `e2e` run.
#[derive(Debug, Clone, Deserialize)]
pub struct E2eRun {
    pub label: String,
    pub images: Vec<E2eImage>,
    pub seconds: f64,
    pub images_per_s: f64,
    pub pairs: Vec<(String, String)>,
    pub load_avg: String,
}

/// The peer's matching time at one size (`perf/peer/match_scale.py`).
#[derive(Debug, Clone, Deserialize)]
pub struct MatchRow {
    pub stored: u64,
    pub one_face_ms: f64,
}

/// Every JSON line of `path` (none when it is missing).
pub fn read_jsonl<T: DeserializeOwned>(path: &Path) -> anyhow::Result<Vec<T>> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(Vec::new());
    };
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| Ok(serde_json::from_str(l)?))
        .collect()
}

fn size(bytes: usize) -> String {
    if bytes >= 1 << 20 {
        format!("{:.0} MB", bytes as f64 / (1 << 20) as f64)
    } else {
        format!("{:.0} KB", bytes as f64 / 1024.0)
    }
}

fn errors(p: &UploadPoint) -> String {
    let n: u64 = p.errors.values().sum();
    if n == 0 {
        "0".into()
    } else {
        p.errors
            .iter()
            .map(|(k, v)| format!("{v} {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.2}×", a / b)
    } else {
        "–".into()
    }
}

/// Upload throughput and latency per load point, facematch beside the peer.
pub fn uploads_section(md: &mut String, points: &[UploadPoint]) -> anyhow::Result<()> {
    writeln!(md, "### Gateway uploads\n")?;
    writeln!(
        md,
        "`POST /scan/image/{{name}}` with a distinct JPEG body per request (a real photo padded to \
         size; a 36-byte comment makes each body unique), no worker consuming; the queue is \
         purged between points. Closed loop: N connections, each sending when answered. Open \
         loop: requests sent on schedule. `errors` counts non-200 answers (and, open loop, \
         requests dropped beyond 1024 in flight). CPU: cores busy in the server's processes / \
         in RabbitMQ, averaged over the point. facematch answers 200 only once the broker \
         confirmed the job (quorum queue, fsync); the peer, like the seed, publishes without \
         confirms.\n"
    )?;
    writeln!(
        md,
        "| load | body | facematch uploads/s | peer uploads/s | ratio | facematch p50 / p99 / max ms | peer p50 / p99 / max ms | errors fm / peer | RSS MiB fm / peer | CPU fm (broker) / peer (broker) | load avg |"
    )?;
    writeln!(md, "|---|---|---:|---:|---:|---|---|---|---|---|---|")?;
    let mut keys: Vec<_> = points.iter().map(UploadPoint::key).collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        let of = |s: &str| points.iter().find(|p| p.system == s && p.key() == key);
        let (fm, peer) = (of("facematch"), of("peer"));
        let label = match (key.0.as_str(), key.3) {
            ("closed", false) => format!("concurrency {}", key.1),
            ("closed", true) => format!("concurrency {}, same bytes", key.1),
            (_, _) => format!("{} /s offered", key.1),
        };
        let cell = |p: Option<&UploadPoint>, f: &dyn Fn(&UploadPoint) -> String| {
            p.map_or_else(|| "–".to_owned(), f)
        };
        writeln!(
            md,
            "| {label} | {} | {} | {} | {} | {} | {} | {} / {} | {} / {} | {} / {} | {} |",
            size(key.2),
            cell(fm, &|p| format!("{:.0}", p.throughput)),
            cell(peer, &|p| format!("{:.0}", p.throughput)),
            match (fm, peer) {
                (Some(a), Some(b)) => ratio(a.throughput, b.throughput),
                _ => "–".into(),
            },
            cell(fm, &|p| format!(
                "{:.2} / {:.2} / {:.0}",
                p.p50_ms, p.p99_ms, p.max_ms
            )),
            cell(peer, &|p| format!(
                "{:.2} / {:.2} / {:.0}",
                p.p50_ms, p.p99_ms, p.max_ms
            )),
            cell(fm, &errors),
            cell(peer, &errors),
            cell(fm, &|p| format!("{:.0}", p.server_rss_peak_mib)),
            cell(peer, &|p| format!("{:.0}", p.server_rss_peak_mib)),
            cell(fm, &|p| format!(
                "{:.2} ({:.2})",
                p.server_cpu, p.broker_cpu
            )),
            cell(peer, &|p| format!(
                "{:.2} ({:.2})",
                p.server_cpu, p.broker_cpu
            )),
            cell(fm.or(peer), &|p| p.load_avg.clone()),
        )?;
    }
    let others: Vec<&UploadPoint> = points
        .iter()
        .filter(|p| p.system != "facematch" && p.system != "peer")
        .collect();
    if !others.is_empty() {
        writeln!(md, "\nOther configurations:\n")?;
        writeln!(
            md,
            "| system | load | body | uploads/s | p50 / p99 / max ms | errors | CPU (broker) | load avg |"
        )?;
        writeln!(md, "|---|---|---|---:|---|---|---|---|")?;
        for p in others {
            writeln!(
                md,
                "| {} | {} {} | {} | {:.0} | {:.2} / {:.2} / {:.0} | {} | {:.2} ({:.2}) | {} |",
                p.system,
                p.mode,
                p.level,
                size(p.body_bytes),
                p.throughput,
                p.p50_ms,
                p.p99_ms,
                p.max_ms,
                errors(p),
                p.server_cpu,
                p.broker_cpu,
                p.load_avg
            )?;
        }
    }
    let at = |s: &str, c: u64| {
        points
            .iter()
            .find(|p| p.system == s && p.key() == ("closed".into(), c, 102_436, false))
    };
    writeln!(md)?;
    if let (Some(fm), Some(peer)) = (at("facematch", 16), at("peer", 16)) {
        let best_peer = points
            .iter()
            .filter(|p| p.system == "peer" && p.body_bytes == 102_436 && !p.same_bytes)
            .map(|p| p.throughput)
            .fold(0.0, f64::max);
        let met = fm.throughput >= 3.0 * best_peer && fm.p99_ms <= peer.p99_ms;
        writeln!(
            md,
            "- Target, 100 KB at concurrency 16: ≥ 3× the peer's best ({best_peer:.0}/s → {:.0}/s) \
             with a p99 no worse than the peer's ({:.1} ms): facematch {:.0}/s ({}), p99 {:.1} ms: \
             **{}**.",
            3.0 * best_peer,
            peer.p99_ms,
            fm.throughput,
            ratio(fm.throughput, best_peer),
            fm.p99_ms,
            if met { "met" } else { "not met" }
        )?;
    }
    if let Some(fm) = at("facematch", 1) {
        let met = fm.p50_ms < 1.0 && fm.p99_ms < 5.0;
        writeln!(
            md,
            "- Target, concurrency 1: p50 < 1 ms and p99 < 5 ms: facematch p50 {:.2} ms, p99 {:.2} ms: **{}**.",
            fm.p50_ms,
            fm.p99_ms,
            if met { "met" } else { "not met" }
        )?;
    }
    writeln!(md)?;
    Ok(())
}

/// End to end: images/s, latency, faces and match pairs of every run.
pub fn e2e_section(md: &mut String, runs: &[E2eRun]) -> anyhow::Result<()> {
    if runs.is_empty() {
        return Ok(());
    }
    writeln!(md, "### End to end, worker against worker\n")?;
    writeln!(
        md,
        "The 30-image set (`perf/load/src/images.rs`: the six demo photos, and of each a \
         quality-75 re-encoding, a half-size copy, a centre crop and a mirror image) uploaded at \
         once, timed until every image is final (facematch: `GET /images/{{hash}}` says done or \
         failed; peer: its encodings are in db 3), workers started and idle beforehand, CPU only. \
         facematch: one `gpu-worker` (batch 4); peer: 1 or 2 `peer_worker.py` processes.\n"
    )?;
    let fm = runs.iter().find(|r| r.label == "facematch");
    writeln!(
        md,
        "| run | seconds | images/s | facematch's speed | latency p50 / max ms | faces found | match pairs | load avg |"
    )?;
    writeln!(md, "|---|---:|---:|---:|---|---:|---:|---|")?;
    for r in runs {
        let mut lat: Vec<f64> = r.images.iter().map(|i| i.latency_ms).collect();
        lat.sort_by(f64::total_cmp);
        writeln!(
            md,
            "| {} | {:.1} | {:.2} | {} | {:.0} / {:.0} | {} | {} | {} |",
            r.label,
            r.seconds,
            r.images_per_s,
            fm.map_or("–".into(), |f| ratio(f.images_per_s, r.images_per_s)),
            lat.get(lat.len() / 2).copied().unwrap_or(0.0),
            lat.last().copied().unwrap_or(0.0),
            r.images.iter().map(|i| i.faces).sum::<usize>(),
            r.pairs.len(),
            r.load_avg,
        )?;
    }
    writeln!(md, "\nFaces found per image:\n")?;
    write!(md, "| image |")?;
    for r in runs {
        write!(md, " {} |", r.label)?;
    }
    writeln!(md)?;
    writeln!(md, "|---|{}", "---:|".repeat(runs.len()))?;
    for (i, image) in runs[0].images.iter().enumerate() {
        write!(md, "| {} |", image.name)?;
        for r in runs {
            let cell = r
                .images
                .iter()
                .find(|x| x.name == image.name)
                .map_or("–".into(), |x| {
                    if x.state == "done" {
                        x.faces.to_string()
                    } else {
                        x.state.clone()
                    }
                });
            write!(md, " {cell} |")?;
        }
        writeln!(md)?;
        let _ = i;
    }
    if let Some(fm) = fm {
        writeln!(
            md,
            "\nMatch pairs (image pairs sharing a face) against facematch's:\n"
        )?;
        writeln!(
            md,
            "| run | pairs | also found by facematch | only this run | only facematch |"
        )?;
        writeln!(md, "|---|---:|---:|---|---|")?;
        for r in runs.iter().filter(|r| r.label != "facematch") {
            let both = r.pairs.iter().filter(|p| fm.pairs.contains(p)).count();
            // The count, and a few of the pairs as examples.
            let only = |a: &E2eRun, b: &E2eRun| {
                let v: Vec<String> = a
                    .pairs
                    .iter()
                    .filter(|p| !b.pairs.contains(p))
                    .map(|(x, y)| format!("{x}–{y}"))
                    .collect();
                match v.len() {
                    0 => "none".to_owned(),
                    n if n <= 6 => format!("{n}: {}", v.join(", ")),
                    n => format!("{n}, e.g. {}, …", v[..6].join(", ")),
                }
            };
            writeln!(
                md,
                "| {} | {} | {both} | {} | {} |",
                r.label,
                r.pairs.len(),
                only(r, fm),
                only(fm, r)
            )?;
        }
    }
    writeln!(md)?;
    Ok(())
}

/// One new face against 10^4..10^6 stored: facematch's index against the peer's numpy.
pub fn match_section(md: &mut String, index_md: &str, peer: &[MatchRow]) -> anyhow::Result<()> {
    // index-search's rows: | stored | 1 face | 8 faces | bytes | per face | RSS |
    let ours: BTreeMap<u64, f64> = index_md
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let stored = cells.get(1)?.parse::<u64>().ok()?;
            let ms = cells.get(2)?.trim_end_matches(" ms").parse::<f64>().ok()?;
            Some((stored, ms))
        })
        .collect();
    if ours.is_empty() {
        return Ok(());
    }
    writeln!(md, "### Matching scale\n")?;
    writeln!(
        md,
        "One new face against N stored random descriptors, median of 20: facematch's CPU index \
         (`index-search`: int8 filter scan, exact f64 recheck) against the peer's \
         `face_recognition.face_distance` (numpy; its worker also reads every stored encoding \
         from Redis per image, not timed here).\n"
    )?;
    writeln!(
        md,
        "| stored faces | facematch ms | peer ms | facematch's speed |"
    )?;
    writeln!(md, "|---:|---:|---:|---:|")?;
    for (stored, ms) in &ours {
        let p = peer
            .iter()
            .find(|r| r.stored == *stored)
            .map(|r| r.one_face_ms);
        writeln!(
            md,
            "| {stored} | {ms:.2} | {} | {} |",
            p.map_or("–".into(), |p| format!("{p:.1}")),
            p.map_or("–".into(), |p| ratio(p, *ms)),
        )?;
    }
    if let Some(ms) = ours.get(&1_000_000) {
        writeln!(
            md,
            "\n- Target, one face against 10^6 under 10 ms on the CPU: {ms:.2} ms: **{}**.",
            if *ms < 10.0 { "met" } else { "not met" }
        )?;
    }
    writeln!(md)?;
    Ok(())
}
