//! Reading the golden files (JSON fields, number arrays, base64 f32s) and the distances the
//! checks measure.

use std::path::Path;

use anyhow::Context;
use serde_json::Value;

/// A JSON file.
pub fn read_json(path: &Path) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
    serde_json::from_str(&text).with_context(|| path.display().to_string())
}

pub(super) fn field<'a>(v: &'a Value, keys: &[&str]) -> anyhow::Result<&'a Value> {
    keys.iter()
        .try_fold(v, |v, k| v.get(k))
        .with_context(|| format!("golden field {}", keys.join(".")))
}

pub(super) fn f32s(v: &Value) -> anyhow::Result<Vec<f32>> {
    v.as_array()
        .context("golden array")?
        .iter()
        .map(|x| x.as_f64().map(|x| x as f32).context("golden number"))
        .collect()
}

/// Standard base64 of little-endian f32s (the golden files' raw arrays).
pub(super) fn b64_f32(s: &str) -> anyhow::Result<Vec<f32>> {
    let val = |c: u8| -> anyhow::Result<u32> {
        Ok(match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => anyhow::bail!("bad base64 byte {c}"),
        })
    };
    let clean: Vec<u8> = s
        .bytes()
        .filter(|&c| c != b'=' && !c.is_ascii_whitespace())
        .collect();
    let mut bytes = Vec::with_capacity(clean.len() * 3 / 4);
    for chunk in clean.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= val(c)? << (18 - 6 * i);
        }
        let n = chunk.len() * 6 / 8;
        bytes.extend(&acc.to_be_bytes()[1..1 + n]);
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

pub(super) fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return f32::INFINITY;
    }
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

pub(super) fn l2(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return f32::INFINITY;
    }
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f32>()
        .sqrt()
}
