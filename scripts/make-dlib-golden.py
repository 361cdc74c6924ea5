#!/usr/bin/env python3
"""Builds gpu-worker/tests/golden/dlib/: the face chips dlib itself cuts for the landmarks our
pipeline found on the demo images, for the golden test of the dlib crop.

    cargo run --release -p gpu-worker --example dlib_golden_inputs -- /tmp/dlib-in
    python3 -m venv /tmp/dlib-venv && /tmp/dlib-venv/bin/pip install dlib-bin numpy pillow
    /tmp/dlib-venv/bin/python scripts/make-dlib-golden.py /tmp/dlib-in

dlib's Python API takes integer landmark points, so each landmark is rounded first; the
rounded points are stored with the chips, and the test cuts its chips from the same points.
"""
import json
import os
import sys

import dlib
import numpy as np
from PIL import Image

SIZE, PADDING = 150, 0.25


def main() -> None:
    src = sys.argv[1]
    dst = os.path.join(os.path.dirname(__file__), "..", "gpu-worker", "tests", "golden", "dlib")
    os.makedirs(dst, exist_ok=True)
    inputs = json.load(open(os.path.join(src, "landmarks.json")))
    faces = []
    for image in inputs["images"]:
        pixels = np.asarray(Image.open(os.path.join(src, image["file"])).convert("RGB"))
        stem = os.path.splitext(image["file"])[0]
        for k, face in enumerate(image["faces"]):
            points = [[int(round(x)), int(round(y))] for x, y in face["landmarks"]]
            xs, ys = [p[0] for p in points], [p[1] for p in points]
            rect = dlib.rectangle(min(xs), min(ys), max(xs), max(ys))
            shape = dlib.full_object_detection(rect, [dlib.point(x, y) for x, y in points])
            chip = dlib.get_face_chip(pixels, shape, size=SIZE, padding=PADDING)
            name = f"{stem}_face{k}.png"
            Image.fromarray(chip).save(os.path.join(dst, name))
            faces.append({"image": image["source"], "scale": image["scale"], "chip": name,
                          "landmarks": points})
    meta = {"dlib": dlib.__version__, "size": SIZE, "padding": PADDING, "faces": faces}
    with open(os.path.join(dst, "chips.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print(f"{len(faces)} chips written to {dst}")


if __name__ == "__main__":
    main()
