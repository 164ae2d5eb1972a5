"""PyTorch speed reference for `elbo bench neural-statistician` (the same model and step).

The Neural Statistician of Sources/ElboModels/NeuralStatistician on the synthetic 1-D sets:
B = 16 sets x N = 200 points, D = 1, H = 128, 3 hidden layers per network, c in R^3, L = 3
layers of z in R^32, ReLU; networks sum the projections of their inputs:
  encoder      h = relu(W x)                                   1 -> 128
  statistic    3 x (128 -> 128 relu) per point, mean over the set, 3 x (128 -> 128 relu), -> 2C
  inference l  relu(W h + W c [+ W z_{l+1}]) -> 2 x (128 -> 128 relu) -> 2Z   (top layer first)
  latent l     relu(W c [+ W z_{l+1}])       -> 2 x (128 -> 128 relu) -> 2Z   (top: per set)
  observation  relu(W [z_1..z_L] + W c)      -> 2 x (128 -> 128 relu) -> 2D (mean, log var)
Loss: -(1/(B N)) sum_sets [(1 + a) R - (C + L)/(1 + a)], a = 1, one sample of c and every z,
analytic KLs; Adam lr 1e-3; gradients clamped elementwise to [-0.5, 0.5].

    python pytorch_neural_statistician.py THREADS STEPS [BATCH=16] [POINTS=200]

Prints one JSON line: {"impl": "pytorch", "threads", "steps", "batch_size", "points",
"ms_per_step", "examples_per_second"} (examples = sets).
"""
import json, math, sys, time

import numpy as np
import torch
import torch.nn as nn

H, C, Z, L, LAYERS, D = 128, 3, 32, 3, 3, 1
LOG_2PI = math.log(2 * math.pi)


class Head(nn.Module):
    def __init__(self, inputs, outputs):
        super().__init__()
        self.inputs = nn.ModuleList([nn.Linear(i, H) for i in inputs])
        self.tail = nn.ModuleList([nn.Linear(H, H) for _ in range(LAYERS - 1)])
        self.out = nn.Linear(H, outputs)

    def forward(self, xs, per_set, n):
        """xs: [B*N, .] inputs; per_set: [B, .] added to each of the set's N rows."""
        e = None
        for layer, x in zip(self.inputs, xs):
            p = layer(x)
            e = p if e is None else e + p
        c = self.inputs[len(xs)](per_set)
        if e is None:
            e = c
        else:
            e = (e.view(c.shape[0], n, H) + c[:, None, :]).view(-1, H)
        h = torch.relu(e)
        for layer in self.tail:
            h = torch.relu(layer(h))
        return self.out(h)


def kl(mq, lq, mp, lp):
    return 0.5 * (lp - lq + (lq.exp() + (mq - mp) ** 2) / lp.exp() - 1).sum(-1)


class Statistician(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Linear(D, H)
        self.pre = nn.ModuleList([nn.Linear(H, H) for _ in range(LAYERS)])
        self.post = nn.ModuleList([nn.Linear(H, H) for _ in range(LAYERS)])
        self.post_out = nn.Linear(H, 2 * C)
        self.inference = nn.ModuleList(
            [Head([H] + ([] if i == 0 else [Z]) + [C], 2 * Z) for i in range(L)])
        self.latent = nn.ModuleList(
            [Head(([] if i == 0 else [Z]) + [C], 2 * Z) for i in range(L)])
        self.observation = Head([L * Z, C], 2 * D)

    def loss(self, x, alpha):
        b, n, _ = x.shape
        h = torch.relu(self.encoder(x.view(-1, D)))
        e = h
        for layer in self.pre:
            e = torch.relu(layer(e))
        e = e.view(b, n, H).mean(1)
        for layer in self.post:
            e = torch.relu(layer(e))
        e = self.post_out(e)
        mc, lc = e[:, :C], e[:, C:]
        c = mc + (0.5 * lc).exp() * torch.randn_like(mc)
        kl_c = 0.5 * (mc ** 2 + lc.exp() - 1 - lc).sum(-1)
        zs, kl_z, above = [], 0, None
        for i in range(L):
            q = self.inference[i]([h] + ([] if above is None else [above]), c, n)
            if above is None:
                p = self.latent[i]([], c, n)                      # [B, 2Z]
                p = p[:, None, :].expand(b, n, 2 * Z).reshape(-1, 2 * Z)
            else:
                p = self.latent[i]([above], c, n)
            mq, lq, mp, lp = q[:, :Z], q[:, Z:], p[:, :Z], p[:, Z:]
            z = mq + (0.5 * lq).exp() * torch.randn_like(mq)
            kl_z = kl_z + kl(mq, lq, mp, lp).view(b, n).sum(1)
            zs.append(z)
            above = z
        out = self.observation([torch.cat(zs, 1)], c, n)
        mx, lx = out[:, :D], out[:, D:]
        logp = -0.5 * (LOG_2PI + lx + (x.view(-1, D) - mx) ** 2 / lx.exp()).sum(-1)
        r = logp.view(b, n).sum(1)
        weighted = (1 + alpha) * r - (kl_c + kl_z) / (1 + alpha)
        return -weighted.sum() / (b * n)


def synthetic_sets(b, n, rng):
    """One batch of the four families (the values do not change the timing)."""
    mean = rng.uniform(-1, 1, size=(b, 1))
    sd = np.sqrt(rng.uniform(0.5, 2, size=(b, 1)))
    x = mean + sd * rng.standard_normal((b, n))
    return torch.tensor(x[:, :, None], dtype=torch.float32)


def main():
    threads, steps = int(sys.argv[1]), int(sys.argv[2])
    b = int(sys.argv[3]) if len(sys.argv) > 3 else 16
    n = int(sys.argv[4]) if len(sys.argv) > 4 else 200
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model = Statistician()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    batches = [synthetic_sets(b, n, rng) for _ in range(8)]

    def step(i):
        opt.zero_grad(set_to_none=True)
        loss = model.loss(batches[i % len(batches)], 1.0)
        loss.backward()
        for p in model.parameters():
            p.grad.clamp_(-0.5, 0.5)
        opt.step()

    for i in range(max(5, steps // 10)):
        step(i)
    start = time.perf_counter()
    for i in range(steps):
        step(i)
    ms = (time.perf_counter() - start) * 1000 / steps
    print(json.dumps({"impl": "pytorch", "threads": threads, "steps": steps, "batch_size": b,
                      "points": n, "ms_per_step": round(ms, 3),
                      "examples_per_second": round(b * 1000 / ms, 1)}))


if __name__ == "__main__":
    main()
