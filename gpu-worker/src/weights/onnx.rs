//! A reader for the part of an ONNX model file the weight conversion needs: the graph's nodes
//! in order (operator, inputs, integer attributes) and its float initializers.
//!
//! An ONNX file is a protobuf `ModelProto`; this walks the protobuf wire format directly
//! (varints and length-delimited fields) instead of pulling in a protobuf code generator for
//! one converter. Only the fields below are read; every other field is skipped by its wire
//! type, and anything malformed is an error, never a panic.
//!
//! - `ModelProto.graph` (7) → `GraphProto`: `node` (1), `initializer` (5);
//! - `NodeProto`: `input` (1), `output` (2), `op_type` (4), `attribute` (5);
//! - `AttributeProto`: `name` (1), `i` (3), `ints` (8);
//! - `TensorProto`: `dims` (1), `data_type` (2, only 1 = float and 7 = int64 are read),
//!   `float_data` (4), `name` (8), `raw_data` (9).

use std::collections::HashMap;

use super::WeightsError;

fn err(msg: impl Into<String>) -> WeightsError {
    WeightsError::Convert(format!("onnx: {}", msg.into()))
}

/// One operator of the graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub op: String,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    /// Integer and integer-list attributes (`group`, `strides`, `pads`, `kernel_shape`...).
    pub ints: HashMap<String, Vec<i64>>,
}

impl Node {
    /// The integer attribute `name`, if it has exactly one value.
    pub fn int(&self, name: &str) -> Option<i64> {
        match self.ints.get(name).map(Vec::as_slice) {
            Some([v]) => Some(*v),
            _ => None,
        }
    }
}

/// A float initializer.
#[derive(Debug, Clone, PartialEq)]
pub struct Initializer {
    pub dims: Vec<usize>,
    pub values: Vec<f32>,
}

/// The nodes and float initializers of an ONNX model.
#[derive(Debug, Default)]
pub struct Graph {
    pub nodes: Vec<Node>,
    pub initializers: HashMap<String, Initializer>,
}

/// A cursor over protobuf wire-format bytes.
struct Wire<'a> {
    bytes: &'a [u8],
    pos: usize,
}

/// One field's value.
enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
    /// A 64-bit fixed field: none of the fields read here is one.
    Fixed64,
}

impl<'a> Wire<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    fn varint(&mut self) -> Result<u64, WeightsError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self
                .bytes
                .get(self.pos)
                .ok_or_else(|| err("varint runs past the end"))?;
            self.pos += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(err("varint longer than 10 bytes"))
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], WeightsError> {
        let end = self
            .pos
            .checked_add(len)
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| err("field runs past the end"))?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    /// The next `(field number, value)`, or `None` at the end.
    fn field(&mut self) -> Result<Option<(u64, Value<'a>)>, WeightsError> {
        if self.pos == self.bytes.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Value::Fixed64
            }
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| err("length overflow"))?;
                Value::Bytes(self.take(len)?)
            }
            5 => {
                let b = self.take(4)?;
                Value::Fixed32(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            }
            t => return Err(err(format!("unsupported wire type {t}"))),
        };
        Ok(Some((key >> 3, value)))
    }
}

fn text(bytes: &[u8]) -> Result<String, WeightsError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| err("a name is not UTF-8"))
}

/// Integers of a repeated int64 field, packed or not.
fn push_ints(value: Value, out: &mut Vec<i64>) -> Result<(), WeightsError> {
    match value {
        Value::Varint(v) => out.push(v as i64),
        Value::Bytes(packed) => {
            let mut w = Wire::new(packed);
            while w.pos < packed.len() {
                out.push(w.varint()? as i64);
            }
        }
        Value::Fixed32(_) | Value::Fixed64 => {
            return Err(err("an integer field holds a fixed-width value"));
        }
    }
    Ok(())
}

fn attribute(bytes: &[u8]) -> Result<(String, Vec<i64>), WeightsError> {
    let (mut name, mut ints) = (String::new(), Vec::new());
    let mut w = Wire::new(bytes);
    while let Some((field, value)) = w.field()? {
        match (field, value) {
            (1, Value::Bytes(b)) => name = text(b)?,
            (3 | 8, v) => push_ints(v, &mut ints)?,
            _ => {}
        }
    }
    Ok((name, ints))
}

fn node(bytes: &[u8]) -> Result<Node, WeightsError> {
    let mut node = Node {
        op: String::new(),
        inputs: Vec::new(),
        outputs: Vec::new(),
        ints: HashMap::new(),
    };
    let mut w = Wire::new(bytes);
    while let Some((field, value)) = w.field()? {
        match (field, value) {
            (1, Value::Bytes(b)) => node.inputs.push(text(b)?),
            (2, Value::Bytes(b)) => node.outputs.push(text(b)?),
            (4, Value::Bytes(b)) => node.op = text(b)?,
            (5, Value::Bytes(b)) => {
                let (name, ints) = attribute(b)?;
                if !ints.is_empty() {
                    node.ints.insert(name, ints);
                }
            }
            _ => {}
        }
    }
    Ok(node)
}

