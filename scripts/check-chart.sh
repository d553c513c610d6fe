#!/usr/bin/env bash
# Checks the Helm chart in helm/augment-connector, offline:
#   - helm lint --strict with every ci/*-values.yaml scenario,
#   - helm template of each scenario, the manifests validated against the Kubernetes
#     $KUBE_VERSION OpenAPI schemas that kubectl-validate carries (the ServiceMonitor against
#     the trimmed CRD in helm/validation-crds),
#   - that the pods' checksum/config annotation is the sha256 of the ConfigMap's config.yaml
#     and changes with the config,
#   - the helm-unittest suites in helm/augment-connector/tests/,
#   - promtool check rules of the alert rules (files/alerts.yaml).
# The tools are built from source through the Go module proxy into
# ${TOOLS_DIR:-$HOME/.cache/augment-connector-tools} (outside the repo) and reused from there;
# a version bump below builds the new one beside the old. No chart repository, no cluster.
set -euo pipefail
cd "$(dirname "$0")/.."

HELM_VERSION=v3.22.0
KUBECTL_VALIDATE_VERSION=v0.0.4
HELM_UNITTEST_VERSION=v1.1.2
# promtool of Prometheus 3 (its Go module is versioned v0.3xx), to check the chart's alert rules.
PROMTOOL_VERSION=v0.316.0
# The newest Kubernetes whose schemas kubectl-validate v0.0.4 embeds (it would fetch others).
KUBE_VERSION=1.30

TOOLS_DIR=${TOOLS_DIR:-$HOME/.cache/augment-connector-tools}
chart=helm/augment-connector

t0=$(date +%s)
step() { printf '\n== %s (+%ss)\n' "$*" "$(($(date +%s) - t0))"; }

# --- tools ---------------------------------------------------------------------------------
step "tools in $TOOLS_DIR"
mkdir -p "$TOOLS_DIR"
helm_dir=$TOOLS_DIR/helm-$HELM_VERSION
kv_dir=$TOOLS_DIR/kubectl-validate-$KUBECTL_VALIDATE_VERSION
plugins=$TOOLS_DIR/helm-plugins-$HELM_UNITTEST_VERSION
helm_bin=$helm_dir/helm
kv_bin=$kv_dir/kubectl-validate

# go_install DIR PACKAGE@VERSION [LDFLAGS]: builds into DIR.tmp and renames it into place, so
# an interrupted build never leaves a half tool that looks cached.
go_install() {
  local dest=$1 pkg=$2 ldflags=${3:-}
  echo "building $pkg"
  rm -rf "$dest.tmp"
  mkdir -p "$dest.tmp"
  GOBIN=$dest.tmp CGO_ENABLED=0 go install -trimpath -ldflags "-s -w $ldflags" "$pkg"
  rm -rf "$dest"
  mv "$dest.tmp" "$dest"
}

# mod_file MODULE@VERSION FIELD: a field (Dir, GoMod) of `go mod download -json`.
mod_file() {
  go mod download -json "$1" | sed -n "s/^[[:space:]]*\"$2\": \"\\(.*\\)\",\$/\\1/p"
}

if [ ! -x "$helm_bin" ]; then
  # As helm's own Makefile does: the default Kubernetes version (capabilities, lint) is the
  # one of the client-go helm is built with, not the v1.20 fallback of a plain go install.
  gomod=$(mod_file "helm.sh/helm/v3@$HELM_VERSION" GoMod)
  k8s_minor=$(sed -n 's/^[[:space:]]*k8s.io\/client-go v0\.\([0-9]*\)\..*/\1/p' "$gomod")
  [ -n "$k8s_minor" ] || { echo "no k8s.io/client-go version in $gomod" >&2; exit 1; }
  x=""
  for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
    x="$x -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$k8s_minor"
  done
  go_install "$helm_dir" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" \
    "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION$x"
fi
[ -x "$kv_bin" ] || go_install "$kv_dir" "sigs.k8s.io/kubectl-validate@$KUBECTL_VALIDATE_VERSION"
promtool_dir=$TOOLS_DIR/promtool-$PROMTOOL_VERSION
[ -x "$promtool_dir/promtool" ] || go_install "$promtool_dir" "github.com/prometheus/prometheus/cmd/promtool@$PROMTOOL_VERSION"

