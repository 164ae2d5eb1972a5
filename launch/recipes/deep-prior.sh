# deep-prior: Deep Prior's toy regression (seed 000; Lacoste et al. 2018) with the three task
# encoders — standard (q = N(μ, diag σ²)), planar and IAF flows (K = 4) — × 3 seeds, 1 BLAS
# thread each. Data: 2,000 training tasks (collection seed 0) and 500 test tasks (seed 1) of
# 20 points, y = f(x) + N(0, 0.1²); every run trains on the same files; the seed changes the
# initialisation and the noise. Evaluation: each task's first 10 points are its context, the
# other 10 are predicted by the predictive mean over 20 samples of z ~ q(z|context); MSE on those
# held-out points (train: the first 500 training tasks; test: all 500 test tasks), and beside it
# the MSE of predicting 0 on the same test points. Seed 000's test MSE: standard 2.689, planar
# 2.484, IAF 2.315 (train 4.851, 4.093, 4.165).
#
# Two task distributions: the seed's (ω ~ U(5, 7)) and, with --omega, another range (default
# also runs 0.5:1, where the functions are slow enough for the MLPs to fit in this budget).
# Writes .build/reproduce/deep-prior/{results.jsonl,summary.md} and, in every run's report.html,
# the figure "tasks with increasing samples". Networks: ReLU, 128 hidden units, Adam 10⁻³,
# batch 20 tasks. ~50 s per run on one core (18 runs: ~15 min).
#
#   launch/reproduce deep-prior [--seeds "0 1 2"] [--epochs 100] [--omegas "5:7 0.5:1"]
# Sourced by launch/reproduce (common.sh loaded, cwd = the repository): "$@" are the recipe's flags.
seeds="0 1 2"; epochs=100; omegas="5:7 0.5:1"
while [ $# -gt 0 ]; do
  case "$1" in
    --seeds) seeds="$2"; shift 2 ;;
    --epochs) epochs="$2"; shift 2 ;;
    --omegas) omegas="$2"; shift 2 ;;
    *) echo "launch/reproduce deep-prior: unknown flag $1" >&2; exit 2 ;;
  esac
done
elbo_install_packages
elbo=$(elbo_build_release)
elbo_mpi_env

out=".build/reproduce/deep-prior"
mkdir -p "$out"
results="$out/results.jsonl"
: > "$results"

for omega in $omegas; do
  tag="omega${omega/:/-}"
  "$elbo" data make harmonic --seed 0 --set omega="$omega" --out "$out/train-$tag.h5" > /dev/null
  "$elbo" data make harmonic --seed 1 --datasets 500 --set omega="$omega" \
    --out "$out/test-$tag.h5" > /dev/null
  for encoder in standard planar iaf; do
    for s in $seeds; do
      run="$out/$tag-$encoder-seed$s"
      rm -rf "$run"
      start=$(date +%s.%N)
      "$elbo" train deep-prior --encoder "$encoder" --seed "$s" --threads 1 --epochs "$epochs" \
        --hidden 128 --activation relu --lr 1e-3 --eval-every "$epochs" \
        --collection "$out/train-$tag.h5" --test-collection "$out/test-$tag.h5" \
        --out "$run" > "$run.log" 2>&1 || { echo "deep-prior: $run failed, see $run.log" >&2; exit 1; }
      seconds=$(python3 -c "import time; print(round(time.time() - $start, 1))")
      "$elbo" eval "$run" --json | python3 -c "import json,sys; r=json.load(sys.stdin); \
r.update(encoder='$encoder', seed=$s, omega='$omega', train_seconds=$seconds); print(json.dumps(r))" \
        | tee -a "$results"
    done
  done
done

python3 - "$results" "$out/summary.md" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
seed000 = {"standard": (2.689, 4.851), "planar": (2.484, 4.093), "iaf": (2.315, 4.165)}
def ms(v):
    return f"{statistics.mean(v):.3f} ± {statistics.stdev(v):.3f}" if len(v) > 1 else f"{v[0]:.3f}"
lines = []
for omega in dict.fromkeys(r["omega"] for r in rows):
    lines += [f"### ω ~ U({omega.replace(':', ', ')})", "",
              "| encoder | train MSE | test MSE | test log-lik. (nats/point) | test MSE of 0 | seed 000 test / train |",
              "|---|---|---|---|---|---|"]
    for enc in ("standard", "planar", "iaf"):
        rs = [r for r in rows if r["omega"] == omega and r["encoder"] == enc]
        if not rs: continue
        lines.append(f"| {enc} | {ms([r['train_mse'] for r in rs])} | {ms([r['test_mse'] for r in rs])} | "
                     f"{ms([r['test_log_likelihood'] for r in rs])} | {ms([r['test_mse_zero_predictor'] for r in rs])} | "
                     f"{seed000[enc][0]} / {seed000[enc][1]} |")
    lines.append("")
open(sys.argv[2], "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
print(json.dumps({"kind": "deep-prior", "runs": len(rows),
                  "summary": sys.argv[2]}))
PY
