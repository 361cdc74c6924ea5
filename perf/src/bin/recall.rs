//! Detection recall on tight face crops and thumbnails, and false faces on photos without
//! faces (issue: "find every face a user would see").
//!
//! Crops: every face the pipeline finds in the six demo images (or in the photos of
//! `--photos DIR`, e.g. the held-out set of `perf/recall/make-held-out.sh`), cut as a square around its
//! box enlarged ×1.0, ×1.2 and ×1.6 (clipped to the photo), resized so the longer side is
//! 112, 150 and 250 px, in colour and in grey, each saved as a JPEG (quality 90) and decoded
//! again as the worker would. A crop counts as found when the pipeline finds a face in it, and
//! as matched when one of those faces is within 0.6 of its source face.
//! No-face images: every file in `--no-face DIR` (see `perf/recall/make-no-face.py`).
//!
//! `cargo run --release -p facematch-perf --bin recall -- --no-face /tmp/no-face`
//! (`--first-pass-only` measures face-api's single pass for comparison, `--no-frame-check`
//! the second pass without the frame check).

use std::{collections::BTreeMap, path::PathBuf, time::Instant};

use anyhow::Context;
use candle_core::Device;
use clap::Parser;
use gpu_worker::{
    Alignment, FacePipeline, PipelineOptions, decode_image,
    pipeline::{
        CenterFaceOptions, Detector, DetectorKind, FrameCheck, SecondPass, SsdOptions,
        centerface::BoxMap,
    },
};
use image::{DynamicImage, RgbImage, codecs::jpeg::JpegEncoder, imageops::FilterType};

#[derive(Debug, Parser)]
struct Args {
    /// Folder of images without faces.
    #[arg(long)]
    no_face: Option<PathBuf>,
    /// Folder of photos to cut the crops from [default: the six demo images].
    #[arg(long)]
    photos: Option<PathBuf>,
    #[arg(long, default_value = "model-weights")]
    weights_dir: PathBuf,
    /// Descriptor crop.
    #[arg(long, default_value = "dlib")]
    align: Alignment,
    /// Face detector: `centerface` (the worker's default) or `ssd` (face-api's, with the
    /// heuristics the flags below switch off).
    #[arg(long, default_value = "centerface")]
    detector: DetectorKind,
    /// SSD: only face-api's single detection pass (no second pass on a padded copy).
    #[arg(long)]
    first_pass_only: bool,
    /// SSD: score a face must exceed in the second pass [default: the pipeline's].
    #[arg(long)]
    second_pass_min_confidence: Option<f32>,
    /// SSD: without the frame check (centred squares verified by landmark stability).
    #[arg(long)]
    no_frame_check: bool,
    /// SSD: largest landmark drift the frame check accepts [default: the pipeline's].
    #[arg(long)]
    max_drift: Option<f64>,
    /// SSD: keep every detection, plausible landmarks or not.
    #[arg(long)]
    no_face_check: bool,
    /// CenterFace: longest side an image is shrunk to [default: the detector's].
    #[arg(long)]
    max_side: Option<u32>,
    /// Images per pipeline call.
    #[arg(long, default_value_t = 4)]
    batch: usize,
    /// Also write every crop to this folder (JPEG), to look at or to feed other tools.
    #[arg(long)]
    save_crops: Option<PathBuf>,
    /// CenterFace: give the landmark net its boxes mapped to the SSD's (`BoxMap::SSD`), not
    /// CenterFace's own (the default).
    #[arg(long)]
    ssd_boxes: bool,
    /// Mirrored descriptors (each the mean of the chip's and its mirror image's).
    #[arg(long)]
    mirror: bool,
}

const FRAMINGS: [f64; 3] = [1.0, 1.2, 1.6];
const SIZES: [u32; 3] = [112, 150, 250];
const THRESHOLD: f32 = 0.6;

struct Crop {
    /// `s{photo}f{face}`: which photo and which of its faces.
    source_name: String,
    framing: f64,
    size: u32,
    grey: bool,
    source: [f32; 128],
    image: RgbImage,
}

impl Crop {
    /// `s1f0_x1.2_150_grey`: the source face, framing, size and colour.
    fn name(&self) -> String {
        let colour = if self.grey { "grey" } else { "colour" };
        format!(
            "{}_x{:.1}_{}_{colour}",
            self.source_name, self.framing, self.size
        )
    }
}

/// Encodes as a quality-90 JPEG and decodes with the worker's decoder.
fn through_jpeg(img: &RgbImage) -> anyhow::Result<RgbImage> {
    let mut bytes = Vec::new();
    JpegEncoder::new_with_quality(&mut bytes, 90).encode_image(img)?;
    Ok(decode_image(&bytes)?)
}

