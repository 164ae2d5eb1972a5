# two-modes: the mean-field Gaussian, the semi-implicit q fitted with SIVI's surrogate, and the
# same q fitted with UIVI's HMC score, each fitted by KL(q ‖ p) to an equal mixture of
# N(±(2, 2), I) (`elbo train flow-2d --target two-modes --posterior …`). Budget per run, the same
# for every row: --steps Adam steps (lr 10⁻², batch 100 noise rows, 1 BLAS thread); SIVI and the
# logged/evaluated log q of both semi-implicit fits use K = 50 mixing draws (so their KL is an
# upper bound); UIVI: 5 burn-in + 5 samples of 5 leapfrog steps of 0.1 per step. Each run is
# scored by `elbo eval --json`: the KL on 100,000 fixed samples and the share of q's samples
# within distance 2 of each mode (p: 0.43 each). Prints a table and writes
# .build/reproduce/two-modes/index.html with the three density pictures side by side.
# About 4 minutes on 2 cores with the default 2,000 steps.
#
#   launch/reproduce two-modes [--steps 2000] [--seed 0] [--jobs 2]
# Sourced by launch/reproduce (common.sh loaded, cwd = the repository): "$@" are the recipe's flags.
steps=2000; seed=0; jobs=2
while [ $# -gt 0 ]; do
  case "$1" in
    --steps) steps="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    *) echo "launch/reproduce two-modes: unknown flag $1" >&2; exit 2 ;;
  esac
done
elbo_install_packages
elbo=$(elbo_build_release)
elbo_mpi_env

out=".build/reproduce/two-modes"
mkdir -p "$out"
results="$out/results.jsonl"
: > "$results"
one_run() {  # posterior
  local run="$out/$1-seed$seed"
  rm -rf "$run"
  "$elbo" train flow-2d --target two-modes --posterior "$1" --max-steps "$steps" \
    --batch-size 100 --lr 1e-2 --seed "$seed" --threads 1 --out "$run" > "$run.log" 2>&1 \
    || { echo "two-modes: $run failed (see $run.log)" >&2; return; }
  "$elbo" eval "$run" --json --threads 1 | grep '^{' \
    | python3 -c "import json,sys; r=json.load(sys.stdin); r.update(posterior='$1', steps=$steps, seed=$seed, run='$run'); print(json.dumps(r))" \
    >> "$results"
}
for posterior in gaussian semi-implicit uivi; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do sleep 0.2; done
  one_run "$posterior" &
done
wait
cat "$results"
python3 - "$results" "$out/index.html" <<'PY'
import json, os, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print("| posterior | KL(q ‖ p) | q's share near −(2, 2) | near (2, 2) |")
print("|---|---|---|---|")
html = ["<!doctype html><meta charset='utf-8'><title>two-modes</title>",
        "<h1>two-modes: target (left) and q (right)</h1>"]
for r in rows:
    print(f"| {r['posterior']} | {r['kl']:.3f} ± {r['kl_std_error']:.3f} | "
          f"{r['mass_near_lower_mode']:.3f} | {r['mass_near_upper_mode']:.3f} |")
    html.append(f"<h2>{r['posterior']}: KL {r['kl']:.3f}, shares {r['mass_near_lower_mode']:.2f}"
                f" / {r['mass_near_upper_mode']:.2f}</h2><img src='"
                f"{os.path.relpath(r['run'], os.path.dirname(sys.argv[2]))}/images/density.png'>")
open(sys.argv[2], "w").write("\n".join(html))
print(f"pictures side by side: {sys.argv[2]}")
PY
