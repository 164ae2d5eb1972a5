# flow-vae: the flow-posterior VAE's posterior-quality table. The VAE of the README's VAE section
# (784-200-200-50 ReLU, Bernoulli decoder, batch 100, Adam 1e-3, static binarisation) with
# q₀ = N(μ, σ²) pushed through K amortised flows: planar K ∈ {0, 2, 8, 32}, IAF K ∈ {2, 4, 8}
# (MADE 320 ELU hidden units, encoder context h of 320), Sylvester H-SNF and T-SNF at K = 4;
# on MNIST-5k and Fashion-MNIST, 2 seeds; every row of a dataset gets the same budget (epochs)
# and the same free-energy warm-up over the first half of its steps (--kl-warmup, β_t = min(1,
# 0.01 + t/T), as Rezende & Mohamed; without it the amortised flows trail K = 0 at this budget:
# planar K = 8 reached test ELBO −122.2 against K = 0's −112.7 on MNIST-5k, with it −108.5
# against −111.6), then the importance-sampled test log-likelihood with k samples (default 1000) on the whole
# test set. Two runs at a time, 1 BLAS thread each (2 cores). One JSON line per run, then a
# summary table (mean ± spread over seeds per dataset and row).
#
# Budget (default): MNIST-5k 50 epochs (2000 steps, warm-up T = 1000), Fashion-MNIST 2 epochs
# (1200 steps, T = 600) — modest on purpose: the trend with K, not the papers' numbers (Rezende &
# Mohamed train for 500k steps). Measured on a shared 2-core machine (2026-12-01): MNIST-5k,
# one seed, all nine rows: 11 min (planar rows 3 min); so ≈ 22 min for its two seeds. The
# evaluation dominates Fashion-MNIST (10,000 test images × k samples through the flow and the
# decoder; IAF and Sylvester cost the most): estimated ≈ 30 min per seed, ≈ 85 min for the whole
# recipe. `--data mnist-5k` runs the quick half; `--k 200` cuts Fashion-MNIST's evaluation ~5×.
#
#   launch/reproduce flow-vae [--data "mnist-5k fashion-mnist"] [--seeds "0 1"] [--k 1000] [--rows "planar0 planar2 …"] [--epochs-mnist 50] [--epochs-fashion 2]
# Sourced by launch/reproduce (common.sh loaded, cwd = the repository): "$@" are the recipe's flags.
datasets="mnist-5k fashion-mnist"; seeds="0 1"; k=1000; epochs_mnist=50; epochs_fashion=2
rows="planar0 planar2 planar8 planar32 iaf2 iaf4 iaf8 sylvester-h4 sylvester-t4"
while [ $# -gt 0 ]; do
  case "$1" in
    --data) datasets="$2"; shift 2 ;;
    --seeds) seeds="$2"; shift 2 ;;
    --k) k="$2"; shift 2 ;;
    --rows) rows="$2"; shift 2 ;;
    --epochs-mnist) epochs_mnist="$2"; shift 2 ;;
    --epochs-fashion) epochs_fashion="$2"; shift 2 ;;
    *) echo "launch/reproduce flow-vae: unknown flag $1" >&2; exit 2 ;;
  esac
done
elbo_install_packages
elbo=$(elbo_build_release)
elbo_mpi_env

out=".build/reproduce/flow-vae"
mkdir -p "$out"
results="$out/results.jsonl"
: > "$results"

# One run: train, evaluate, append one JSON line (with its row, dataset, seed, train seconds).
one() {  # data row seed
  local data="$1" row="$2" seed="$3"
  local kind="${row%%[0-9]*}" length="${row##*[!0-9]}"
  local epochs=$([ "$data" = fashion-mnist ] && echo "$epochs_fashion" || echo "$epochs_mnist")
  local per_epoch=$([ "$data" = fashion-mnist ] && echo 600 || echo 40)   # steps at batch 100
  local warmup=$((epochs * per_epoch / 2))
  local run="$out/$data-$row-seed$seed"
  rm -rf "$run"
  local t0=$SECONDS
  "$elbo" train vae --data "$data" --seed "$seed" --epochs "$epochs" --threads 1 \
    --flow "$kind" --flow-length "$length" --kl-warmup "$warmup" --out "$run" > "$run.log" 2>&1 \
    || { echo "{\"row\": \"$row\", \"data\": \"$data\", \"seed\": $seed, \"error\": \"training failed: $run.log\"}"; return; }
  local train_seconds=$((SECONDS - t0))
  "$elbo" eval "$run" --k "$k" --threads 1 --json 2>>"$run.log" | grep '^{' \
    | python3 -c "import json,sys; r=json.load(sys.stdin); r.update(impl='elbo', row='$row', flow='$kind', flow_length=$length, data='$data', seed=$seed, epochs=$epochs, kl_warmup=$warmup, train_seconds=$train_seconds); print(json.dumps(r))"
}

# Two at a time (each 1 thread): the jobs of one dataset, in order.
for data in $datasets; do
  jobs_list=()
  for row in $rows; do for s in $seeds; do jobs_list+=("$row $s"); done; done
  i=0
  while [ $i -lt ${#jobs_list[@]} ]; do
    set -- ${jobs_list[$i]}; one "$data" "$1" "$2" > "$out/job-a.json" &
    pa=$!
    pb=""
    if [ $((i + 1)) -lt ${#jobs_list[@]} ]; then
      set -- ${jobs_list[$((i + 1))]}; one "$data" "$1" "$2" > "$out/job-b.json" &
      pb=$!
    fi
    wait $pa; cat "$out/job-a.json" | tee -a "$results"
    if [ -n "$pb" ]; then wait $pb; cat "$out/job-b.json" | tee -a "$results"; fi
    i=$((i + 2))
  done
done
rm -f "$out/job-a.json" "$out/job-b.json"

python3 - "$results" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
ok = [r for r in rows if "test_log_likelihood" in r]
table = {}
for r in ok:
    table.setdefault((r["data"], r["row"]), []).append(r)
print("| data | flow | K | seeds | test log-likelihood (k = %s) | spread | test ELBO | train s |"
      % (ok[0]["k"] if ok else "?"))
print("|---|---|---|---|---|---|---|---|")
summary = {"kind": "flow-vae", "rows": []}
for (data, row), rs in table.items():
    ll = [r["test_log_likelihood"] for r in rs]
    elbo = [r["test_elbo"] for r in rs]
    mean = statistics.mean(ll)
    spread = (max(ll) - min(ll)) / 2
    print(f"| {data} | {rs[0]['flow']} | {rs[0]['flow_length']} | {len(rs)} | {mean:.2f} | "
          f"±{spread:.2f} | {statistics.mean(elbo):.2f} | "
          f"{statistics.mean(r['train_seconds'] for r in rs):.0f} |")
    summary["rows"].append({"data": data, "row": row, "seeds": len(rs),
                            "test_log_likelihood_mean": round(mean, 3),
                            "test_log_likelihood_per_seed": ll,
                            "test_elbo_mean": round(statistics.mean(elbo), 3)})
failed = [r for r in rows if "error" in r]
if failed:
    summary["failed"] = failed
print(json.dumps(summary))
PY
