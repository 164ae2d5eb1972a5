"""PyTorch reference for Elbo's NADE (Larochelle & Murray 2011; ../shared/ANCHORS.md, NADE rows).

Model: D = 784 binary pixels in raster order, H = 500 sigmoid hidden units, tied weights:
    a_d = c + sum_{k<d} W[k] x_k,   h_d = sigmoid(a_d),   p(x_d = 1 | x_<d) = sigmoid(b_d + V[d] . h_d)
with W [D, H], c [H], V [D, H], b [D]. Exact log p(x) = sum_d log Bernoulli(x_d; p_d).

Init (our choice, stated here): W and V ~ N(0, 0.01^2) i.i.d., b = 0, c = 0; torch.manual_seed(seed)
before the parameters are drawn.

Blocked implementation (the anchor's): the image is R = 28 rows of C = 28 pixels. Each row's
contribution S_r = x_r W_r [B, H] is one batched matmul; the pre-activation at the start of row
r is the exclusive prefix sum c + sum_{r'<r} S_r' (a cumsum over 28 rows, not over 784 pixels);
inside a row, pixel j adds sum_{k<j} x_{r,k} W_{r,k}, a matmul of the strictly-lower-triangular
masked row [C, C] with W_r [C, H]. Everything is laid out [row, col, batch, hidden] so the
output layer is one batched matmul over the D pixels with no copies.

Modes (run from the repository root with the venv's python, launch/common.sh elbo_torch_python):
    pytorch_nade.py train --data fashion-mnist|mnist-5k --epochs E --lr 1e-3 --batch 100 --seed S --threads T
        Adam, static binarisation (pixel/255 > 0.5), reshuffled each epoch (torch.randperm from
        the seed), loss = batch mean of -log p(x); then the exact test NLL (mean -log p(x) over
        the whole test set, nats). train_nll_last_epoch is the mean of the last epoch's
        minibatch losses, each taken before that minibatch's update.
    pytorch_nade.py speed --threads T --steps N [--batch 100]
        times the full training step (forward, backward, Adam) on synthetic Bernoulli(0.5) data.
    --retain-freed-memory (train, speed): glibc malloc keeps freed memory (mallopt: no mmap, no
        trim) instead of returning each ~157 MB B x D x H tensor to the kernel and faulting it
        back in next step; off by default (PyTorch as installed). It cut the step's CPU time
        from ~410 to ~160 ms at 1 thread here, most of the default's being page faults.
    pytorch_nade.py check
        the blocked log-likelihood (and its gradients) against a naive per-pixel loop, in
        float64 and float32, on a few examples with random parameters.
Each prints one JSON line. Only numpy and torch are needed.
"""
import argparse, ctypes, gzip, json, math, os, struct, sys, time

import numpy as np
import torch
import torch.nn.functional as F

from reference_data import load  # the data as Elbo reads it
ROWS, COLS = 28, 28
D = ROWS * COLS



# ---------------------------------------------------------------- model

class HiddenToLogits(torch.autograd.Function):
    """logits[d, b] = b_d + V[d] . sigmoid(inner[d, b] + prefix[row(d), b]) with a hand-written
    backward: plain autograd spends a K = 1 batched matmul on the gradient of the hidden units
    and extra passes over the B x D x H tensors; this saves only h and makes two passes."""

    @staticmethod
    def forward(ctx, inner, prefix, V, b):
        R, C, B, H = inner.shape
        h = torch.sigmoid_(inner + prefix.unsqueeze(1)).view(R * C, B, H)
        ctx.save_for_backward(h, V)
        return torch.bmm(h, V.unsqueeze(2)).squeeze(2) + b.unsqueeze(1)

    @staticmethod
    def backward(ctx, g):
        h, V = ctx.saved_tensors
        D, B, H = h.shape
        grad_act = torch.ops.aten.sigmoid_backward(g.unsqueeze(2) * V.unsqueeze(1), h)
        grad_V = torch.bmm(g.unsqueeze(1), h).squeeze(1)
        grad_inner = grad_act.view(ROWS, COLS, B, H)
        return grad_inner, grad_inner.sum(1), grad_V, g.sum(1)


