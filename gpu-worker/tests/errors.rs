//! Bad weights and bad images give clear errors, never a panic or an out-of-memory.

use candle_core::Device;
use facematch_testkit::paths::{demo_path, weights_dir};
use gpu_worker::{
    DecodeError, FacePipeline, ModelError, PipelineOptions, decode_image,
    weights::{self, CENTERFACE_FILE, Manifest, WeightsError},
};

fn temp_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("facematch-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

#[test]
fn missing_weights_name_the_fetch_script() {
    let dir = temp_dir("missing");
    let e =
        FacePipeline::load(&dir, &Device::Cpu, PipelineOptions::default()).expect_err("missing");
    let msg = e.to_string();
    assert!(
        matches!(e, ModelError::Weights(WeightsError::Missing { .. })),
        "{msg}"
    );
    assert!(msg.contains("scripts/fetch-weights.sh"), "{msg}");
}

#[test]
fn corrupt_weight_file_is_refused() {
    // The default detector's file.
    let src = weights_dir().join(CENTERFACE_FILE);
    let bytes = std::fs::read(&src)
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/fetch-weights.sh)", src.display()));
    let dir = temp_dir("corrupt");
    for f in &Manifest::pinned().expect("manifest").files {
        std::fs::copy(weights_dir().join(&f.file), dir.join(&f.file)).expect("copy");
    }
    // Truncated file: the hash check catches it before parsing.
    std::fs::write(dir.join(CENTERFACE_FILE), &bytes[..bytes.len() / 3]).expect("write");
    let e =
        FacePipeline::load(&dir, &Device::Cpu, PipelineOptions::default()).expect_err("corrupt");
    let msg = e.to_string();
    assert!(
        matches!(e, ModelError::Weights(WeightsError::HashMismatch { .. })),
        "{msg}"
    );
    assert!(
        msg.contains("scripts/fetch-weights.sh") && msg.contains(CENTERFACE_FILE),
        "{msg}"
    );
    // A garbage file whose hash is (wrongly) trusted still fails cleanly at parse time.
    let garbage = dir.join("garbage.safetensors");
    std::fs::write(&garbage, b"\xff\xff\xff\xff\xff\xff\xff\x7fnot safetensors").expect("write");
    let sha = weights::sha256_hex(&std::fs::read(&garbage).expect("read"));
    let Err(e) = weights::load_verified(&garbage, &sha, &Device::Cpu) else {
        panic!("garbage accepted")
    };
    assert!(matches!(e, WeightsError::Format { .. }), "{e}");
}

#[test]
fn wrong_sha256_is_refused() {
    let path = weights_dir().join(CENTERFACE_FILE);
    let Err(e) = weights::load_verified(&path, &"0".repeat(64), &Device::Cpu) else {
        panic!("wrong hash accepted")
    };
    assert!(matches!(e, WeightsError::HashMismatch { .. }), "{e}");
    assert!(e.to_string().contains("expected 0000"), "{e}");
}

#[test]
fn bad_images_are_clear_errors() {
    let jpeg = std::fs::read(demo_path(1)).expect("demo image");
    let Err(e) = decode_image(&jpeg[..jpeg.len() / 2]) else {
        panic!("truncated jpeg accepted")
    };
    assert!(matches!(e, DecodeError::Corrupt(_)), "truncated: {e}");
    assert!(matches!(decode_image(&[]), Err(DecodeError::Empty)));
    let Err(e) = decode_image(b"%PDF-1.4 definitely not an image") else {
        panic!("non-image accepted")
    };
    assert!(matches!(e, DecodeError::UnknownFormat), "{e}");
    // 100000×100000 PNG header: refused from the header, nothing allocated.
    let mut png = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13];
    png.extend(b"IHDR");
    png.extend(100_000u32.to_be_bytes());
    png.extend(100_000u32.to_be_bytes());
    png.extend([8, 2, 0, 0, 0, 0, 0, 0, 0]);
    let Err(e) = decode_image(&png) else {
        panic!("huge png accepted")
    };
    assert!(
        matches!(e, DecodeError::TooLarge(_) | DecodeError::Corrupt(_)),
        "{e}"
    );
    println!("huge png: {e}");
}
