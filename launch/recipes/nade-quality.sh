# nade-quality: on each data set (static binarisation, Adam 1e-3, batch 100, the same --epochs
# for every data set, 1 BLAS thread) trains NADE H = 500 and MADE (one hidden layer of 500,
# 32 training masks, test log-likelihood averaged over 8 masks), evaluates each with
# `elbo eval --json` (exact test NLL; MADE's over 8 masks) and prints one JSON line per run and
# one summary line per data set: our test NLL beside PyTorch's (--with-pytorch runs
# launch/reference/pytorch_nade.py and pytorch_made.py with the same settings) and the papers'
# (NADE 88.86, Larochelle & Murray 2011; MADE 1 layer 32 masks 88.04, Germain et al. 2015) —
# which are on the full binarised MNIST (60k/10k), not on these data sets.
#
#   launch/reproduce nade-quality [--epochs 10] [--seed 0] [--data "mnist-5k fashion-mnist"]
#                                 [--models "nade made"] [--with-pytorch]
# Sourced by launch/reproduce (common.sh loaded, cwd = the repository): "$@" are the recipe's flags.
epochs=10; seed=0; datasets="mnist-5k fashion-mnist"; models="nade made"; pytorch=0
while [ $# -gt 0 ]; do
  case "$1" in
    --epochs) epochs="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    --data) datasets="$2"; shift 2 ;;
    --models) models="$2"; shift 2 ;;
    --with-pytorch) pytorch=1; shift ;;
    *) echo "launch/reproduce nade-quality: unknown flag $1" >&2; exit 2 ;;
  esac
done
elbo_install_packages
elbo=$(elbo_build_release)
elbo_mpi_env
if [ "$pytorch" -eq 1 ]; then torch_python=$(elbo_torch_python); fi

out=".build/reproduce/nade-quality"
mkdir -p "$out"
results="$out/results.jsonl"
: > "$results"
for data in $datasets; do
  for model in $models; do
    run="$out/elbo-$model-$data-seed$seed"
    rm -rf "$run"
    case "$model" in
      nade) flags=(--hidden 500) ;;
      made) flags=(--hidden 500 --masks 32 --test-masks 8) ;;
      *) echo "launch/reproduce: unknown model $model (nade or made)" >&2; exit 2 ;;
    esac
    start=$(date +%s.%N)
    "$elbo" train "$model" --data "$data" "${flags[@]}" --binarize static --epochs "$epochs" \
      --batch-size 100 --lr 1e-3 --seed "$seed" --threads 1 --out "$run" > "$run.log"
    seconds=$(python3 -c "import time; print(round(time.time() - $start, 1))")
    "$elbo" eval "$run" --json --threads 1 | grep '^{' \
      | python3 -c "import json,sys; r=json.load(sys.stdin); r.update(impl='elbo', data='$data', epochs=$epochs, seed=$seed, train_seconds=$seconds); print(json.dumps(r))" \
      | tee -a "$results"
    if [ "$pytorch" -eq 1 ]; then
      "$torch_python" "launch/reference/pytorch_$model.py" train --data "$data" \
        --epochs "$epochs" --lr 1e-3 --batch 100 --seed "$seed" --threads 1 | grep '^{' \
        | python3 -c "import json,sys; r=json.load(sys.stdin); r.update(impl='pytorch', model='$model', data='$data'); print(json.dumps(r))" \
        | tee -a "$results"
    fi
  done
done
python3 - "$results" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
paper = {"nade": 88.86, "made": 88.04}
for data in dict.fromkeys(r["data"] for r in rows):
  summary = {"kind": "nade-quality", "data": data,
             "paper_test_nll": paper,
             "paper_note": "full binarised MNIST (60k/10k; MADE: 1 hidden layer, 32 masks); "
                           "our data differ, so compare with PyTorch, not the paper"}
  for r in rows:
      if r["data"] != data: continue
      side = summary.setdefault(r["model"], {})
      nll = r.get("test_nll", -r["test_log_likelihood"] if "test_log_likelihood" in r else None)
      side[r["impl"] + "_test_nll"] = round(nll, 3) if nll is not None else None
      if r["impl"] == "elbo":
          side["elbo_train_seconds"] = r.get("train_seconds")
          side["epochs"] = r.get("epochs")
  for m in ("nade", "made"):
      s = summary.get(m, {})
      if s.get("elbo_test_nll") is not None and s.get("pytorch_test_nll") is not None:
          s["elbo_minus_pytorch"] = round(s["elbo_test_nll"] - s["pytorch_test_nll"], 3)
  print(json.dumps(summary))
PY
