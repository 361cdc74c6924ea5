#!/usr/bin/env python3
"""The recall benchmark's crops and no-face images through the peer's detector, for the
side-by-side row of perf/RESULTS.md: face_recognition's defaults as the peer worker calls them
(dlib's HOG frontal detector, upsampled once, then its 128-d descriptor). `--detector cnn`
uses dlib's MMOD CNN detector instead (`model="cnn"`, the weights in the PyPI package
face_recognition_models that the peer installs): not what the peer worker runs, but the
nearest detector from a package registry that scores faces in profile, measured for #9.

A crop counts as found when the peer finds a face in it, and as matched when one of those
faces is within 0.6 of a face the peer finds in the crop's source photo (the crop's names say
which photo: s<photo>f<face>_x<framing>_<size>_<colour|grey>.jpg, as `recall --save-crops`
writes them).

    target/release/recall --save-crops /tmp/crops
    perf/peer/install.sh
    perf/peer/.venv/bin/python perf/recall/peer-recall.py /tmp/crops model-weights/demo \
        --no-face /tmp/no-face [--detector cnn]
"""
import argparse
import collections
import os
import re

import face_recognition
import numpy as np

NAME = re.compile(r"s(\d+)f(\d+)_x([\d.]+)_(\d+)_(colour|grey)\.jpg$")


def locations(image, detector):
    return face_recognition.face_locations(image, number_of_times_to_upsample=1, model=detector)


def encodings(path, detector):
    image = face_recognition.load_image_file(path)
    return face_recognition.face_encodings(image, locations(image, detector))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("crops")
    ap.add_argument("photos", help="folder with sample<N>.jpg, the crops' sources")
    ap.add_argument("--no-face")
    ap.add_argument("--detector", choices=["hog", "cnn"], default="hog")
    args = ap.parse_args()

    sources = {}
    cells = collections.defaultdict(lambda: [0, 0, 0])
    missed = []
    for name in sorted(os.listdir(args.crops)):
        m = NAME.match(name)
        if not m:
            continue
        photo, _, framing, size, colour = m.groups()
        if photo not in sources:
            source = os.path.join(args.photos, f"sample{photo}.jpg")
            sources[photo] = encodings(source, args.detector)
        found = encodings(os.path.join(args.crops, name), args.detector)
        cell = cells[(framing, int(size), colour)]
        cell[0] += 1
        cell[1] += bool(found)
        cell[2] += any(
            np.linalg.norm(s - f) <= 0.6 for f in found for s in sources[photo]
        )
        if not found:
            missed.append(name[:-4])

    print("| framing | size | colour | crops | face found | matches its source photo at 0.6 |")
    print("|---|---|---|---|---|---|")
    total = [0, 0, 0]
    for (framing, size, colour), (n, found, matched) in sorted(cells.items()):
        print(f"| ×{framing} | {size} px | {colour} | {n} | {found} ({100 * found / n:.1f} %) "
              f"| {matched} ({100 * matched / n:.1f} %) |")
        total = [a + b for a, b in zip(total, (n, found, matched))]
    n, found, matched = total
    print(f"| **all** | | | {n} | {found} ({100 * found / max(n, 1):.2f} %) "
          f"| {matched} ({100 * matched / max(n, 1):.2f} %) |")
    print("\nmissed crops:", " ".join(missed))

    if args.no_face:
        false_faces = 0
        names = sorted(os.listdir(args.no_face))
        for name in names:
            image = face_recognition.load_image_file(os.path.join(args.no_face, name))
            faces = len(locations(image, args.detector))
            false_faces += faces
            if faces:
                print(f"false face: {name} ({faces})")
        print(f"\nfalse faces on {len(names)} no-face images: {false_faces}")


if __name__ == "__main__":
    main()