/// A tensor's name and, when it holds floats, its values.
fn tensor(bytes: &[u8]) -> Result<(String, Option<Initializer>), WeightsError> {
    let (mut name, mut dims, mut data_type) = (String::new(), Vec::new(), 0);
    let (mut raw, mut floats): (Option<&[u8]>, Vec<f32>) = (None, Vec::new());
    let mut w = Wire::new(bytes);
    while let Some((field, value)) = w.field()? {
        match (field, value) {
            (1, v) => push_ints(v, &mut dims)?,
            (2, Value::Varint(t)) => data_type = t,
            (4, Value::Bytes(packed)) => floats.extend(
                packed
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
            ),
            (4, Value::Fixed32(bits)) => floats.push(f32::from_bits(bits)),
            (8, Value::Bytes(b)) => name = text(b)?,
            (9, Value::Bytes(b)) => raw = Some(b),
            _ => {}
        }
    }
    if data_type != 1 {
        return Ok((name, None));
    }
    let dims: Vec<usize> = dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| err(format!("{name}: negative dimension"))))
        .collect::<Result<_, _>>()?;
    let values = match raw {
        Some(raw) if raw.len() % 4 == 0 => raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Some(_) => return Err(err(format!("{name}: raw data is not whole floats"))),
        None => floats,
    };
    if values.len() != dims.iter().product::<usize>() {
        return Err(err(format!(
            "{name}: {} values for dimensions {dims:?}",
            values.len()
        )));
    }
    Ok((name, Some(Initializer { dims, values })))
}

/// Reads the graph of the ONNX model in `bytes`.
pub fn read(bytes: &[u8]) -> Result<Graph, WeightsError> {
    let mut model = Wire::new(bytes);
    let mut graph_bytes = None;
    while let Some((field, value)) = model.field()? {
        if let (7, Value::Bytes(b)) = (field, value) {
            graph_bytes = Some(b);
        }
    }
    let mut graph = Graph::default();
    let mut w = Wire::new(graph_bytes.ok_or_else(|| err("the model has no graph"))?);
    while let Some((field, value)) = w.field()? {
        match (field, value) {
            (1, Value::Bytes(b)) => graph.nodes.push(node(b)?),
            (5, Value::Bytes(b)) => {
                if let (name, Some(init)) = tensor(b)? {
                    graph.initializers.insert(name, init);
                }
            }
            _ => {}
        }
    }
    Ok(graph)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }

    fn bytes_field(field: u64, payload: &[u8], out: &mut Vec<u8>) {
        varint(field << 3 | 2, out);
        varint(payload.len() as u64, out);
        out.extend_from_slice(payload);
    }

    fn int_field(field: u64, v: u64, out: &mut Vec<u8>) {
        varint(field << 3, out);
        varint(v, out);
    }

    /// A model with one Conv node (group 1, packed strides) and a 2×2 float initializer.
    fn model() -> Vec<u8> {
        let mut attr = Vec::new();
        bytes_field(1, b"strides", &mut attr);
        let mut packed = Vec::new();
        varint(2, &mut packed);
        varint(2, &mut packed);
        bytes_field(8, &packed, &mut attr);
        let mut group = Vec::new();
        bytes_field(1, b"group", &mut group);
        int_field(3, 1, &mut group);
        let mut node = Vec::new();
        bytes_field(1, b"x", &mut node);
        bytes_field(1, b"w", &mut node);
        bytes_field(2, b"y", &mut node);
        bytes_field(4, b"Conv", &mut node);
        bytes_field(5, &attr, &mut node);
        bytes_field(5, &group, &mut node);
        let mut init = Vec::new();
        int_field(1, 2, &mut init);
        int_field(1, 2, &mut init);
        int_field(2, 1, &mut init);
        bytes_field(8, b"w", &mut init);
        let raw: Vec<u8> = [1.0f32, -2.0, 0.5, 4.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        bytes_field(9, &raw, &mut init);
        let mut graph = Vec::new();
        bytes_field(1, &node, &mut graph);
        bytes_field(5, &init, &mut graph);
        let mut model = Vec::new();
        int_field(1, 7, &mut model); // ir_version, skipped
        bytes_field(7, &graph, &mut model);
        model
    }

    #[test]
    fn reads_nodes_attributes_and_initializers() {
        let graph = read(&model()).expect("read");
        let node = &graph.nodes[0];
        assert_eq!(node.op, "Conv");
        assert_eq!(node.inputs, ["x", "w"]);
        assert_eq!(node.outputs, ["y"]);
        assert_eq!(node.ints["strides"], [2, 2]);
        assert_eq!(node.int("group"), Some(1));
        assert_eq!(
            graph.initializers["w"],
            Initializer {
                dims: vec![2, 2],
                values: vec![1.0, -2.0, 0.5, 4.0]
            }
        );
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let bytes = model();
        for cut in 1..bytes.len() {
            assert!(read(&bytes[..cut]).is_err(), "cut at {cut} read as whole");
        }
    }
}
