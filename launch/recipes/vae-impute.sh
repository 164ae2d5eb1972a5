# vae-impute: the compression rate and missing-data imputation (Rezende et al. 2014, §6) of the
# default VAE (784-200-200-50 ReLU, Fashion-MNIST static, batch 100, Adam 1e-3, 10 epochs,
# 1 BLAS thread — what `launch/train vae` trains). Prints the `elbo eval` line (with
# compression_bits_per_dim) and, per mask, the `elbo impute --json` line (log p(x_missing |
# x_observed) at T = 1, 2, 5, 10, 20, 50 beside the marginal baseline), then a summary.
# Pictures go to the run's images/. Takes ~4 min to train and ~2 min per mask on 2 cores.
#
#   launch/reproduce vae-impute [--seed 0] [--n 200] [--chains 128] [--iterations 50] [--train-flags "--flow planar --flow-length 4"]
# Sourced by launch/reproduce (common.sh loaded, cwd = the repository): "$@" are the recipe's flags.
seed=0; n=200; chains=128; iterations=50; train_flags=""
while [ $# -gt 0 ]; do
  case "$1" in
    --seed) seed="$2"; shift 2 ;;
    --n) n="$2"; shift 2 ;;
    --chains) chains="$2"; shift 2 ;;
    --iterations) iterations="$2"; shift 2 ;;
    --train-flags) train_flags="$2"; shift 2 ;;
    *) echo "launch/reproduce vae-impute: unknown flag $1" >&2; exit 2 ;;
  esac
done
elbo_install_packages
elbo=$(elbo_build_release)
elbo_mpi_env

out=".build/reproduce/vae-impute"
mkdir -p "$out"
results="$out/results.jsonl"
: > "$results"
run="$out/seed$seed"
rm -rf "$run"
# shellcheck disable=SC2086  # train_flags is a list of flags
"$elbo" train vae --seed "$seed" --threads 1 --out "$run" $train_flags > "$run.log"
"$elbo" eval "$run" --k 1000 --json --threads 1 | tee -a "$results"
for mask in left-half random-50 top-half; do
  "$elbo" impute "$run" --mask "$mask" -n "$n" --chains "$chains" --iterations "$iterations" \
    --threads 1 --json | tee -a "$results"
done

python3 - "$results" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
ev = next(r for r in rows if r["kind"] == "eval")
print("compression: %.4f bits/dim (KL %.2f nats over d = 784); test ELBO %.2f, log-likelihood %.2f"
      % (ev["compression_bits_per_dim"], ev["compression_kl_nats"], ev["test_elbo"],
         ev["test_log_likelihood"]))
for r in rows:
    if r["kind"] != "impute":
        continue
    cells = "  ".join("T=%d %.2f" % (t, ll) for t, ll in zip(r["iterations"], r["log_likelihood"]))
    print("%-10s %s  baseline %.2f  (nats per image, %.0f missing pixels)"
          % (r["mask"], cells, r["baseline_log_likelihood"], r["missing_pixels_per_image"]))
PY
