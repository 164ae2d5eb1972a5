# neural-statistician: Edwards & Storkey (2017) — seed 000's figures for the Neural Statistician.
#  1. Synthetic 1-D sets (§5.1): 10,000 training sets × 200 points of four families, c ∈ R³,
#     z ∈ R³² × 3 layers, 3 × 128 hidden (ReLU), batch 16 sets, Adam 10⁻³, α-weighting with
#     α = 1 halved every epoch, gradients clamped to [−0.5, 0.5], --epochs (default 50, the public
#     code's). Scored by the silhouette of E[c|D] by family on 1,000 held-out sets, untrained and
#     trained (seed 000: 0.11 → 0.57; bar ≥ 0.57), with the scatter plots in the run's plots/.
#  2. Few-shot (§5.3 on our data): sets of 5 same-class Fashion-MNIST images of classes 0–5
#     (binarised, Bernoulli decoder), MLP networks 784 → 256 × 2, c ∈ R³², z ∈ R¹⁶ × 1 layer,
#     --fewshot-epochs; M-way K-shot by KL(q(c|query) ‖ q(c|support)) on Fashion-MNIST 6–9
#     (4-way) and MNIST-5k (5- and 10-way), 1 and 5 shots, 1,000 episodes each, beside the pixel
#     nearest neighbour (bar: the model beats it on every row).
#  3. Spatial MNIST (§5.2): `elbo data make spatial-mnist` (50 points per digit), trained
#     --spatial-epochs; pictures conditional-samples.svg and summaries.svg in the run's plots/.
# Prints one JSON line per part and a table; everything under .build/reproduce/neural-statistician.
# --short runs a smoke version (400 sets, 2 epochs; few-shot 1 epoch, 100 episodes; spatial
# 1 epoch) to prove the pipeline in a few minutes.
#
#   launch/reproduce neural-statistician [--epochs 50] [--fewshot-epochs 20] [--spatial-epochs 50]
#                                        [--seed 0] [--threads 1] [--short] [--parts "synthetic fewshot spatial"]
epochs=50; fs_epochs=20; sp_epochs=50; seed=0; threads=1; short=0; parts="synthetic fewshot spatial"
while [ $# -gt 0 ]; do
  case "$1" in
    --epochs) epochs="$2"; shift 2 ;;
    --fewshot-epochs) fs_epochs="$2"; shift 2 ;;
    --spatial-epochs) sp_epochs="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --parts) parts="$2"; shift 2 ;;
    --short) short=1; shift ;;
    *) echo "launch/reproduce neural-statistician: unknown flag $1" >&2; exit 2 ;;
  esac
done
elbo_install_packages
elbo=$(elbo_build_release)
elbo_mpi_env
out=".build/reproduce/neural-statistician"
mkdir -p "$out"
results="$out/results.jsonl"
: > "$results"
sizes=""; episodes=1000; sp_sets=""
if [ $short = 1 ]; then
  epochs=2; fs_epochs=1; sp_epochs=1; sizes="--datasets 400 --test-datasets 200"
  episodes=100; sp_sets="--datasets 400"
fi

run_part() {  # name, then the train flags
  local name="$1"; shift
  local run="$out/$name-seed$seed"
  rm -rf "$run"
  local start; start=$(date +%s.%N)
  "$elbo" train neural-statistician "$@" --seed "$seed" --threads "$threads" --out "$run" \
    > "$run.log" 2>&1 || { echo "neural-statistician: $name failed (see $run.log)" >&2; return; }
  local seconds; seconds=$(python3 -c "import time; print(round(time.time() - $start, 1))")
  "$elbo" eval "$run" --json --threads "$threads" | grep '^{' \
    | python3 -c "import json,sys; r=json.load(sys.stdin); r.update(part='$name', seed=$seed, train_seconds=$seconds, run='$run'); print(json.dumps(r))" \
    | tee -a "$results"
}

for part in $parts; do
  case "$part" in
    synthetic) run_part synthetic --epochs "$epochs" $sizes ;;
    fewshot) run_part fewshot --data fashion-sets --points 5 --hidden 256 --hidden-layers 2 \
               --context 32 --latent 16 --stochastic-layers 1 --epochs "$fs_epochs" \
               --few-shot-episodes "$episodes" ;;
    spatial)
      "$elbo" data make spatial-mnist --out "$out/spatial-train.h5" --seed "$seed" $sp_sets > /dev/null
      "$elbo" data make spatial-mnist --out "$out/spatial-test.h5" --seed "$seed" --set split=test \
        > /dev/null
      run_part spatial --data "$out/spatial-train.h5" --test-data "$out/spatial-test.h5" \
        --points 50 --context 64 --latent 2 --stochastic-layers 3 --epochs "$sp_epochs" ;;
    *) echo "neural-statistician: unknown part $part" >&2 ;;
  esac
done

python3 - "$results" <<'PY'
import json, sys
rows = {r["part"]: r for r in map(json.loads, open(sys.argv[1]))}
if "synthetic" in rows:
    r = rows["synthetic"]
    print(f"synthetic: silhouette of E[c|D] by family {r['silhouette']:.3f} (untrained "
          f"{r['silhouette_untrained']:.3f}); seed 000: 0.57 (0.11); bar ≥ 0.57: "
          f"{'met' if r['silhouette'] >= 0.57 else 'NOT met'}; test ELBO {r['test_elbo']:.1f} "
          f"per set; {r['train_seconds']} s")
if "fewshot" in rows:
    r = rows["fewshot"]
    print("few-shot           | neural statistician | pixel nearest neighbour")
    beats = True
    for key, name in [("fashion_4way_1shot", "fashion 6–9 4-way 1-shot"),
                      ("fashion_4way_5shot", "fashion 6–9 4-way 5-shot"),
                      ("mnist_5way_1shot", "mnist-5k 5-way 1-shot"),
                      ("mnist_5way_5shot", "mnist-5k 5-way 5-shot"),
                      ("mnist_10way_1shot", "mnist-5k 10-way 1-shot"),
                      ("mnist_10way_5shot", "mnist-5k 10-way 5-shot")]:
        m, b = r[f"fewshot_{key}"], r[f"fewshot_{key}_pixel_nn"]
        beats = beats and m > b
        print(f"{name:24s} | {m:.3f} ± {r[f'fewshot_{key}_se']:.3f} | "
              f"{b:.3f} ± {r[f'fewshot_{key}_pixel_nn_se']:.3f}")
    print(f"few-shot bar (beats the baseline on every row): {'met' if beats else 'NOT met'}; "
          f"{r['train_seconds']} s")
if "spatial" in rows:
    r = rows["spatial"]
    print(f"spatial mnist: silhouette by digit {r['silhouette']:.3f}, test ELBO {r['test_elbo']:.1f}; "
          f"pictures in {r['run']}/plots; {r['train_seconds']} s")
PY