class NADE(torch.nn.Module):
    def __init__(self, hidden=500, dtype=torch.float32, fused=True):
        super().__init__()
        self.hidden = hidden
        self.fused = fused
        self.W = torch.nn.Parameter(0.01 * torch.randn(D, hidden, dtype=dtype))
        self.c = torch.nn.Parameter(torch.zeros(hidden, dtype=dtype))
        self.V = torch.nn.Parameter(0.01 * torch.randn(D, hidden, dtype=dtype))
        self.b = torch.nn.Parameter(torch.zeros(D, dtype=dtype))
        # strict[j, k] = 1 when k < j: pixel j of a row sees the row's pixels before it.
        self.register_buffer("strict", torch.tril(torch.ones(COLS, COLS, dtype=dtype), -1))

    def log_prob(self, x):
        """Exact log p(x) [B] for binary x [B, D], blocked over rows."""
        B, H = x.shape[0], self.hidden
        xr = x.t().reshape(ROWS, COLS, B).transpose(1, 2)               # [R, B, C]
        Wr = self.W.view(ROWS, COLS, H)                                 # [R, C, H]
        S = torch.bmm(xr, Wr)                                           # [R, B, H] row contributions
        prefix = torch.cat([S.new_zeros(1, B, H), torch.cumsum(S[:-1], 0)]) + self.c  # exclusive
        # masked[r, j, b, k] = x[b, r, k] * (k < j)
        masked = xr.unsqueeze(1) * self.strict.view(1, COLS, 1, COLS)   # [R, C, B, C]
        inner = torch.bmm(masked.reshape(ROWS, COLS * B, COLS), Wr).view(ROWS, COLS, B, H)
        if self.fused:
            logits = HiddenToLogits.apply(inner, prefix, self.V, self.b)                  # [D, B]
        else:  # the same in plain autograd
            h = torch.sigmoid(inner + prefix.unsqueeze(1)).view(D, B, H)                 # h_d, every pixel
            logits = torch.bmm(h, self.V.unsqueeze(2)).squeeze(2) + self.b.unsqueeze(1)
        return -F.binary_cross_entropy_with_logits(logits, x.t(), reduction="none").sum(0)

    def log_prob_naive(self, x):
        """The same, one pixel at a time (for the check)."""
        a = self.c.expand(x.shape[0], -1)
        total = x.new_zeros(x.shape[0])
        for d in range(D):
            logit = torch.sigmoid(a) @ self.V[d] + self.b[d]
            total = total - F.binary_cross_entropy_with_logits(logit, x[:, d], reduction="none")
            a = a + x[:, d:d + 1] * self.W[d]
        return total


@torch.no_grad()
def mean_nll(model, x, chunk=500):
    return -sum(model.log_prob(x[i:i + chunk]).double().sum().item() for i in range(0, len(x), chunk)) / len(x)


# ---------------------------------------------------------------- modes

def retain_freed_memory():
    """glibc: serve every allocation from the heap (M_MMAP_MAX = 0) and never trim it
    (M_TRIM_THRESHOLD = 2^31 - 1), so the big per-step tensors reuse already-mapped pages."""
    libc = ctypes.CDLL("libc.so.6")
    M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
    if not (libc.mallopt(M_MMAP_MAX, 0) and libc.mallopt(M_TRIM_THRESHOLD, 2 ** 31 - 1)):
        raise SystemExit("mallopt failed")


