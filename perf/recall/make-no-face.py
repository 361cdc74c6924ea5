#!/usr/bin/env python3
"""Writes the no-face images of the recall benchmark (perf/src/bin/recall.rs) to a folder:
scikit-image's bundled photos without people (a cat, coffee, a rocket, the Hubble deep field,
a clock, coins, textures, a motorcycle, cells, a phantom...), crops of its astronaut photo
that leave her face out (flag, shuttle, helmet, suit), tight crops of the cat's face, and a
150 px thumbnail of each (small images are where the second detection pass runs); then the
four quarters of every photo at least 256 px on each side (the cat's quarters hold its eyes,
nose and ears apart), so the set holds more than 100 images.

    python3 -m venv /tmp/recall-venv && /tmp/recall-venv/bin/pip install scikit-image pillow
    /tmp/recall-venv/bin/python perf/recall/make-no-face.py /tmp/no-face
"""
import os
import sys

import numpy as np
import skimage.data as data
from PIL import Image

PHOTOS = ["chelsea", "coffee", "rocket", "hubble_deep_field", "clock", "coins", "brick",
          "grass", "gravel", "immunohistochemistry", "retina", "colorwheel", "moon", "page",
          "text", "horse", "logo", "cell", "microaneurysms", "shepp_logan_phantom",
          "checkerboard"]
# (name, left, top, right, bottom) of crops without a face.
CROPS = [("astronaut", 0, 0, 110, 512), ("astronaut", 340, 0, 512, 300),
         ("astronaut", 270, 330, 512, 512), ("astronaut", 100, 300, 300, 512),
         ("astronaut", 300, 200, 512, 512), ("chelsea", 60, 0, 380, 300),
         ("chelsea", 100, 40, 350, 290), ("chelsea", 130, 60, 330, 260)]


def rgb(a: np.ndarray) -> Image.Image:
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255
    img = Image.fromarray(a)
    return img.convert("RGB")


def main() -> None:
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    images = {name: rgb(getattr(data, name)()) for name in PHOTOS}
    images["motorcycle"] = rgb(data.stereo_motorcycle()[0])
    astronaut, chelsea = rgb(data.astronaut()), rgb(data.chelsea())
    for k, (name, l, t, r, b) in enumerate(CROPS):
        src = astronaut if name == "astronaut" else chelsea
        images[f"{name}_crop{k}"] = src.crop((l, t, r, b))
    for name, img in list(images.items()):
        img.save(os.path.join(out, f"{name}.png"))
        thumb = img.copy()
        thumb.thumbnail((150, 150))
        thumb.save(os.path.join(out, f"{name}_thumb150.jpg"), quality=90)
    quarters = 0
    for name, img in images.items():
        w, h = img.size
        if "_crop" in name or min(w, h) < 256:
            continue
        for k, (l, t) in enumerate([(0, 0), (w // 2, 0), (0, h // 2), (w // 2, h // 2)]):
            img.crop((l, t, l + w // 2, t + h // 2)).save(
                os.path.join(out, f"{name}_quarter{k}.jpg"), quality=90)
            quarters += 1
    print(f"{2 * len(images) + quarters} no-face images written to {out}")


if __name__ == "__main__":
    main()
