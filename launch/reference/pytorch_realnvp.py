"""PyTorch reference for Elbo's Real NVP (Dinh, Sohl-Dickstein & Bengio, ICLR 2017) with MLP
coupling networks on flattened 8-bit images (Sources/ElboModels/RealNVP, Sources/ElboProbability/
Flows/AffineCoupling.swift). The same architecture, initialisation scheme, preprocessing,
optimiser, batch and budget as `elbo train realnvp`:

- data: Fashion-MNIST (the Debian package's IDX files) or MNIST-5k, as Elbo reads them
  (reference_data.py), the 8-bit values v; train examples reshuffled each epoch (torch.randperm).
- preprocessing: uniform dequantisation x = (v + u)/256, u ~ U(0, 1) drawn afresh for every
  training example each epoch (the test set: one draw, fixed); y = logit(a + (1 - 2a) x), a = 0.05,
  with log|dy/dx| = sum_d [log(1 - 2a) - log p_d - log(1 - p_d)], p_d = a + (1 - 2a) x_d.
- model: z = f(y), f = K affine couplings; coupling k has the mask b_j = 1 for (j + k) even
  ("alternating"), an MLP [b*y] -> hidden... (--activation: relu or tanh) -> [s_hat | t_hat],
  s = sigma * tanh(s_hat) * (1 - b), t = t_hat * (1 - b), y' = y * exp(s) + t, log|det| = sum s;
  sigma [D] is learned, initialised to 1. log p(y) = log N(f(y); 0, I) + sum_k log|det_k|.
- init: nn.Linear's default for every layer, then each coupling's LAST layer set to zero (the chain
  starts as the identity), after torch.manual_seed(seed).
- objective: Adam (lr, eps 1e-8), loss = batch mean of -log p(x) = -(log p(y) + log|dy/dx|).
- report: bits/dim of the discrete data, -(log p(x) - D log 256) / (D ln 2), averaged over the
  test set (one dequantisation).

Modes (the venv's python, launch/common.sh elbo_torch_python):
    pytorch_realnvp.py train --data fashion-mnist --epochs E --couplings K --hidden 512,512 ...
    pytorch_realnvp.py speed --threads 1 --steps N [--batch 100] (synthetic bytes, same step)
Each prints one JSON line.
"""
import argparse, json, math, sys, time

import numpy as np
import torch
import torch.nn.functional as F

from reference_data import read_idx_images, read_mnist5k