def train(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    train_x, test_x = load(args.data)
    model = NADE(args.hidden, fused=args.impl == "fused")
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    batches = len(train_x) // args.batch
    start = time.time()
    for epoch in range(args.epochs):
        perm = torch.randperm(len(train_x))
        total = 0.0
        for i in range(batches):
            loss = -model.log_prob(train_x[perm[i * args.batch:(i + 1) * args.batch]]).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
        print(f"epoch {epoch + 1}: train nll {total / batches:.3f} ({time.time() - start:.0f} s)",
              file=sys.stderr, flush=True)
    seconds = time.time() - start
    start = time.time()
    test_nll = mean_nll(model, test_x)
    print(json.dumps({"impl": "pytorch", "model": "nade", "data": args.data, "epochs": args.epochs,
                      "test_nll": round(test_nll, 3), "train_nll_last_epoch": round(total / batches, 3),
                      "seconds": round(seconds, 1), "eval_seconds": round(time.time() - start, 1),
                      "hidden": args.hidden, "impl_variant": args.impl,
                      "retain_freed_memory": args.retain_freed_memory, "batch": args.batch, "lr": args.lr, "seed": args.seed,
                      "threads": args.threads, "train_examples": len(train_x), "test_examples": len(test_x),
                      "torch": torch.__version__}), flush=True)


def speed(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = NADE(args.hidden, fused=args.impl == "fused")
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    pool = (torch.rand(8, args.batch, D) < 0.5).float()

    def step(i):
        loss = -model.log_prob(pool[i % len(pool)]).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    for i in range(args.warmup):
        step(i)
    start, cpu_start = time.perf_counter(), time.process_time()
    for i in range(args.steps):
        step(i)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    print(json.dumps({"impl": "pytorch", "model": "nade", "hidden": args.hidden, "impl_variant": args.impl,
                      "retain_freed_memory": args.retain_freed_memory, "threads": args.threads,
                      "batch": args.batch, "steps": args.steps, "ms_per_step": round(seconds * 1000 / args.steps, 3),
                      "examples_per_second": round(args.batch * args.steps / seconds, 1),
                      # CPU time of all this process's threads: on a busy machine, at 1 thread, the
                      # step's cost without the waiting for a core
                      "cpu_ms_per_step": round(cpu_seconds * 1000 / args.steps, 3),
                      "torch": torch.__version__}), flush=True)


def check(args):
    torch.set_num_threads(args.threads)
    result = {"impl": "pytorch", "model": "nade", "check": "blocked vs naive per-pixel loop"}
    ok = True
    _, test_x = load("mnist-5k")
    # The algorithm is checked in float64 to 1e-4 nats; float32 only adds rounding (|log p| is
    # ~10^3 nats here, whose float32 spacing is ~1e-4), so it is held to 1e-6 relative.
    for dtype, tol in ((torch.float64, 1e-4), (torch.float32, 1e-6)):
        for fused in (True, False):
            torch.manual_seed(1)
            model = NADE(args.hidden, dtype, fused)
            with torch.no_grad():  # larger random parameters than the init, so every term matters
                for p in (model.W, model.V):
                    p.normal_(0, 0.3)
                model.b.normal_(0, 1)
                model.c.normal_(0, 1)
            x = test_x[::200].to(dtype)  # five real digits, test rows 0, 200, ... (classes 0, 2, 4, 6, 8)
            blocked, naive = model.log_prob(x), model.log_prob_naive(x)
            value_err = (blocked - naive).abs().max().item()
            if dtype == torch.float32:
                value_err /= naive.abs().max().item()
            g_blocked = torch.autograd.grad(blocked.sum(), list(model.parameters()))
            g_naive = torch.autograd.grad(naive.sum(), list(model.parameters()))
            grad_err = max(((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item()
                           for a, b in zip(g_blocked, g_naive))
            name = str(dtype).split(".")[1] + ("/fused" if fused else "/autograd")
            result[name] = {"log_p": [round(v, 4) for v in naive.tolist()],
                            ("max_abs_err" if dtype == torch.float64 else "max_rel_err"): value_err,
                            "max_rel_grad_err": grad_err}
            ok &= value_err < tol and grad_err < (1e-8 if dtype == torch.float64 else 1e-3)
    result["pass"] = bool(ok)
    print(json.dumps(result), flush=True)
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
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--hidden", type=int, default=500)
    parser.add_argument("--impl", default="fused", choices=["fused", "autograd"],
                        help="fused: HiddenToLogits' hand-written backward (default); autograd: plain")
    parser.add_argument("--retain-freed-memory", action="store_true",
                        help="glibc malloc keeps freed memory instead of unmapping it (see above)")
    args = parser.parse_args()
    if args.retain_freed_memory:
        retain_freed_memory()
    {"train": train, "speed": speed, "check": check}[args.mode](args)


if __name__ == "__main__":
    main()
