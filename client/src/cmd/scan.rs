//! `facematch scan PATH|URL...`: uploads files (folders walked for images) and URLs with
//! bounded concurrency, prints one line per item as it finishes (`HASH  NAME`, or JSON), and
//! with `--wait` follows each image to `done`/`failed` and adds its faces and matches.
//!
//! Items are independent: a missing file or a refused upload is reported and counted (exit 1)
//! while the others go on. Only an unreachable gateway ends the run with exit 2.

use std::{ffi::OsString, time::Duration};

use anyhow::Context;
use clap::Args;
use facematch_core::ImageHash;
use futures_util::{StreamExt, stream};
use serde::Serialize;
use tokio::time::Instant;

use crate::{
    exit::Outcome,
    http::{ApiError, Gateway, ImageDoc},
    inputs::{self, Item},
    output::Printer,
};

/// Longest long-poll asked of the gateway in one request (it caps `wait` at 60 s).
const POLL_SECS: u64 = 60;
/// Tries of one upload answered 429 (busy) or 503 (broker/Redis down).
const ATTEMPTS: u32 = 5;

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

    /// Follow each image until it is done or failed, for at most SECONDS in all (default
    /// 300), and print its state, face count and matches.
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
    label: String,
    #[serde(skip)]
    outcome: Outcome,
}

impl Report {
    fn new(item: &Item) -> Self {
        Self {
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
pub async fn run(gateway: &str, args: ScanArgs) -> anyhow::Result<Outcome> {
    let gateway = Gateway::new(gateway)?;
    let items = inputs::expand(&args.inputs);
    if items.is_empty() {
        eprintln!("facematch: no images found (folders are searched for image extensions)");
        return Ok(Outcome::Ok);
    }
    gateway
        .ping()
        .await
        .context("the gateway does not answer")?;

    let printer = Printer::new(items.len() as u64, args.json);
    let wait = args.wait;
    let gw = &gateway;
    let mut reports = stream::iter(items)
        .map(|item| async move { scan_one(gw, item, wait).await })
        .buffer_unordered(usize::from(args.concurrency));
    let (mut outcome, mut failed, mut total) = (Outcome::Ok, 0usize, 0usize);
    while let Some(report) = reports.next().await {
        total += 1;
        outcome = outcome.and(report.outcome);
        if report.outcome != Outcome::Ok {
            failed += 1;
        }
        print(&printer, &report, args.json);
        printer.tick();
    }
    printer.finish();
    if failed > 0 && !args.json {
        eprintln!("facematch: {failed} of {total} items failed");
    }
    Ok(outcome)
}

fn print(printer: &Printer, report: &Report, json: bool) {
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

async fn scan_one(gateway: &Gateway, item: Item, wait: Option<u64>) -> Report {
    let report = Report::new(&item);
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
    let mut report = match hash {
        Ok(hash) => Report {
            hash: Some(hash),
            ..report
        },
        Err(e) => return report.api_fail(&e),
    };
    let (Some(secs), Some(hash)) = (wait, report.hash) else {
        return report;
    };
    match follow(gateway, hash, secs).await {
        Ok(doc) => {
            report.state = Some(doc.state.clone());
            report.faces = doc.face_count;
            match doc.state.as_str() {
                "done" => match gateway.matches(hash).await {
                    Ok(names) => report.matches = Some(names),
                    Err(e) => return report.api_fail(&e),
                },
                "failed" => {
                    let why = doc.error.unwrap_or_else(|| "no reason given".into());
                    return report.fail(format!("processing failed: {why}"));
                }
                state => {
                    return report.fail(format!("still {state} after waiting {secs} s"));
                }
            }
            report
        }
        Err(e) => report.api_fail(&e),
    }
}

/// Polls `GET /images/{hash}?wait=…` until the image is final or `secs` have passed.
async fn follow(gateway: &Gateway, hash: ImageHash, secs: u64) -> Result<ImageDoc, ApiError> {
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
