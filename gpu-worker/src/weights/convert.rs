//! One-off conversion of face-api's TFJS weights (`<model>-weights_manifest.json` + `.bin`,
//! mostly uint8-quantised) to the `.safetensors` files the networks load.
//!
//! Tensors keep their TensorFlow shapes (HWIO filters, `[kh,kw,C,1]` depthwise filters), which
//! are the layouts the NHWC kernels use; names are the TF names with `/` replaced by `.`, i.e.
//! the `vb.pp()` paths. Dequantisation follows tfjs: `f32(q as f64 * scale + min)`.
//! The graph constants the SSD manifest also carries are dropped.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
};

use candle_core::{Device, Tensor};
use serde_json::Value;

use super::{DetectorManifest, Manifest, WeightsError, centerface, sha256_hex};

fn err(msg: impl Into<String>) -> WeightsError {
    WeightsError::Convert(msg.into())
}

/// Whether a TFJS tensor of `source` model is used by our networks.
pub fn is_used(source: &str, name: &str) -> bool {
    if source != "ssd_mobilenetv1_model" {
        return true;
    }
    let constant = name.starts_with("Preprocessor/")
        || name.starts_with("Postprocessor/")
        || name.starts_with("concat_")
        || name.contains("/stack")
        || name.contains("/strided_slice");
    !constant
}

/// Decodes one value range of the shard according to a TFJS weight entry.
fn decode_entry(
    entry: &Value,
    bytes: &[u8],
    off: &mut usize,
) -> Result<(String, Vec<usize>, Vec<f32>), WeightsError> {
    let name = entry["name"]
        .as_str()
        .ok_or_else(|| err("weight without a name"))?
        .to_owned();
    let shape: Vec<usize> = entry["shape"]
        .as_array()
        .ok_or_else(|| err(format!("{name}: no shape")))?
        .iter()
        .map(|v| {
            v.as_u64()
                .map(|d| d as usize)
                .ok_or_else(|| err(format!("{name}: bad shape")))
        })
        .collect::<Result<_, _>>()?;
    let n: usize = shape.iter().product();
    let dtype = entry["dtype"].as_str().unwrap_or("float32");
    let take = |off: &mut usize, len: usize| -> Result<&[u8], WeightsError> {
        let s = bytes
            .get(*off..*off + len)
            .ok_or_else(|| err(format!("{name}: shard too short")))?;
        *off += len;
        Ok(s)
    };
    let values: Vec<f32> = if let Some(q) = entry.get("quantization") {
        let scale = q["scale"]
            .as_f64()
            .ok_or_else(|| err(format!("{name}: no scale")))?;
        let min = q["min"]
            .as_f64()
            .ok_or_else(|| err(format!("{name}: no min")))?;
        let raw: Vec<f64> = match q["dtype"].as_str() {
            Some("uint8") => take(off, n)?.iter().map(|&b| f64::from(b)).collect(),
            Some("uint16") => take(off, 2 * n)?
                .chunks_exact(2)
                .map(|c| f64::from(u16::from_le_bytes([c[0], c[1]])))
                .collect(),
            other => return Err(err(format!("{name}: unsupported quantization {other:?}"))),
        };
        raw.iter()
            .map(|&q| {
                let v = q * scale + min;
                if dtype == "int32" {
                    v.round() as f32
                } else {
                    v as f32
                }
            })
            .collect()
    } else {
        let raw = take(off, 4 * n)?;
        match dtype {
            "float32" => raw
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            "int32" => raw
                .chunks_exact(4)
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32)
                .collect(),
            other => return Err(err(format!("{name}: unsupported dtype {other}"))),
        }
    };
    Ok((name, shape, values))
}

/// Reads and dequantises TFJS model `source` from `model_dir`, keeping the used tensors.
pub fn read_tfjs(model_dir: &Path, source: &str) -> Result<HashMap<String, Tensor>, WeightsError> {
    let manifest_path = model_dir.join(format!("{source}-weights_manifest.json"));
    let text = std::fs::read_to_string(&manifest_path)
        .map_err(|e| err(format!("{}: {e}", manifest_path.display())))?;
    let groups: Value = serde_json::from_str(&text)
        .map_err(|e| err(format!("{}: {e}", manifest_path.display())))?;
    let mut out = HashMap::new();
    for group in groups
        .as_array()
        .ok_or_else(|| err("manifest is not an array"))?
    {
        let mut bytes = Vec::new();
        for p in group["paths"]
            .as_array()
            .ok_or_else(|| err("group without paths"))?
        {
            let shard = model_dir.join(p.as_str().ok_or_else(|| err("bad shard path"))?);
            bytes.extend(
                std::fs::read(&shard).map_err(|e| err(format!("{}: {e}", shard.display())))?,
            );
        }
        let mut off = 0;
        for entry in group["weights"]
            .as_array()
            .ok_or_else(|| err("group without weights"))?
        {
            let (name, shape, values) = decode_entry(entry, &bytes, &mut off)?;
            if is_used(source, &name) {
                let t = Tensor::from_vec(values, shape.as_slice(), &Device::Cpu)
                    .map_err(|e| err(format!("{name}: {e}")))?;
                out.insert(name.replace('/', "."), t);
            }
        }
        if off != bytes.len() {
            return Err(err(format!(
                "{source}: manifest covers {off} of {} shard bytes",
                bytes.len()
            )));
        }
    }
    Ok(out)
}

