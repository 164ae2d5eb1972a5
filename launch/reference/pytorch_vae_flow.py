"""PyTorch speed reference for `elbo bench vae --flow planar|iaf --flow-length K`.

The same model and step as Elbo's flow-posterior VAE: encoder 784-200-200-(2L + C) ReLU to
(mu, log var, flow context), q0 = N(mu, diag sigma^2), z_K = f_K(...f_1(z_0)), decoder
L-200-200-784 ReLU with Bernoulli logits, prior N(0, I); one-sample ELBO with the Monte Carlo
KL log q_K(z_K) - log p(z_K), log q_K = log q0(z0) - sum log|det|; loss = batch mean; Adam
lr 1e-3; batch 100; binarised Fashion-MNIST.

Flows (as Sources/ElboProbability/Flows):
  planar  amortised: C = K(2L + 1) encoder columns [u | w | b] per step; u_hat keeps w.u_hat > -1;
          f(z) = z + u_hat tanh(w.z + b), log|det| = log|1 + (1 - tanh^2) w.u_hat|.
  iaf     C = 320 columns h; each step a MADE with one hidden layer of 320 ELU units
          (z L->320 masked, h 320->320 unmasked, into the same hidden layer), output 320->2L
          masked (m | s), sigma = sigmoid(s + 1), z' = m + sigma (z - m), log|det| = sum log sigma;
          the ordering is reversed every other step.

    python pytorch_vae_flow.py FLOW K THREADS STEPS [LATENT=50]

Prints one JSON line: {"impl": "pytorch", "flow", "flow_length", "threads", "steps",
"ms_per_step", "examples_per_second"}.
"""
import json, sys, time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from pytorch_vae import read_idx_images

HALF_LOG_2PI = 0.5 * np.log(2 * np.pi)


class Planar:
    width = staticmethod(lambda l: 2 * l + 1)

    def __init__(self, latent):
        self.l = latent

    def __call__(self, z, c):
        l = self.l
        u, w, b = c[:, :l], c[:, l:2 * l], c[:, 2 * l:2 * l + 1]
        wu = (w * u).sum(1, keepdim=True)
        u_hat = u + (F.softplus(wu) - 1 - wu) * w / (w * w).sum(1, keepdim=True)
        t = torch.tanh((z * w).sum(1, keepdim=True) + b)
        det = 1 + (1 - t * t) * (w * u_hat).sum(1, keepdim=True)
        return z + u_hat * t, torch.log(det.abs()).squeeze(1)


def made_masks(l, h, reversed_):
    """Natural ordering 1..L (reversed: L..1), hidden degrees in 1..L-1, strict output mask."""
    order = torch.arange(1, l + 1)
    if reversed_:
        order = order.flip(0)
    degrees = (torch.arange(h) % max(1, l - 1)) + 1
    m_in = (degrees[None, :] >= order[:, None]).float()      # [L, H]
    m_out = (order[None, :] > degrees[:, None]).float()      # [H, L]
    return m_in, torch.cat([m_out, m_out], 1)                # [L, H], [H, 2L]


class IAFStep(nn.Module):
    def __init__(self, latent, hidden, context, reversed_):
        super().__init__()
        self.l = latent
        self.inp = nn.Linear(latent, hidden)
        self.ctx = nn.Linear(context, hidden, bias=False)
        self.out = nn.Linear(hidden, 2 * latent)
        m_in, m_out = made_masks(latent, hidden, reversed_)
        self.register_buffer("m_in", m_in.t().contiguous())    # Linear weights are [out, in]
        self.register_buffer("m_out", m_out.t().contiguous())

    def forward(self, z, h):
        a = F.elu(F.linear(z, self.inp.weight * self.m_in, self.inp.bias) + self.ctx(h))
        ms = F.linear(a, self.out.weight * self.m_out, self.out.bias)
        m, s = ms[:, :self.l], ms[:, self.l:] + 1
        sigma = torch.sigmoid(s)
        return m + sigma * (z - m), F.logsigmoid(s).sum(1)


class FlowVAE(nn.Module):
    def __init__(self, flow, k, latent=50, hidden=200, iaf_hidden=320, iaf_context=320):
        super().__init__()
        self.l, self.flow, self.k = latent, flow, k
        if flow == "planar":
            context = k * Planar.width(latent)
            self.steps = [Planar(latent) for _ in range(k)]
        elif flow == "iaf":
            context = iaf_context
            self.iaf = nn.ModuleList(IAFStep(latent, iaf_hidden, iaf_context, i % 2 == 1)
                                     for i in range(k))
        else:
            raise SystemExit(f"pytorch_vae_flow.py: unknown flow '{flow}' (planar or iaf)")
        self.encoder = nn.Sequential(nn.Linear(784, hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                                     nn.ReLU(), nn.Linear(hidden, 2 * latent + context))
        self.decoder = nn.Sequential(nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                                     nn.ReLU(), nn.Linear(hidden, 784))

    def elbo(self, x):
        l = self.l
        out = self.encoder(x)
        mu, logvar, c = out[:, :l], out[:, l:2 * l], out[:, 2 * l:]
        eps = torch.randn_like(mu)
        z = mu + torch.exp(0.5 * logvar) * eps
        log_q = (-0.5 * eps ** 2 - 0.5 * logvar - HALF_LOG_2PI).sum(1)
        if self.flow == "planar":
            w = Planar.width(l)
            for i, f in enumerate(self.steps):
                z, ld = f(z, c[:, i * w:(i + 1) * w])
                log_q = log_q - ld
        else:
            for f in self.iaf:
                z, ld = f(z, c)
                log_q = log_q - ld
        log_px_z = -F.binary_cross_entropy_with_logits(self.decoder(z), x, reduction="none").sum(1)
        log_pz = (-0.5 * z ** 2 - HALF_LOG_2PI).sum(1)
        return log_px_z + log_pz - log_q


def main():
    flow = sys.argv[1] if len(sys.argv) > 1 else "planar"
    k = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    threads = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    steps = int(sys.argv[4]) if len(sys.argv) > 4 else 1000
    latent = int(sys.argv[5]) if len(sys.argv) > 5 else 50
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    train = torch.tensor((read_idx_images("train-images") / 255.0 > 0.5).astype(np.float32))
    model = FlowVAE(flow, k, latent=latent)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    perm = torch.randperm(len(train))
    batches = len(train) // 100

    def step(i):
        j = i % batches
        loss = -model.elbo(train[perm[j * 100:(j + 1) * 100]]).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    for i in range(50):  # warm-up: allocator, thread pool
        step(i)
    start = time.perf_counter()
    for i in range(steps):
        step(i)
    seconds = time.perf_counter() - start
    print(json.dumps({"impl": "pytorch", "torch": torch.__version__, "flow": flow,
                      "flow_length": k, "threads": threads, "steps": steps,
                      "ms_per_step": round(seconds * 1000 / steps, 3),
                      "examples_per_second": round(100 * steps / seconds, 1)}), flush=True)


if __name__ == "__main__":
    main()