fn crops_of(
    source_name: &str,
    photo: &RgbImage,
    bbox: [f32; 4],
    source: [f32; 128],
) -> anyhow::Result<Vec<Crop>> {
    let mut out = Vec::new();
    let (cx, cy) = (bbox[0] + bbox[2] / 2.0, bbox[1] + bbox[3] / 2.0);
    for framing in FRAMINGS {
        let side = f64::from(bbox[2].max(bbox[3])) * framing;
        let x0 = (f64::from(cx) - side / 2.0).max(0.0).round() as u32;
        let y0 = (f64::from(cy) - side / 2.0).max(0.0).round() as u32;
        let x1 = ((f64::from(cx) + side / 2.0).round() as u32).min(photo.width());
        let y1 = ((f64::from(cy) + side / 2.0).round() as u32).min(photo.height());
        let cut = image::imageops::crop_imm(photo, x0, y0, x1 - x0, y1 - y0).to_image();
        for size in SIZES {
            let scale = f64::from(size) / f64::from(cut.width().max(cut.height()));
            let (w, h) = (
                (f64::from(cut.width()) * scale).round().max(1.0) as u32,
                (f64::from(cut.height()) * scale).round().max(1.0) as u32,
            );
            let colour = image::imageops::resize(&cut, w, h, FilterType::CatmullRom);
            let grey = DynamicImage::ImageLuma8(DynamicImage::ImageRgb8(colour.clone()).to_luma8())
                .to_rgb8();
            for (is_grey, img) in [(false, colour), (true, grey)] {
                out.push(Crop {
                    source_name: source_name.to_owned(),
                    framing,
                    size,
                    grey: is_grey,
                    source,
                    image: through_jpeg(&img)?,
                });
            }
        }
    }
    Ok(out)
}

/// The files of `dir`, sorted by name.
fn files_in(dir: &std::path::Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| dir.display().to_string())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

fn distance(a: &[f32; 128], b: &[f32; 128]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).powi(2))
        .sum::<f32>()
        .sqrt()
}

/// Descriptor distances of crop/source pairs: the same face, and other faces of its photo.
#[derive(Default)]
struct Pairs {
    genuine: Vec<f32>,
    impostor: Vec<f32>,
}

impl Pairs {
    fn print(&self) {
        let stats = |v: &[f32]| {
            let n = v.len().max(1) as f64;
            let mean = v.iter().map(|&d| f64::from(d)).sum::<f64>() / n;
            let var = v
                .iter()
                .map(|&d| (f64::from(d) - mean).powi(2))
                .sum::<f64>()
                / n;
            let within = v.iter().filter(|&&d| d <= THRESHOLD).count();
            (mean, var, within)
        };
        let (gm, gv, g_in) = stats(&self.genuine);
        let (im, iv, i_in) = stats(&self.impostor);
        let lowest_impostor = self.impostor.iter().copied().fold(f32::INFINITY, f32::min);
        println!(
            "\npairs: genuine {} (mean {gm:.3}, {g_in} within {THRESHOLD}), impostor {} (mean \
             {im:.3}, lowest {lowest_impostor:.3}, {i_in} within {THRESHOLD}); d' {:.2}",
            self.genuine.len(),
            self.impostor.len(),
            (im - gm) / ((gv + iv) / 2.0).sqrt()
        );
    }
}

#[derive(Default)]
struct Tally {
    crops: usize,
    found: usize,
    one_face: usize,
    matched: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let detector = match args.detector {
        DetectorKind::CenterFace => {
            let d = CenterFaceOptions::default();
            Detector::CenterFace(CenterFaceOptions {
                max_side: args.max_side.unwrap_or(d.max_side),
                landmark_box: if args.ssd_boxes {
                    BoxMap::SSD
                } else {
                    d.landmark_box
                },
                ..d
            })
        }
        DetectorKind::Ssd => {
            let d = SsdOptions::default();
            Detector::Ssd(SsdOptions {
                second_pass: d
                    .second_pass
                    .filter(|_| !args.first_pass_only)
                    .map(|p| SecondPass {
                        min_confidence: args.second_pass_min_confidence.unwrap_or(p.min_confidence),
                        ..p
                    }),
                frame_check: d
                    .frame_check
                    .filter(|_| !args.no_frame_check && !args.first_pass_only)
                    .map(|f| FrameCheck {
                        max_drift: args.max_drift.unwrap_or(f.max_drift),
                        ..f
                    }),
                face_check: d.face_check.filter(|_| !args.no_face_check),
                ..d
            })
        }
    };
    let options = PipelineOptions {
        detector,
        align: args.align,
        mirror: args.mirror,
        ..PipelineOptions::default()
    };
    let pipeline = FacePipeline::load(&args.weights_dir, &Device::Cpu, options)
        .context("loading the weights (run scripts/fetch-weights.sh first)")?;

    let photos: Vec<PathBuf> = match &args.photos {
        Some(dir) => files_in(dir)?,
        None => (1..=6)
            .map(|i| args.weights_dir.join(format!("demo/sample{i}.jpg")))
            .collect(),
    };
    let mut crops = Vec::new();
    for (i, path) in photos.iter().enumerate() {
        let photo =
            decode_image(&std::fs::read(path).with_context(|| path.display().to_string())?)?;
        let faces = pipeline.run(std::slice::from_ref(&photo))?.remove(0);
        println!("{}: {} faces", path.display(), faces.len());
        for (k, face) in faces.into_iter().enumerate() {
            let name = format!("s{}f{k}", i + 1);
            crops.extend(crops_of(&name, &photo, face.bbox, face.descriptor)?);
        }
    }