# helm-unittest's go.mod has a replace directive, so `go install pkg@version` refuses it: its
# module source comes through the proxy with `go mod download` and is built in its module
# dir (read-only; the build writes only the output binary), then laid out as a helm plugin
# dir (plugin.yaml beside the untt-linux-amd64 it names), which `helm unittest` runs.
if [ ! -x "$plugins/unittest/untt-linux-amd64" ]; then
  echo "building github.com/helm-unittest/helm-unittest@$HELM_UNITTEST_VERSION"
  moddir=$(mod_file "github.com/helm-unittest/helm-unittest@$HELM_UNITTEST_VERSION" Dir)
  [ -d "$moddir" ] || { echo "downloading helm-unittest gave no module dir" >&2; exit 1; }
  rm -rf "$plugins.tmp"
  mkdir -p "$plugins.tmp/unittest"
  (cd "$moddir" && CGO_ENABLED=0 go build -trimpath \
    -ldflags "-s -w -X github.com/helm-unittest/helm-unittest/internal/build.version=${HELM_UNITTEST_VERSION#v}" \
    -o "$plugins.tmp/unittest/untt-linux-amd64" ./cmd/helm-unittest)
  cp "$moddir/plugin.yaml" "$plugins.tmp/unittest/plugin.yaml"
  chmod u+w "$plugins.tmp/unittest/plugin.yaml"
  rm -rf "$plugins"
  mv "$plugins.tmp" "$plugins"
fi

# helm keeps its state under TOOLS_DIR, never in the user's helm config; no repositories.
export HELM_PLUGINS=$plugins
export HELM_CACHE_HOME=$TOOLS_DIR/helm-home/cache
export HELM_CONFIG_HOME=$TOOLS_DIR/helm-home/config
export HELM_DATA_HOME=$TOOLS_DIR/helm-home/data
# kubectl-validate must not look for a cluster.
export KUBECONFIG=/dev/null
echo "helm $("$helm_bin" version --short), kubectl-validate $KUBECTL_VALIDATE_VERSION, helm-unittest $HELM_UNITTEST_VERSION"

