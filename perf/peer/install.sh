#!/usr/bin/env bash
# Installs the peer (the seed's Python design: Flask + gunicorn + pika + face_recognition +
# Redis) into a virtual environment outside git, for the side-by-side benchmarks in perf/.
#
# dlib is taken from the prebuilt `dlib-bin` wheel (it provides the `dlib` module) instead of
# compiling dlib from source, which takes far longer than the benchmark itself; so
# face_recognition and its models are installed with --no-deps and their light dependencies
# are named here.
#
# Usage: perf/peer/install.sh            # venv in perf/peer/.venv (git-ignored)
#        PEER_VENV=/tmp/peer perf/peer/install.sh
# Idempotent: a venv that already imports everything is left as it is.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
venv="${PEER_VENV:-$here/.venv}"
python="${PYTHON:-python3}"

if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c \
    'import flask, gunicorn, pika, redis, dlib, face_recognition' 2>/dev/null; then
    echo "peer venv ready: $venv"
    exit 0
fi

"$python" -m venv "$venv"
pip=("$venv/bin/pip" install --disable-pip-version-check --quiet)
"${pip[@]}" --upgrade pip
"${pip[@]}" flask gunicorn pika redis numpy Pillow Click dlib-bin
"${pip[@]}" --no-deps face_recognition face_recognition_models
# face_recognition_models imports pkg_resources, which newer setuptools no longer ships.
"${pip[@]}" 'setuptools<81'
"$venv/bin/python" -c 'import flask, gunicorn, pika, redis, dlib, face_recognition; print("dlib", dlib.__version__)'
echo "peer venv ready: $venv"
