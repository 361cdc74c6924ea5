//! `facematch scan PATH|URL...`: uploads files (folders walked for images) and URLs with
//! bounded concurrency and prints one line per item as it is queued (`HASH  PATH`, or JSON).
//! With `--wait` it follows every image to `done`/`failed`, then prints each one's state,
//! faces and matches in argument order: matches are read once all images of the run are final,
//! so a pair found in one batch or in either order shows on both lines.
//!
//! Items are independent: a missing file or a refused upload is reported and counted (exit 1)
//! while the others go on. An unreachable gateway makes the run exit 2.

use std::{ffi::OsString, time::Duration};

use clap::Args;
use facematch_core::ImageHash;
use futures_util::{StreamExt, stream};
use serde::Serialize;
use tokio::time::Instant;

use crate::{
    exit::Outcome,
    http::{ApiError, Gateway, GatewayArgs, ImageDoc},
    inputs::{self, Item},
    output::Printer,
};

/// Longest long-poll asked of the gateway in one request (it caps `wait` at 60 s).
const POLL_SECS: u64 = 60;
/// Tries of one upload answered 429 (busy) or 503 (broker/Redis down).
const ATTEMPTS: u32 = 5;
/// Images followed (long-polled) at once with `--wait`; uploads pause while all are busy.
const FOLLOWERS: usize = 64;

/// `facematch scan` arguments.
#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Image files, folders (walked recursively for .jpg .jpeg .png .webp .gif .bmp, any
    /// case) and http(s) URLs (downloaded by the gateway).
    #[arg(required = true, value_name = "PATH|URL")]
    pub inputs: Vec<OsString>,

    /// Uploads in flight at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,

    /// Follow each image until it is done or failed, for at most SECONDS each (default
    /// 300), then print every image's state, face count and matches, in argument order.
    #[arg(
        long,
        value_name = "SECONDS",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "300"
    )]
    pub wait: Option<u64>,

    /// Print one JSON object per line ({"name", "path", "hash"} or {"name", "error"}, plus
    /// "state", "faces", "matches" with --wait) instead of text; no progress bar.
    #[arg(long)]
    pub json: bool,
}

/// What happened to one item: a JSON line as is, or the source of a text line.
#[derive(Debug, Default, Serialize)]
struct Report {
    /// The name the gateway recorded: the file's base name or the URL.
    name: String,
    /// The file as given or found in a folder.
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hash: Option<ImageHash>,
    /// `done`, `failed`, or the state it was still in when `--wait` ran out.
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    faces: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    matches: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// The gateway's error code, when it refused the item.
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<String>,
    #[serde(skip)]
    index: usize,
    #[serde(skip)]
    label: String,
    #[serde(skip)]
    outcome: Outcome,
}

impl Report {
    fn new(index: usize, item: &Item) -> Self {
        Self {
            index,
            name: item.name(),
            path: item.path().map(|p| p.display().to_string()),
            label: item.label(),
            ..Self::default()
        }
    }

    fn fail(mut self, error: String) -> Self {
        self.error = Some(error);
        self.outcome = self.outcome.and(Outcome::SomeFailed);
        self
    }

    fn api_fail(mut self, e: &ApiError) -> Self {
        self.code = e.code().map(str::to_owned);
        let fatal = e.is_connection();
        let mut report = self.fail(e.to_string());
        if fatal {
            report.outcome = Outcome::Fatal;
        }
        report
    }

    fn text(&self) -> String {
        let Some(hash) = self.hash else {
            return String::new();
        };
        let mut line = format!("{hash}  {}", self.label);
        let Some(state) = &self.state else {
            return line;
        };
        line.push_str("  ");
        line.push_str(state);
        if let Some(faces) = self.faces {
            line.push_str(&format!(
                "  {faces} face{}",
                if faces == 1 { "" } else { "s" }
            ));
        }
        match &self.matches {
            Some(m) if !m.is_empty() => line.push_str(&format!("  matches: {}", m.join(", "))),
            Some(_) => line.push_str("  no matches"),
            None => {}
        }
        line
    }
}

/// Runs `facematch scan`.
pub async fn run(gateway: &GatewayArgs, args: ScanArgs) -> anyhow::Result<Outcome> {
    let gateway = Gateway::connect(gateway)?;
    let items = inputs::expand(&args.inputs);
    if items.is_empty() {
        eprintln!("facematch: no images found (folders are searched for image extensions)");
        return Ok(Outcome::Ok);
    }
    gateway.ping().await?;

    let printer = Printer::new(items.len() as u64, args.json);
    let concurrency = usize::from(args.concurrency);
    let gw = &gateway;
    let uploads = stream::iter(items.into_iter().enumerate())
        .map(|(index, item)| upload(gw, index, item))
        .buffer_unordered(concurrency);
    let mut summary = Summary::default();
    match args.wait {
        None => {
            let mut uploads = uploads;
            while let Some(report) = uploads.next().await {
                summary.print(&printer, &report, args.json);
                printer.tick();
            }
        }
        Some(secs) => {
            // Matches are read once every image of the run is final, so that each line lists
            // the others of this run however the workers ordered them; lines in input order.
            let mut reports: Vec<Report> = uploads
                .map(|report| follow(gw, report, secs))
                .buffer_unordered(FOLLOWERS)
                .inspect(|_| printer.tick())
                .collect()
                .await;
            reports.sort_by_key(|r| r.index);
            let mut finished = stream::iter(reports)
                .map(|report| add_matches(gw, report))
                .buffered(concurrency);
            while let Some(report) = finished.next().await {
                summary.print(&printer, &report, args.json);
            }
        }
    }
    printer.finish();
    if summary.failed > 0 && !args.json {
        eprintln!(
            "facematch: {} of {} items failed",
            summary.failed, summary.total
        );
    }
    Ok(summary.outcome)
}

