"""PyTorch reference for Elbo's MADE (Germain et al. 2015; ../shared/ANCHORS.md, "MADE 1 hidden layer").

Model: D = 784 binary pixels, one hidden layer of H = 500 ReLU units, Bernoulli outputs:
    h = relu((W1 * M1) x + b1),   logits = (W2 * M2) h + b2,   W1 [H, D], W2 [D, H]
(no direct input-to-output connections). The pixel ordering is the natural raster order, fixed:
input and output degrees m(d) = d + 1 in 1..D. Masks as in the paper (section 4): each hidden
unit k gets a degree m(k) drawn uniformly from {1, ..., D - 1}; M1[k, d] = [m(k) >= m(d)],
M2[d, k] = [m(d) > m(k)], so logit d depends only on x_<d.

Our choices, stated here:
- connectivity-agnostic training: 32 hidden-degree vectors are drawn once, up front, from
  numpy.random.RandomState(seed); minibatch t uses mask t mod 32 (a fresh mask each minibatch,
  cycling through the fixed set in order, as the authors' code does); the ordering never changes.
- test NLL: -log of the mask ensemble, log p(x) = logsumexp_k log p(x | mask k) - log 8, over the
  first 8 of the 32 training masks, averaged over the whole test set (nats). The single-mask
  figure (mask 0) is printed beside it.
- init: PyTorch's default nn.Linear init for W1, b1, W2, b2 (uniform +-1/sqrt(fan_in) for the
  biases, kaiming-uniform(a = sqrt 5) for the weights), drawn after torch.manual_seed(seed);
  the masks multiply the weights in every forward pass.

Modes (run from the repository root with the venv's python, launch/common.sh elbo_torch_python):
    pytorch_made.py train --data fashion-mnist|mnist-5k --epochs E --lr 1e-3 --batch 100 --seed S --threads T
        Adam, static binarisation (pixel/255 > 0.5), reshuffled each epoch (torch.randperm from
        the seed), loss = batch mean of -log p(x | mask); train_nll_last_epoch is the mean of the
        last epoch's minibatch losses (each under its own mask, before its update).
    pytorch_made.py speed --threads T --steps N [--batch 100]
        times the full training step (mask, forward, backward, Adam) on synthetic Bernoulli(0.5) data.
    pytorch_made.py check
        the autoregressive property: for every mask, output d is connected only to inputs < d.
Each prints one JSON line. Only numpy and torch are needed.
"""
import argparse, gzip, json, math, os, struct, sys, time

import numpy as np
import torch
import torch.nn.functional as F

from reference_data import load  # the data as Elbo reads it
D = 784



# ---------------------------------------------------------------- model

class MADE(torch.nn.Module):
    def __init__(self, hidden=500, masks=32, seed=0):
        super().__init__()
        self.fc1 = torch.nn.Linear(D, hidden)
        self.fc2 = torch.nn.Linear(hidden, D)
        rng = np.random.RandomState(seed)
        self.register_buffer("in_degree", torch.arange(1, D + 1))
        # hidden degrees, one row per mask: uniform on {1, ..., D - 1}
        self.register_buffer("hidden_degree", torch.tensor(rng.randint(1, D, size=(masks, hidden))))
        self.masks = masks

    def mask(self, k):
        m = self.hidden_degree[k % self.masks]
        m1 = (m.unsqueeze(1) >= self.in_degree.unsqueeze(0)).float()   # [H, D]
        m2 = (self.in_degree.unsqueeze(1) > m.unsqueeze(0)).float()    # [D, H]
        return m1, m2

    def log_prob(self, x, k):
        """log p(x | mask k) [B] for binary x [B, D]."""
        m1, m2 = self.mask(k)
        h = F.relu(F.linear(x, self.fc1.weight * m1, self.fc1.bias))
        logits = F.linear(h, self.fc2.weight * m2, self.fc2.bias)
        return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(1)


@torch.no_grad()
def mean_nll(model, x, masks, chunk=1000):
    """-mean over x of log (1/masks) sum_k p(x | mask k), and the same for mask 0 alone."""
    ensemble, single = 0.0, 0.0
    for i in range(0, len(x), chunk):
        lp = torch.stack([model.log_prob(x[i:i + chunk], k).double() for k in range(masks)])  # [masks, B]
        ensemble += (torch.logsumexp(lp, 0) - math.log(masks)).sum().item()
        single += lp[0].sum().item()
    return -ensemble / len(x), -single / len(x)