    if let Some(dir) = &args.save_crops {
        std::fs::create_dir_all(dir)?;
        for c in &crops {
            c.image.save(dir.join(format!("{}.jpg", c.name())))?;
        }
    }

    // Every source face by name, for the impostor pairs: a crop against the other faces of
    // its photo (faces of one photo are different people; two photos may share a person).
    let sources: BTreeMap<String, [f32; 128]> = crops
        .iter()
        .map(|c| (c.source_name.clone(), c.source))
        .collect();
    let mut pairs = Pairs::default();
    let mut tallies: BTreeMap<(u32, u32, bool), Tally> = BTreeMap::new();
    let mut misses = Vec::new();
    let mut unmatched = Vec::new();
    let started = Instant::now();
    for chunk in crops.chunks(args.batch.max(1)) {
        let images: Vec<RgbImage> = chunk.iter().map(|c| c.image.clone()).collect();
        for (crop, faces) in chunk.iter().zip(pipeline.run(&images)?) {
            let t = tallies
                .entry(((crop.framing * 10.0) as u32, crop.size, crop.grey))
                .or_default();
            t.crops += 1;
            if faces.is_empty() {
                misses.push(crop.name());
            }
            t.found += usize::from(!faces.is_empty());
            t.one_face += usize::from(faces.len() == 1);
            t.matched += usize::from(
                faces
                    .iter()
                    .any(|f| distance(&f.descriptor, &crop.source) <= THRESHOLD),
            );
            let closest = |to: &[f32; 128]| {
                faces
                    .iter()
                    .map(|f| distance(&f.descriptor, to))
                    .fold(f32::INFINITY, f32::min)
            };
            if !faces.is_empty() {
                if closest(&crop.source) > THRESHOLD {
                    unmatched.push(format!("{} ({:.3})", crop.name(), closest(&crop.source)));
                }
                pairs.genuine.push(closest(&crop.source));
                let photo = crop.source_name.split('f').next().unwrap_or_default();
                for (name, other) in &sources {
                    if *name != crop.source_name && name.split('f').next() == Some(photo) {
                        pairs.impostor.push(closest(other));
                    }
                }
            }
        }
    }
    let per_crop = started.elapsed().as_secs_f64() * 1000.0 / crops.len().max(1) as f64;

    println!(
        "| framing | size | colour | crops | face found | exactly one | matches source at 0.6 |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut total = Tally::default();
    for ((framing, size, grey), t) in &tallies {
        println!(
            "| ×{:.1} | {size} px | {} | {} | {} ({:.1} %) | {} | {} ({:.1} %) |",
            f64::from(*framing) / 10.0,
            if *grey { "grey" } else { "colour" },
            t.crops,
            t.found,
            100.0 * t.found as f64 / t.crops as f64,
            t.one_face,
            t.matched,
            100.0 * t.matched as f64 / t.crops as f64,
        );
        total.crops += t.crops;
        total.found += t.found;
        total.one_face += t.one_face;
        total.matched += t.matched;
    }
    println!(
        "| **all** | | | {} | {} ({:.2} %) | {} | {} ({:.2} %) |",
        total.crops,
        total.found,
        100.0 * total.found as f64 / total.crops.max(1) as f64,
        total.one_face,
        total.matched,
        100.0 * total.matched as f64 / total.crops.max(1) as f64,
    );
    println!("\nmissed crops: {}", misses.join(" "));
    println!("found, not matched: {}", unmatched.join(" "));
    pairs.print();
    println!(
        "\npipeline time per crop (batch {}): {per_crop:.1} ms",
        args.batch
    );

    if let Some(dir) = &args.no_face {
        let files = files_in(dir)?;
        let mut false_faces = 0;
        println!("\n| no-face image | size | faces found (scores) |\n|---|---|---|");
        for path in &files {
            let img =
                decode_image(&std::fs::read(path)?).with_context(|| path.display().to_string())?;
            let faces = pipeline.run(std::slice::from_ref(&img))?.remove(0);
            false_faces += faces.len();
            let scores: Vec<String> = faces.iter().map(|f| format!("{:.2}", f.score)).collect();
            println!(
                "| {} | {}×{} | {} {} |",
                path.file_name()
                    .map(|n| n.to_string_lossy())
                    .unwrap_or_default(),
                img.width(),
                img.height(),
                faces.len(),
                if scores.is_empty() {
                    String::new()
                } else {
                    format!("({})", scores.join(", "))
                },
            );
        }
        println!(
            "\nfalse faces on {} no-face images: {false_faces}",
            files.len()
        );
    }
    Ok(())
}
