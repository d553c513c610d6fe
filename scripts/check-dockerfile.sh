#!/usr/bin/env bash
# Checks the Dockerfile without a Docker engine:
#   - lints it with dockerfilelint (npm, pinned; npm's cache outside the repo),
#   - checks what the image promises: the pinned bases, nonroot USER, EXPOSE, ENTRYPOINT, CMD
#     and the OCI labels,
#   - lays out the build context as Docker would (.dockerignore, with Docker's own pattern
#     matcher github.com/moby/patternmatcher) and runs the Dockerfile's `go mod download` and
#     `go build` commands in it, taken from the Dockerfile itself, with VERSION/COMMIT/DATE,
#   - checks the binary is statically linked and that `augment-connector version` prints the
#     injected version, commit and date.
# Tools are cached in ${TOOLS_DIR:-$HOME/.cache/augment-connector-tools}.
set -euo pipefail
cd "$(dirname "$0")/.."

DOCKERFILELINT_VERSION=1.8.0
PATTERNMATCHER_VERSION=v0.6.1
TOOLS_DIR=${TOOLS_DIR:-$HOME/.cache/augment-connector-tools}

t0=$(date +%s)
step() { printf '\n== %s (+%ss)\n' "$*" "$(($(date +%s) - t0))"; }
fail() { echo "check-dockerfile: $*" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$TOOLS_DIR"

# --- lint ----------------------------------------------------------------------------------
step "dockerfilelint $DOCKERFILELINT_VERSION"
npm_config_cache=$TOOLS_DIR/npm-cache npm_config_update_notifier=false npm_config_fund=false \
  npx --yes "dockerfilelint@$DOCKERFILELINT_VERSION" Dockerfile

# --- what the image promises ---------------------------------------------------------------
step "Dockerfile contract"
# require LINE: an exact line of the Dockerfile (leading spaces ignored).
require() { sed 's/^[[:space:]]*//' Dockerfile | grep -qxF -- "$1" || fail "Dockerfile lacks the line: $1"; }
require 'FROM golang:1.26 AS build'
require 'FROM gcr.io/distroless/static-debian12:nonroot'
require 'USER 65532:65532'
require 'EXPOSE 9090'
require 'ENTRYPOINT ["/augment-connector"]'
require 'CMD ["run", "--config=/etc/augment-connector/config.yaml"]'
require 'COPY --from=build /out/augment-connector /augment-connector'
for label in title description source version revision created; do
  grep -q "org\.opencontainers\.image\.$label=" Dockerfile || fail "no org.opencontainers.image.$label label"
done
# No shell in the final stage: every instruction after the last FROM is exec-form or data.
awk '/^FROM /{s=$0; n=0} {if (s ~ /distroless/ && /^RUN /) print}' Dockerfile | grep -q . &&
  fail "RUN in the distroless stage (it has no shell)"
echo "ok"

# --- the build context ---------------------------------------------------------------------
step "build context per .dockerignore"
ctxtool=$TOOLS_DIR/dockerignore-context-$PATTERNMATCHER_VERSION/dockerignore-context
if [ ! -x "$ctxtool" ]; then
  echo "building dockerignore-context with github.com/moby/patternmatcher@$PATTERNMATCHER_VERSION"
  src=$tmp/ctxtool
  mkdir -p "$src"
  cat >"$src/main.go" <<'EOF'
// Command dockerignore-context prints, of the paths read from stdin (relative, one a line),
// those Docker would send in the build context: the ones .dockerignore (argument 1) keeps.
package main

import (
	"bufio"
	"fmt"
	"os"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

func main() {
	f, err := os.Open(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		fmt.Fprintln(os.Stderr, "reading .dockerignore:", err)
		os.Exit(1)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		fmt.Fprintln(os.Stderr, "compiling .dockerignore:", err)
		os.Exit(1)
	}
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		skip, err := pm.MatchesOrParentMatches(in.Text())
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if !skip {
			fmt.Println(in.Text())
		}
	}
	if err := in.Err(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
EOF
  (cd "$src" && go mod init dockerignore-context >/dev/null 2>&1 &&
    go get "github.com/moby/patternmatcher@$PATTERNMATCHER_VERSION" >/dev/null 2>&1 &&
    CGO_ENABLED=0 go build -o "$ctxtool.tmp" .)
  mkdir -p "$(dirname "$ctxtool")"
  mv "$ctxtool.tmp" "$ctxtool"
fi
ctx=$tmp/context
mkdir -p "$ctx"
# The files a checkout holds (tracked, or new and not git-ignored), as `docker build .` sees them.
git ls-files --cached --others --exclude-standard | while read -r f; do [ -e "$f" ] && echo "$f"; done |
  "$ctxtool" .dockerignore >"$tmp/context.txt"
tar -cf - -T "$tmp/context.txt" | tar -xf - -C "$ctx"
echo "$(wc -l <"$tmp/context.txt") files, $(du -sh "$ctx" | cut -f1)"
for f in go.mod go.sum cmd/augment-connector/main.go; do
  [ -f "$ctx/$f" ] || fail ".dockerignore leaves $f out of the build context"
done
for f in .git helm scripts Dockerfile; do
  [ ! -e "$ctx/$f" ] || fail ".dockerignore lets $f into the build context"
done
grep -q '_test\.go$' "$tmp/context.txt" && fail ".dockerignore lets test files into the build context"

# --- the build, as the Dockerfile runs it --------------------------------------------------
step "go build as in the Dockerfile"
# The builder stage's RUN commands (continuation lines joined), with /out under $tmp.
build_cmds=$(awk '/^FROM /{stage++} stage==1' Dockerfile |
  sed -e ':a' -e '/\\$/N; s/\\\n[[:space:]]*/ /; ta' | sed -n 's/^RUN //p' | sed "s#/out/#$tmp/out/#g")
grep -q 'go mod download' <<<"$build_cmds" || fail "no 'go mod download' in the build stage"
grep -q 'CGO_ENABLED=0 go build -trimpath' <<<"$build_cmds" || fail "the build is not CGO_ENABLED=0 go build -trimpath"
echo "$build_cmds"
VERSION=0.0.0-check.$(date +%s)
COMMIT=$(git rev-parse HEAD 2>/dev/null || echo 0000000)
DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)
export VERSION COMMIT DATE
# As in the golang image: the Go toolchain's defaults, no vcs stamping (.git is not in the context).
(cd "$ctx" && env -u GOFLAGS bash -euo pipefail -c "$build_cmds")
bin=$tmp/out/augment-connector
[ -x "$bin" ] || fail "the build made no $bin"

step "static binary with the injected version"
if command -v file >/dev/null; then
  desc=$(file -b "$bin")
  echo "file: $desc"
  case $desc in *"statically linked"*) ;; *) fail "not statically linked: $desc" ;; esac
fi
if command -v ldd >/dev/null; then
  out=$(ldd "$bin" 2>&1 || true)
  echo "ldd: $out"
  case $out in *"not a dynamic executable"* | *"statically linked"*) ;; *) fail "ldd finds dynamic dependencies: $out" ;; esac
fi
command -v file >/dev/null || command -v ldd >/dev/null || fail "neither file nor ldd is installed"
got=$("$bin" version)
want="augment-connector $VERSION $COMMIT $DATE"
echo "version: $got"
[ "$got" = "$want" ] || fail "version printed \"$got\", want \"$want\""
echo "$(du -h "$bin" | cut -f1) binary"

step "Dockerfile checks passed"