helm() { "$helm_bin" "$@"; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# --- lint, render, validate ----------------------------------------------------------------
scenarios=("$chart"/ci/*-values.yaml)
[ "${#scenarios[@]}" -ge 4 ] || { echo "expected at least 4 ci scenarios, found ${#scenarios[@]}" >&2; exit 1; }

step "helm lint --strict (${#scenarios[@]} scenarios)"
for values in "${scenarios[@]}"; do
  echo "-- $values"
  helm lint --strict --quiet --kube-version "$KUBE_VERSION" -f "$values" "$chart"
done

step "helm template + kubectl-validate --version $KUBE_VERSION"
for values in "${scenarios[@]}"; do
  name=$(basename "$values" -values.yaml)
  out=$tmp/$name.yaml
  helm template augment-connector "$chart" --namespace connectors --kube-version "$KUBE_VERSION" \
    -f "$values" >"$out"
  kinds=$(sed -n 's/^kind: //p' "$out" | sort | tr '\n' ' ')
  echo "-- $name: $kinds"
  "$kv_bin" --version "$KUBE_VERSION" --local-crds helm/validation-crds "$out"
done

# --- the checksum/config annotation --------------------------------------------------------
step "checksum/config is the sha256 of config.yaml and follows it"
# rendered_checksum VALUES...: "annotation digest" for a render with those values, where
# digest is the sha256 of the ConfigMap's config.yaml (the 4-space-indented block scalar the
# template writes, less the final newline the block adds).
rendered_checksum() {
  helm template augment-connector "$chart" --kube-version "$KUBE_VERSION" "$@" \
    --show-only templates/configmap.yaml >"$tmp/cm.yaml"
  helm template augment-connector "$chart" --kube-version "$KUBE_VERSION" "$@" \
    --show-only templates/deployment.yaml >"$tmp/dep.yaml"
  local ann digest
  ann=$(sed -n 's/^ *checksum\/config: *//p' "$tmp/dep.yaml")
  digest=$(awk 'block && !/^    / && !/^$/ {exit} block {print} /^  config.yaml: \|$/ {block=1}' "$tmp/cm.yaml" |
    sed 's/^    //' | head -c -1 | sha256sum | cut -d' ' -f1)
  echo "$ann $digest"
}
out1=$(rendered_checksum -f "$chart/ci/default-values.yaml")
out2=$(rendered_checksum -f "$chart/ci/default-values.yaml" --set config.logging.level=debug)
read -r ann1 sum1 <<<"$out1"
read -r ann2 sum2 <<<"$out2"
[ "$ann1" = "$sum1" ] || { echo "checksum/config $ann1 is not sha256(config.yaml) $sum1" >&2; exit 1; }
[ "$ann2" = "$sum2" ] || { echo "checksum/config $ann2 is not sha256(config.yaml) $sum2" >&2; exit 1; }
[ "$ann1" != "$ann2" ] || { echo "checksum/config did not change with the config" >&2; exit 1; }
echo "ok: $ann1 -> $ann2"

# --- the rendered config against the connector ---------------------------------------------
# Each scenario's config.yaml must pass `augment-connector check`, in a copy of the pod's
# filesystem: every ${NAME} it uses must be an env var of the container, and every file it
# names (tokenFile, passwordFile, caFile...) must lie in a volume mounted in the container.
step "rendered configs pass augment-connector check, with the env and mounts they need"
CGO_ENABLED=0 go build -o "$tmp/augment-connector" ./cmd/augment-connector
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
  -subj /CN=check-chart -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null
podetc=/etc/augment-connector
for values in "${scenarios[@]}"; do
  name=$(basename "$values" -values.yaml)
  if ! helm template augment-connector "$chart" --kube-version "$KUBE_VERSION" -f "$values" \
    --show-only templates/configmap.yaml >"$tmp/cm.yaml" 2>/dev/null; then
    echo "-- $name: no ConfigMap (existingConfigMap), nothing to check"
    continue
  fi
  helm template augment-connector "$chart" --kube-version "$KUBE_VERSION" -f "$values" \
    --show-only templates/deployment.yaml >"$tmp/dep.yaml"
  root=$tmp/root-$name
  mkdir -p "$root$podetc"
  awk 'b && !/^    / && !/^$/ {exit} b {print} /^  config.yaml: \|$/ {b=1}' "$tmp/cm.yaml" |
    sed 's/^    //' >"$tmp/config.yaml"
  sed "s#$podetc#$root$podetc#g" "$tmp/config.yaml" >"$root$podetc/config.yaml"
  # The container's env var names, and its mount paths but the config's own and /tmp.
  envs=$(awk '/^          env:/ {e=1; next} e && /^          [a-z]/ {e=0} e && /^            - name:/ {print $3}' "$tmp/dep.yaml")
  mounts=$(sed -n 's/^[ -]*mountPath: //p' "$tmp/dep.yaml" | grep -v -x -e "$podetc/config.yaml" -e /tmp || true)
  envargs=()
  while read -r var; do
    grep -qx "$var" <<<"$envs" || { echo "$name: config uses \${$var} but the container has no such env var" >&2; exit 1; }
    envargs+=("$var=check-chart-dummy")
  done < <(grep -o '[$]{[A-Za-z_][A-Za-z0-9_]*' "$tmp/config.yaml" | cut -c3- | sort -u)
  while read -r key path; do
    [ -n "$path" ] || continue
    case $path in /*) ;; *) path=$podetc/$path ;; esac
    inmount=""
    for m in $mounts; do case $path in "$m"/*) inmount=$m ;; esac; done
    [ -n "$inmount" ] || { echo "$name: config's $key $path is in no volume mounted in the container" >&2; exit 1; }
    mkdir -p "$(dirname "$root$path")"
    case $key in
      caFile | certFile) cp "$tmp/cert.pem" "$root$path" ;;
      keyFile) cp "$tmp/key.pem" "$root$path" ;;
      *) echo check-chart-dummy >"$root$path" ;;
    esac
  done < <(sed -n 's/^ *\([A-Za-z]*File\): *\(.*\)$/\1 \2/p' "$tmp/config.yaml" | tr -d "\"'")
  echo "-- $name (env: ${envargs[*]+${envargs[*]%%=*}})"
  env ${envargs[@]+"${envargs[@]}"} "$tmp/augment-connector" check --config "$root$podetc/config.yaml"
done

# --- unit tests ----------------------------------------------------------------------------
step "helm unittest"
helm unittest --strict --color=false "$chart"

# --- alert rules ---------------------------------------------------------------------------
step "promtool check rules (the PrometheusRule's groups)"
"$promtool_dir/promtool" check rules "$chart/files/alerts.yaml"

step "chart checks passed"
