//! The worker's compute inside one process, without broker or store: the demo images' JPEG bytes
//! decoded in parallel (as the worker's decode stage does) while the previous batch runs through
//! the pipeline on the chosen device (as its capacity-1 engine channel lets it), at one batch
//! size. What it leaves out of the worker: AMQP delivery and ack, the Redis writes and the index
//! search.

use std::{
    path::PathBuf,
    sync::mpsc,
    time::{Duration, Instant},
};

use anyhow::Context;
use gpu_worker::{
    Alignment, FacePipeline, PipelineOptions, StageTimings, decode_image,
    pipeline::{CenterFaceOptions, Detector, DetectorKind, SsdOptions},
    select_device,
};
use rayon::prelude::*;

use crate::{peak_rss_bytes, unique_jpeg};

#[derive(Debug, Clone, clap::Args)]
pub struct PipelineBenchArgs {
    /// Batch sizes to measure, one after the other in this process.
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 8, 32, 64])]
    pub batches: Vec<usize>,
    /// Jobs per measurement (the six demo images in turn, each made unique).
    #[arg(long, default_value_t = 384)]
    pub images: usize,
    #[arg(long, default_value = "model-weights")]
    pub weights_dir: PathBuf,
    /// `cpu` or `cuda[:N]`.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Descriptor crop, as the worker's `--align`.
    #[arg(long, default_value = "dlib")]
    pub align: Alignment,
    /// Print the table's rows only, no header.
    #[arg(long)]
    pub no_header: bool,
    /// Face detector, as the worker's `--detector`: `centerface` or `ssd`.
    #[arg(long, default_value = "centerface")]
    pub detector: DetectorKind,
    /// CenterFace: longest side of the coarse pass [default: the detector's].
    #[arg(long)]
    pub centerface_max_side: Option<u32>,
}

/// One batch size's figures.
#[derive(Debug, Clone)]
pub struct Measured {
    pub batch: usize,
    pub images: usize,
    pub seconds: f64,
    /// Wall time the decode thread spent decoding (overlaps inference).
    pub decode: Duration,
    pub stages: StageTimings,
    /// Faces found in all images.
    pub faces: usize,
}

impl Measured {
    pub fn row(&self) -> String {
        let ms = |d: Duration| d.as_secs_f64() * 1e3 / self.images as f64;
        format!(
            "| {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {} |",
            self.batch,
            self.images,
            self.images as f64 / self.seconds,
            ms(self.decode),
            ms(self.stages.detect),
            ms(self.stages.landmarks),
            ms(self.stages.align),
            ms(self.stages.describe),
            self.faces,
            peak_rss_bytes().unwrap_or(0) >> 20,
        )
    }
}

pub const HEADER: &str = "| max batch | images | images/s | decode ms/img | detect ms/img | \
    landmarks ms/img | align ms/img | describe ms/img | faces | peak RSS MiB |\n\
    | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |";

/// Runs every batch size of `args` and prints a row for each.
pub fn run(args: &PipelineBenchArgs) -> anyhow::Result<Vec<Measured>> {
    let device = select_device(&args.device)?;
    let options = PipelineOptions {
        align: args.align,
        detector: match args.detector {
            DetectorKind::CenterFace => {
                let d = CenterFaceOptions::default();
                Detector::CenterFace(CenterFaceOptions {
                    max_side: args.centerface_max_side.unwrap_or(d.max_side),
                    ..d
                })
            }
            // As the worker ran it before CenterFace.
            DetectorKind::Ssd => Detector::Ssd(SsdOptions::default()),
        },
        ..PipelineOptions::default()
    };
    let pipeline = FacePipeline::load(&args.weights_dir, &device, options)
        .with_context(|| format!("models in {}", args.weights_dir.display()))?;
    let demos = crate::demo_jpegs(&args.weights_dir)?;
    let jobs: Vec<Vec<u8>> = (0..args.images)
        .map(|n| unique_jpeg(&demos[n % demos.len()], n))
        .collect();
    if !args.no_header {
        println!("{HEADER}");
    }
    let mut all = Vec::new();
    for &batch in &args.batches {
        let batch = batch.max(1);
        // Warm-up at this batch size: kernels loaded and buffers sized before the clock starts.
        measure(&pipeline, &jobs[..batch.min(jobs.len())], batch)?;
        let m = measure(&pipeline, &jobs, batch)?;
        println!("{}", m.row());
        all.push(m);
    }
    Ok(all)
}

/// Decodes batch k+1 on another thread while batch k is inferred.
fn measure(pipeline: &FacePipeline, jobs: &[Vec<u8>], batch: usize) -> anyhow::Result<Measured> {
    type Decoded = anyhow::Result<(Vec<image::RgbImage>, Duration)>;
    let (tx, rx) = mpsc::sync_channel::<Decoded>(1);
    let started = Instant::now();
    let mut out = Measured {
        batch,
        images: jobs.len(),
        seconds: 0.0,
        decode: Duration::ZERO,
        stages: StageTimings::default(),
        faces: 0,
    };
    std::thread::scope(|s| -> anyhow::Result<()> {
        s.spawn(move || {
            for chunk in jobs.chunks(batch) {
                let t = Instant::now();
                let images = chunk
                    .par_iter()
                    .map(|bytes| decode_image(bytes))
                    .collect::<Result<Vec<_>, _>>()
                    .map(|images| (images, t.elapsed()))
                    .map_err(anyhow::Error::from);
                if tx.send(images).is_err() {
                    break; // the engine side failed
                }
            }
        });
        for decoded in rx {
            let (images, decode) = decoded?;
            let (faces, stages) = pipeline.run_timed(&images)?;
            out.decode += decode;
            out.stages += stages;
            out.faces += faces.iter().map(Vec::len).sum::<usize>();
        }
        Ok(())
    })?;
    out.seconds = started.elapsed().as_secs_f64();
    Ok(out)
}
