#!/usr/bin/env python3
"""Writes crowd collages for the recall benchmark: a grid of face crops, the kind of image
where a detector with a fixed small input or a low cap on faces per image loses most faces.

The faces are the ×1.2 colour crops `recall --save-crops` cuts around every face it finds
(demo and held-out photos: pass both folders), each resized to the cell size; they are used in
turn, mirrored on every second round, so a 20×20 grid holds each distinct face about 400/N
times. `--lfw` adds scikit-image's bundled LFW faces (25×25 px, 100 people) upscaled to the
cell, a harder set of blurry faces.

    make-collage.py OUT.png CROPS_DIR [CROPS_DIR ...] [--grid 20] [--cell 100] [--lfw]
"""
import argparse
import os
import re

import numpy as np
from PIL import Image, ImageOps

CROP = re.compile(r"_x1\.2_250_colour\.jpg$")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("crops", nargs="+")
    ap.add_argument("--grid", type=int, default=20)
    ap.add_argument("--cell", type=int, default=100)
    ap.add_argument("--lfw", action="store_true")
    args = ap.parse_args()

    faces = []
    for folder in args.crops:
        faces += [Image.open(os.path.join(folder, f)).convert("RGB")
                  for f in sorted(os.listdir(folder)) if CROP.search(f)]
    if args.lfw:
        import skimage.data

        lfw = skimage.data.lfw_subset()[:100]
        faces += [Image.fromarray((a * 255).astype(np.uint8)).convert("RGB") for a in lfw]
    if not faces:
        raise SystemExit("no ×1.2 250 px colour crops found")
    n, c = args.grid, args.cell
    sheet = Image.new("RGB", (n * c, n * c), (128, 128, 128))
    for k in range(n * n):
        face = faces[k % len(faces)].resize((c, c), Image.BICUBIC)
        if (k // len(faces)) % 2:
            face = ImageOps.mirror(face)
        sheet.paste(face, ((k % n) * c, (k // n) * c))
    sheet.save(args.out)
    print(f"{n * n} faces ({len(faces)} distinct crops) in a {n * c}x{n * c} collage: {args.out}")


if __name__ == "__main__":
    main()