# ---------------------------------------------------------------- modes

def train(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    train_x, test_x = load(args.data)
    model = MADE(args.hidden, args.masks, args.seed)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    batches = len(train_x) // args.batch
    start = time.time()
    step = 0
    for epoch in range(args.epochs):
        perm = torch.randperm(len(train_x))
        total = 0.0
        for i in range(batches):
            loss = -model.log_prob(train_x[perm[i * args.batch:(i + 1) * args.batch]], step).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
            step += 1
        print(f"epoch {epoch + 1}: train nll {total / batches:.3f} ({time.time() - start:.0f} s)",
              file=sys.stderr, flush=True)
    seconds = time.time() - start
    start = time.time()
    test_nll, test_nll_one = mean_nll(model, test_x, args.test_masks)
    print(json.dumps({"impl": "pytorch", "model": "made", "data": args.data, "epochs": args.epochs,
                      "test_nll": round(test_nll, 3), "test_masks": args.test_masks,
                      "test_nll_one_mask": round(test_nll_one, 3),
                      "train_nll_last_epoch": round(total / batches, 3),
                      "seconds": round(seconds, 1), "eval_seconds": round(time.time() - start, 1),
                      "hidden": args.hidden, "train_masks": args.masks, "batch": args.batch, "lr": args.lr,
                      "seed": args.seed, "threads": args.threads, "train_examples": len(train_x),
                      "test_examples": len(test_x), "torch": torch.__version__}), flush=True)


def speed(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = MADE(args.hidden, args.masks, 0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    pool = (torch.rand(8, args.batch, D) < 0.5).float()

    def step(i):
        loss = -model.log_prob(pool[i % len(pool)], i).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    for i in range(args.warmup):
        step(i)
    start, cpu_start = time.perf_counter(), time.process_time()
    for i in range(args.steps):
        step(i)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    print(json.dumps({"impl": "pytorch", "model": "made", "hidden": args.hidden, "threads": args.threads,
                      "batch": args.batch, "steps": args.steps, "ms_per_step": round(seconds * 1000 / args.steps, 3),
                      "examples_per_second": round(args.batch * args.steps / seconds, 1),
                      # CPU time of all this process's threads: on a busy machine, at 1 thread, the
                      # step's cost without the waiting for a core
                      "cpu_ms_per_step": round(cpu_seconds * 1000 / args.steps, 3),
                      "torch": torch.__version__}), flush=True)


def check(args):
    model = MADE(args.hidden, args.masks, args.seed)
    strictly_lower = torch.tril(torch.ones(D, D), -1).bool()
    ok, dead = True, []
    for k in range(args.masks):
        m1, m2 = model.mask(k)
        paths = m2 @ m1                          # [D out, D in]: number of hidden paths from input j to output d
        ok &= bool((paths[~strictly_lower] == 0).all())
        dead.append(int((m1.sum(1) == 0).sum()))  # hidden units with no input (none: degree >= 1)
    # Also by perturbation: flipping x_j for j >= d must not change logit d (mask 0, random x).
    torch.manual_seed(0)
    x = (torch.rand(1, D) < 0.5).float()
    m1, m2 = model.mask(0)
    logits = lambda v: F.linear(F.relu(F.linear(v, model.fc1.weight * m1, model.fc1.bias)), model.fc2.weight * m2, model.fc2.bias)
    base = logits(x)
    for j in (0, 100, 400, 783):
        y = x.clone()
        y[0, j] = 1 - y[0, j]
        ok &= bool(torch.equal(logits(y)[0, :j + 1], base[0, :j + 1]))
    print(json.dumps({"impl": "pytorch", "model": "made", "check": "autoregressive masks", "masks": args.masks,
                      "hidden_units_without_input": dead, "pass": ok}), flush=True)
    if not ok:
        sys.exit(1)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["train", "speed", "check"])
    parser.add_argument("--data", default="mnist-5k", choices=["fashion-mnist", "mnist-5k"])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--hidden", type=int, default=500)
    parser.add_argument("--masks", type=int, default=32, help="the fixed set of training masks")
    parser.add_argument("--test-masks", type=int, default=8, help="the first N masks, ensembled at test time")
    args = parser.parse_args()
    if not 1 <= args.test_masks <= args.masks:
        raise SystemExit("--test-masks must be in 1..--masks")
    {"train": train, "speed": speed, "check": check}[args.mode](args)


if __name__ == "__main__":
    main()
