# vae-quality: trains the VAE of issue 2 (784-200-200-50 ReLU, Fashion-MNIST static, batch 100,
# Adam 1e-3, 10 epochs, 1 BLAS thread) once per seed, evaluates the test log-likelihood by
# importance sampling (k = 1000 on all 10k test images), and prints one JSON line per run and a
# summary line. With --with-pytorch it also installs CPU PyTorch into .build/torch-venv and runs
# launch/reference/pytorch_vae.py for the same seeds in the same session, so both sides are
# measured on the same machine on the same day. Takes ~3 min per seed and side on 2 cores.
#
#   launch/reproduce vae-quality [--seeds "0 1 2 3 4"] [--k 1000] [--with-pytorch]
# Sourced by launch/reproduce (common.sh loaded, cwd = the repository): "$@" are the recipe's flags.
seeds="0 1 2 3 4"; k=1000; pytorch=0
while [ $# -gt 0 ]; do
  case "$1" in
    --seeds) seeds="$2"; shift 2 ;;
    --k) k="$2"; shift 2 ;;
    --with-pytorch) pytorch=1; shift ;;
    *) echo "launch/reproduce vae-quality: unknown flag $1" >&2; exit 2 ;;
  esac
done
elbo_install_packages
elbo=$(elbo_build_release)
elbo_mpi_env
if [ "$pytorch" -eq 1 ]; then torch_python=$(elbo_torch_python); fi

out=".build/reproduce/vae-quality"
mkdir -p "$out"
results="$out/results.jsonl"
: > "$results"

for s in $seeds; do
  run="$out/elbo-seed$s"
  rm -rf "$run"
  "$elbo" train vae --seed "$s" --threads 1 --out "$run" > "$run.log"
  "$elbo" eval "$run" --k "$k" --json \
    | python3 -c "import json,sys; r=json.load(sys.stdin); r.update(impl='elbo', seed=$s); print(json.dumps(r))" \
    | tee -a "$results"
  if [ "$pytorch" -eq 1 ]; then
    "$torch_python" launch/reference/pytorch_vae.py "$s" "$k" | tee -a "$results"
  fi
done

python3 - "$results" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
summary = {"kind": "vae-quality", "anchor_pytorch_seed0": -125.96}
for impl in ("elbo", "pytorch"):
    ll = [r["test_log_likelihood"] for r in rows if r["impl"] == impl]
    if ll:
        summary[impl] = {"seeds": len(ll), "mean": round(statistics.mean(ll), 3),
                         "sd": round(statistics.stdev(ll), 3) if len(ll) > 1 else None,
                         "per_seed": ll}
if "elbo" in summary and "pytorch" in summary:
    summary["elbo_minus_pytorch_mean"] = round(summary["elbo"]["mean"] - summary["pytorch"]["mean"], 3)
print(json.dumps(summary))
PY
