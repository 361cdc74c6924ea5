#!/usr/bin/env bash
# Writes the held-out photos of the recall benchmark to a folder: photos of real people that
# no part of facematch was tuned on, taken from two packages' source distributions on PyPI
# (face_recognition's test images: Obama ×3, Biden; insightface's sample images: a group
# photo and a portrait). The recall bench cuts its tight crops and thumbnails from every face
# it finds in them, as it does from the demo images. Nothing here is committed.
#   perf/recall/make-held-out.sh /tmp/held-out
#   cargo run --release -p facematch-perf --bin recall -- --photos /tmp/held-out
set -euo pipefail
out=${1:?usage: make-held-out.sh OUT_DIR}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pip download --quiet --no-deps --no-binary :all: -d "$work" \
  face_recognition==1.3.0 insightface==2.1
mkdir -p "$out"
tar -xzf "$work"/face_recognition-1.3.0.tar.gz -C "$work"
cp "$work"/face_recognition-1.3.0/tests/test_images/{obama,obama2,obama3,biden}.jpg "$out"/
tar -xzf "$work"/insightface-2.1.tar.gz -C "$work"
cp "$work"/insightface-2.1/insightface/data/images/{t1.jpg,Tom_Hanks_54745.png} "$out"/
ls "$out"
