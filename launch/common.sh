# Shared by the launch/ scripts: install what Elbo needs (Debian packages), build, and the
# mpirun flags that make runs work as root, in containers and oversubscribed.
set -euo pipefail
ELBO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ELBO_ROOT"

ELBO_APT_PACKAGES=(pkg-config zlib1g-dev libopenmpi-dev openmpi-bin libopenblas-dev
  libhdf5-openmpi-dev hdf5-tools dataset-fashion-mnist)

# Installs the Debian packages that are missing (needs root or sudo; skipped when all present).
elbo_install_packages() {
  local missing=()
  for p in "${ELBO_APT_PACKAGES[@]}" "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "launch: installing ${missing[*]}" >&2
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
}

# Builds the elbo executable (release) and prints its path. ELBO_BIN=PATH uses that build
# instead (launch/test hands its debug build to the scripts it runs).
elbo_build_release() {
  if [ -n "${ELBO_BIN:-}" ]; then echo "$ELBO_BIN"; return 0; fi
  swift build -c release --product elbo >&2
  echo "$ELBO_ROOT/.build/release/elbo"
}

# Environment for OpenMPI in containers / as root / with parallel HDF5 (DESIGN.md, Practicalities).
elbo_mpi_env() {
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  export OMPI_MCA_btl_vader_single_copy_mechanism=none
  export OMPI_MCA_io=romio321
  export HDF5_USE_FILE_LOCKING=FALSE
  export OMPI_MCA_rmaps_base_oversubscribe=1
}

# mpirun with the flags Elbo needs: oversubscription allowed, threads unbound.
elbo_mpirun() {
  elbo_mpi_env
  mpirun --oversubscribe --bind-to none "$@"
}

# CPU PyTorch in a throw-away venv (.build/torch-venv) for the side-by-side references in
# launch/reference/ (not a dependency of Elbo). Prints the venv's python.
elbo_torch_python() {
  local venv=".build/torch-venv"
  if ! "$venv/bin/python" -c "import torch, numpy" 2>/dev/null; then
    elbo_install_packages python3-venv python3-pip >&2
    python3 -m venv "$venv" >&2
    # The CPU build; the plain `torch` wheel drags in gigabytes of CUDA libraries.
    "$venv/bin/pip" install -q "torch==2.13.0+cpu" numpy >&2 \
      || "$venv/bin/pip" install -q --index-url https://download.pytorch.org/whl/cpu torch numpy >&2
  fi
  echo "$venv/bin/python"
}

# The `tensorboard` PyPI package in a throw-away venv (.build/tb-venv), whose event reader the
# tests use to read Elbo's event files back (not a dependency of Elbo). Prints the venv's python.
elbo_tensorboard_python() {
  local venv=".build/tb-venv"
  if ! "$venv/bin/python" -c "import tensorboard" 2>/dev/null; then
    elbo_install_packages python3-venv python3-pip >&2
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install -q tensorboard >&2
  fi
  echo "$ELBO_ROOT/$venv/bin/python"
}