/// Counts of a run.
#[derive(Debug, Default)]
struct Summary {
    outcome: Outcome,
    failed: usize,
    total: usize,
}

impl Summary {
    fn print(&mut self, printer: &Printer, report: &Report, json: bool) {
        self.total += 1;
        self.outcome = self.outcome.and(report.outcome);
        if report.outcome != Outcome::Ok {
            self.failed += 1;
        }
        if json {
            match serde_json::to_string(report) {
                Ok(line) => printer.out(&line),
                Err(e) => printer.err(&format!("facematch: {}: {e}", report.label)),
            }
            return;
        }
        if report.hash.is_some() {
            printer.out(&report.text());
        }
        if let Some(error) = &report.error {
            printer.err(&format!("facematch: {}: {error}", report.label));
        }
    }
}

/// Reads and uploads a file, or has the gateway fetch a URL.
async fn upload(gateway: &Gateway, index: usize, item: Item) -> Report {
    let report = Report::new(index, &item);
    let hash = match &item {
        Item::Unreadable { reason, .. } => return report.fail(reason.clone()),
        Item::Url(url) => retry(|| gateway.scan_url(url)).await,
        Item::File(path) => {
            let bytes = match tokio::fs::read(path).await {
                Ok(bytes) => bytes,
                Err(e) => return report.fail(format!("cannot read {}: {e}", path.display())),
            };
            let name = item.name();
            retry(|| gateway.scan_image(&name, bytes.clone())).await
        }
    };
    match hash {
        Ok(hash) => Report {
            hash: Some(hash),
            ..report
        },
        Err(e) => report.api_fail(&e),
    }
}

/// Follows an uploaded image to `done`/`failed` for at most `secs`.
async fn follow(gateway: &Gateway, mut report: Report, secs: u64) -> Report {
    let Some(hash) = report.hash.filter(|_| report.error.is_none()) else {
        return report;
    };
    let doc = match poll_final(gateway, hash, secs).await {
        Ok(doc) => doc,
        Err(e) => return report.api_fail(&e),
    };
    report.state = Some(doc.state.clone());
    report.faces = doc.face_count;
    match doc.state.as_str() {
        "done" => report,
        "failed" => {
            let why = doc.error.unwrap_or_else(|| "no reason given".into());
            report.fail(format!("processing failed: {why}"))
        }
        state => report.fail(format!("still {state} after waiting {secs} s")),
    }
}

/// Adds the matches of a `done` image.
async fn add_matches(gateway: &Gateway, mut report: Report) -> Report {
    let Some(hash) = report
        .hash
        .filter(|_| report.state.as_deref() == Some("done"))
    else {
        return report;
    };
    match gateway.matches(hash).await {
        Ok(names) => {
            report.matches = Some(names);
            report
        }
        Err(e) => report.api_fail(&e),
    }
}

/// Polls `GET /images/{hash}?wait=…` until the image is final or `secs` have passed.
async fn poll_final(gateway: &Gateway, hash: ImageHash, secs: u64) -> Result<ImageDoc, ApiError> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let left = deadline.saturating_duration_since(Instant::now()).as_secs();
        let doc = gateway.image(hash, left.min(POLL_SECS)).await?;
        if doc.is_final() || Instant::now() >= deadline {
            return Ok(doc);
        }
        if left == 0 {
            // Under a second left: the gateway cannot long-poll that; pace the last looks.
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Retries a call the gateway answered with 429 (busy) or 503 (dependency down), backing off.
async fn retry<F, Fut>(mut call: F) -> Result<ImageHash, ApiError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<ImageHash, ApiError>>,
{
    let mut delay = Duration::from_millis(500);
    for _ in 1..ATTEMPTS {
        match call().await {
            Err(ApiError::Refused {
                status: 429 | 503, ..
            }) => {
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            other => return other,
        }
    }
    call().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_lines() {
        let hash = ImageHash::of(b"x");
        let mut report = Report {
            hash: Some(hash),
            label: "dir/a.jpg".into(),
            ..Report::default()
        };
        assert_eq!(report.text(), format!("{hash}  dir/a.jpg"));
        report.state = Some("done".into());
        report.faces = Some(1);
        report.matches = Some(vec!["b.jpg".into(), "c.jpg".into()]);
        assert_eq!(
            report.text(),
            format!("{hash}  dir/a.jpg  done  1 face  matches: b.jpg, c.jpg")
        );
    }

    #[test]
    fn json_lines_carry_only_what_is_known() {
        let report = Report {
            name: "a.jpg".into(),
            label: "a.jpg".into(),
            ..Report::default()
        }
        .fail("nope".into());
        assert_eq!(
            serde_json::to_string(&report).expect("json"),
            r#"{"name":"a.jpg","error":"nope"}"#
        );
        assert_eq!(report.outcome, Outcome::SomeFailed);
    }
}