/// Outcome for one converted file.
#[derive(Debug, Clone)]
pub struct Converted {
    pub path: PathBuf,
    pub sha256: String,
    /// False when the file was already present with the pinned hash.
    pub written: bool,
    /// Whether the hash equals the pinned one.
    pub matches_manifest: bool,
}

/// Converts every model of the manifest from `model_dir` (the package's `model/` folder) into
/// `out_dir`. A file already present with the pinned hash is left alone. The new file is
/// written beside the target and renamed into place.
pub fn convert_all(
    model_dir: &Path,
    out_dir: &Path,
    manifest: &Manifest,
) -> Result<Vec<Converted>, WeightsError> {
    std::fs::create_dir_all(out_dir).map_err(|e| err(format!("{}: {e}", out_dir.display())))?;
    let mut results = Vec::new();
    for f in &manifest.files {
        if let Some(done) = already_converted(out_dir, &f.file, &f.sha256) {
            results.push(done);
            continue;
        }
        let source = f.source.rsplit('/').next().unwrap_or(&f.source);
        let tensors = read_tfjs(model_dir, source)?;
        results.push(write(&tensors, out_dir, &f.file, &f.sha256)?);
    }
    Ok(results)
}

/// Converts the detector's ONNX file `onnx_path` (the member of the pinned archive, checked
/// against its sha256 first) into `out_dir`, unless it is already there with its pinned hash.
pub fn convert_detector(
    onnx_path: &Path,
    out_dir: &Path,
    manifest: &DetectorManifest,
) -> Result<Converted, WeightsError> {
    std::fs::create_dir_all(out_dir).map_err(|e| err(format!("{}: {e}", out_dir.display())))?;
    if let Some(done) = already_converted(out_dir, &manifest.file, &manifest.sha256) {
        return Ok(done);
    }
    let bytes =
        std::fs::read(onnx_path).map_err(|e| err(format!("{}: {e}", onnx_path.display())))?;
    let actual = sha256_hex(&bytes);
    if !actual.eq_ignore_ascii_case(&manifest.member_sha256) {
        return Err(err(format!(
            "{} has sha256 {actual}, expected {} ({} of {} {})",
            onnx_path.display(),
            manifest.member_sha256,
            manifest.member,
            manifest.package,
            manifest.version
        )));
    }
    let tensors = centerface::convert(&bytes)?;
    write(&tensors, out_dir, &manifest.file, &manifest.sha256)
}

/// `file` in `out_dir` when it is there with the pinned hash.
fn already_converted(out_dir: &Path, file: &str, sha256: &str) -> Option<Converted> {
    let path = out_dir.join(file);
    let sha = sha256_hex(&std::fs::read(&path).ok()?);
    sha.eq_ignore_ascii_case(sha256).then_some(Converted {
        path,
        sha256: sha,
        written: false,
        matches_manifest: true,
    })
}

/// Writes `tensors` beside `out_dir/file`, renames it into place and hashes what was written.
fn write(
    tensors: &HashMap<String, Tensor>,
    out_dir: &Path,
    file: &str,
    pinned: &str,
) -> Result<Converted, WeightsError> {
    let path = out_dir.join(file);
    let tmp = out_dir.join(format!(".{file}.tmp"));
    candle_core::safetensors::save(tensors, &tmp)
        .map_err(|e| err(format!("{}: {e}", tmp.display())))?;
    std::fs::rename(&tmp, &path).map_err(|e| err(format!("{}: {e}", path.display())))?;
    let bytes = std::fs::read(&path).map_err(|e| err(format!("{}: {e}", path.display())))?;
    let sha = sha256_hex(&bytes);
    let matches_manifest = sha.eq_ignore_ascii_case(pinned);
    Ok(Converted {
        path,
        sha256: sha,
        written: true,
        matches_manifest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dequantises_like_tfjs() {
        let entry = serde_json::json!({
            "name": "a/b", "shape": [2], "dtype": "float32",
            "quantization": {"dtype": "uint8", "scale": 0.5, "min": -1.0}
        });
        let mut off = 0;
        let (name, shape, v) = decode_entry(&entry, &[0, 4, 9], &mut off).expect("decode");
        assert_eq!(
            (name.as_str(), shape, v, off),
            ("a/b", vec![2], vec![-1.0, 1.0], 2)
        );
        let raw = serde_json::json!({"name": "c", "shape": [], "dtype": "float32"});
        let (_, _, v) = decode_entry(&raw, &1.5f32.to_le_bytes(), &mut 0).expect("raw");
        assert_eq!(v, vec![1.5]);
        assert!(
            decode_entry(&raw, &[0, 0], &mut 0).is_err(),
            "short shard is an error"
        );
    }

    #[test]
    fn drops_ssd_graph_constants() {
        assert!(!is_used("ssd_mobilenetv1_model", "Preprocessor/mul/x"));
        assert!(!is_used(
            "ssd_mobilenetv1_model",
            "Prediction/BoxPredictor_0/stack_1/2"
        ));
        assert!(!is_used("ssd_mobilenetv1_model", "concat_1/axis"));
        assert!(is_used("ssd_mobilenetv1_model", "Output/extra_dim"));
        assert!(is_used(
            "ssd_mobilenetv1_model",
            "Prediction/BoxPredictor_0/ClassPredictor/weights"
        ));
    }
}