class Coupling(torch.nn.Module):
    def __init__(self, d, hidden, k, activation="relu"):
        super().__init__()
        self.act = {"relu": F.relu, "tanh": torch.tanh}[activation]
        sizes = [d] + hidden + [2 * d]
        self.layers = torch.nn.ModuleList(torch.nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        with torch.no_grad():
            self.layers[-1].weight.zero_()
            self.layers[-1].bias.zero_()
        self.sigma = torch.nn.Parameter(torch.ones(d))
        b = torch.tensor([1.0 if (j + k) % 2 == 0 else 0.0 for j in range(d)])
        self.register_buffer("b", b)
        self.d = d

    def st(self, y):
        h = y * self.b
        for i, layer in enumerate(self.layers):
            h = layer(h)
            if i < len(self.layers) - 1:
                h = self.act(h)
        s = torch.tanh(h[:, :self.d]) * self.sigma * (1 - self.b)
        t = h[:, self.d:] * (1 - self.b)
        return s, t

    def forward(self, y):
        s, t = self.st(y)
        return y * torch.exp(s) + t, s.sum(1)

    def inverse(self, z):
        s, t = self.st(z)
        return (z - t) * torch.exp(-s)


class RealNVP(torch.nn.Module):
    def __init__(self, d, couplings, hidden, activation="relu"):
        super().__init__()
        self.steps = torch.nn.ModuleList(Coupling(d, hidden, k, activation) for k in range(couplings))
        self.d = d

    def log_prob(self, y):
        logdet = torch.zeros(y.shape[0])
        for step in self.steps:
            y, ld = step(y)
            logdet = logdet + ld
        return -0.5 * (y * y).sum(1) - 0.5 * self.d * math.log(2 * math.pi) + logdet


def logit_transform(v, u, alpha):
    """y and log|dy/dx| [B] from bytes v [B, D] and uniforms u [B, D]."""
    x = (v + u) / 256.0
    p = alpha + (1 - 2 * alpha) * x
    y = torch.log(p) - torch.log1p(-p)
    logjac = (math.log(1 - 2 * alpha) - torch.log(p) - torch.log1p(-p)).sum(1)
    return y, logjac


def bits_per_dim(log_px, d):
    return -(log_px - d * math.log(256.0)) / (d * math.log(2.0))


def load_bytes(data):
    if data == "fashion-mnist":
        train, test = read_idx_images("train-images"), read_idx_images("t10k-images")
    elif data == "mnist-5k":
        train, test = read_mnist5k()
    else:
        raise SystemExit(f"unknown --data {data}")
    return torch.tensor(train.astype(np.float32)), torch.tensor(test.astype(np.float32))


def train(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    train_v, test_v = load_bytes(args.data)
    d = train_v.shape[1]
    model = RealNVP(d, args.couplings, args.hidden, args.activation)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, eps=1e-8)
    batches = len(train_v) // args.batch
    gen = torch.Generator().manual_seed(args.seed + 1)
    test_u = torch.rand(test_v.shape, generator=torch.Generator().manual_seed(args.seed + 2))
    start = time.time()
    for epoch in range(args.epochs):
        perm = torch.randperm(len(train_v))
        total = 0.0
        for i in range(batches):
            v = train_v[perm[i * args.batch:(i + 1) * args.batch]]
            y, logjac = logit_transform(v, torch.rand(v.shape, generator=gen), args.alpha)
            loss = -(model.log_prob(y) + logjac).mean()
            opt.zero_grad()
            loss.backward()
            if args.clip_norm:
                torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip_norm)
            opt.step()
            total += loss.item()
        print(f"epoch {epoch + 1}: train bits/dim {bits_per_dim(-total / batches, d):.4f} "
              f"({time.time() - start:.0f} s)", file=sys.stderr, flush=True)
    seconds = time.time() - start
    with torch.no_grad():
        ll = 0.0
        for i in range(0, len(test_v), 500):
            y, logjac = logit_transform(test_v[i:i + 500], test_u[i:i + 500], args.alpha)
            ll += (model.log_prob(y).double() + logjac.double()).sum().item()
    ll /= len(test_v)
    print(json.dumps({"impl": "pytorch", "model": "realnvp", "data": args.data, "epochs": args.epochs,
                      "test_bits_per_dim": round(bits_per_dim(ll, d), 4), "test_nll": round(-ll, 2),
                      "train_bits_per_dim_last_epoch": round(bits_per_dim(-total / batches, d), 4),
                      "seconds": round(seconds, 1), "couplings": args.couplings, "hidden": args.hidden,
                      "activation": args.activation, "alpha": args.alpha, "batch": args.batch, "lr": args.lr, "seed": args.seed,
                      "threads": args.threads, "train_examples": len(train_v),
                      "test_examples": len(test_v), "torch": torch.__version__}), flush=True)


def speed(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    d = 784
    model = RealNVP(d, args.couplings, args.hidden, args.activation)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    pool = torch.randint(0, 256, (8, args.batch, d)).float()

    def step(i):
        y, logjac = logit_transform(pool[i % len(pool)], torch.rand(args.batch, d), args.alpha)
        loss = -(model.log_prob(y) + logjac).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    for i in range(args.warmup):
        step(i)
    start, cpu_start = time.perf_counter(), time.process_time()
    for i in range(args.steps):
        step(i)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    print(json.dumps({"impl": "pytorch", "model": "realnvp", "couplings": args.couplings,
                      "hidden": args.hidden, "threads": args.threads, "batch": args.batch,
                      "steps": args.steps, "ms_per_step": round(seconds * 1000 / args.steps, 3),
                      "cpu_ms_per_step": round(cpu * 1000 / args.steps, 3),
                      "examples_per_second": round(args.batch * args.steps / seconds, 1),
                      "torch": torch.__version__}), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["train", "speed"])
    parser.add_argument("--data", default="fashion-mnist", choices=["fashion-mnist", "mnist-5k"])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--couplings", type=int, default=6)
    parser.add_argument("--hidden", type=lambda s: [int(w) for w in s.split(",")], default=[512, 512])
    parser.add_argument("--activation", default="relu", choices=["relu", "tanh"])
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--clip-norm", type=float, default=None,
                        help="clip_grad_norm_ of the gradient before each step (Elbo's --clip-norm)")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args()
    {"train": train, "speed": speed}[args.mode](args)


if __name__ == "__main__":
    main()
