//! Hostile images through the worker binary, each failing alone with a clear reason while the
//! worker's memory stays where a small photo put it: a progressive JPEG cut between its scans
//! and one cut inside a scan (each with an end-of-image marker appended, so a lenient decoder
//! would paint the rest grey and the job would end `done`), and a 90 KB GIF whose 10×10 screen
//! holds an 11000×11000 frame (121 Mpx: 363 MB as RGB, 484 MB as the RGBA a GIF decoder
//! fills), which the gateway refuses from its frames (415) and the worker refuses before
//! decoding when the job reaches it anyway.

use std::{path::Path, time::Duration};

use facematch_testkit::{System, images::gif_solid_frame, process::peak_rss_bytes, within};
use image::ImageFormat;

const WAIT: Duration = Duration::from_secs(240);
/// The worker's documented bound (README, "Memory"), as in `memory.rs`.
const RSS_BOUND: u64 = 768 << 20;
/// How much the hostile jobs may raise the worker's peak RSS: a fraction of the frame's 363 MB.
const GROWTH_BOUND: u64 = 64 << 20;

/// A progressive JPEG written by libjpeg-turbo (10 scans; see `tests/data/README.md`).
const PROGRESSIVE: &[u8] = include_bytes!("data/progressive.jpg");

/// Where each start-of-scan marker of `jpeg` is (found by walking the segments).
fn scan_starts(jpeg: &[u8]) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut i = 2;
    while i + 4 <= jpeg.len() && jpeg[i + 1] != 0xD9 {
        let len = usize::from(jpeg[i + 2]) << 8 | usize::from(jpeg[i + 3]);
        if jpeg[i + 1] == 0xDA {
            starts.push(i);
            i += 2 + len;
            while jpeg[i] != 0xFF || matches!(jpeg[i + 1], 0x00 | 0xD0..=0xD7) {
                i += 1; // entropy-coded data
            }
        } else {
            i += 2 + len;
        }
    }
    starts
}

/// `jpeg[..cut]` with an end-of-image marker appended.
fn cut_with_eoi(jpeg: &[u8], cut: usize) -> Vec<u8> {
    [&jpeg[..cut], &[0xFF, 0xD9][..]].concat()
}

#[test]
fn the_gif_builder_writes_frames_decoders_read() {
    // One LZW table cycle holds 8.4 Mpx: 3000×3000 crosses a clear code.
    for side in [300, 3000] {
        let gif = gif_solid_frame((side, side), (side, side));
        let img = image::load_from_memory_with_format(&gif, ImageFormat::Gif)
            .expect("decodes")
            .to_rgb8();
        assert_eq!(img.dimensions(), (u32::from(side), u32::from(side)));
        assert!(img.pixels().all(|p| p.0 == [200, 30, 30]), "{side}");
    }
    let bomb = gif_solid_frame((10, 10), (11_000, 11_000));
    assert!(bomb.len() < 100_000, "{} bytes", bomb.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_images_fail_alone_without_raising_the_workers_memory() {
    within(async {
        let sys = System::new("hostile").await;
        let bomb = gif_solid_frame((10, 10), (11_000, 11_000));
        let (status, body) = sys.upload("frame.gif", bomb.clone()).await;
        assert_eq!(status, 415, "the gateway reads the frame: {body}");
        assert!(body.to_string().contains("11000"), "{body}");

        // A whole progressive JPEG first: the worker loads its models and runs them once, and
        // its peak RSS then is the baseline.
        let whole = sys.publish_raw("whole.jpg", PROGRESSIVE).await;
        let mut worker = sys.spawn_worker(Path::new(env!("CARGO_BIN_EXE_gpu-worker")), 4, &[]);
        let status = sys.wait_final(whole, WAIT).await;
        assert_eq!(status["state"], "done", "{status}");
        assert_eq!(
            (status["width"].as_u64(), status["height"].as_u64()),
            (Some(227), Some(151))
        );
        let baseline = peak_rss_bytes(worker.0.id());

        let starts = scan_starts(PROGRESSIVE);
        assert_eq!(starts.len(), 10, "libjpeg's ten scans");
        let between = cut_with_eoi(PROGRESSIVE, starts[1]);
        let inside = cut_with_eoi(PROGRESSIVE, (starts[8] + starts[9]) / 2);
        let jobs = [
            ("between.jpg", between, "truncated JPEG"),
            ("inside.jpg", inside, "truncated JPEG"),
            ("frame.gif", bomb, "11000x11000 frame"),
        ];
        let mut hashes = Vec::new();
        for (name, bytes, _) in &jobs {
            hashes.push(sys.publish_raw(name, bytes).await);
        }
        for ((name, _, reason), hash) in jobs.iter().zip(hashes) {
            let status = sys.wait_final(hash, WAIT).await;
            assert_eq!(status["state"], "failed", "{name}: {status}");
            let error = status["error"].as_str().unwrap_or_default();
            assert!(error.contains(reason), "{name}: {status}");
            eprintln!("{name}: {error}");
        }

        let peak = peak_rss_bytes(worker.0.id());
        eprintln!(
            "worker peak RSS: {} MiB after the whole JPEG, {} MiB after the hostile ones",
            baseline >> 20,
            peak >> 20
        );
        assert!(peak < RSS_BOUND, "peak RSS {} MiB", peak >> 20);
        assert!(
            peak - baseline < GROWTH_BOUND,
            "the hostile jobs raised the peak RSS by {} MiB",
            (peak - baseline) >> 20
        );
        let _ = worker.0.kill();
        sys.cleanup().await;
    })
    .await;
}
