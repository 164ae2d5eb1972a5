# evidence: seed 001's estimators of log p(x). On the linear-Gaussian model (exact evidence):
# every estimator at its default budget ladder. On a trained VAE (784-200-200-50 ReLU,
# Fashion-MNIST static, 10 epochs, seed 0): importance sampling from q(z|x) (K up to --k) and
# Laplace at the posterior mode on the first --images test images, beside `elbo eval --k` on the
# whole test set. Writes .build/reproduce/evidence/{linear-gaussian,vae-evidence}/report.html.
# Takes ~5 min on 2 cores.
#
#   launch/reproduce evidence [--images 1000] [--k 1000]
# Sourced by launch/reproduce (common.sh loaded, cwd = the repository): "$@" are the recipe's flags.
images=1000; k=1000
while [ $# -gt 0 ]; do
  case "$1" in
    --images) images="$2"; shift 2 ;;
    --k) k="$2"; shift 2 ;;
    *) echo "launch/reproduce evidence: unknown flag $1" >&2; exit 2 ;;
  esac
done
elbo_install_packages
elbo=$(elbo_build_release)
elbo_mpi_env

out=".build/reproduce/evidence"
mkdir -p "$out"
"$elbo" evidence --out "$out/linear-gaussian" | tee "$out/linear-gaussian.txt"
run="$out/vae"
rm -rf "$run"
"$elbo" train vae --seed 0 --threads 1 --out "$run" > "$run.log"
"$elbo" eval "$run" --k "$k" --threads 1 | tee "$out/vae-eval.txt"
"$elbo" evidence "$run" --images "$images" --k "$k" --out "$out/vae-evidence" \
  | tee "$out/vae-evidence.txt"
