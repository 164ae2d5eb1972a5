"""PyTorch reference for Elbo's VAE quality bar (issue 2, ../shared/ANCHORS.md).

The same model and training as `elbo train vae`: 784-200-200-50 ReLU encoder to (mu, log var),
decoder the reverse with Bernoulli logits, prior N(0, I); Fashion-MNIST binarised by threshold
(pixel/255 > 0.5); one-sample reparameterised ELBO with analytic KL, loss = batch mean; Adam
lr 1e-3; batch 100; 10 epochs; PyTorch's default Linear init. Test log-likelihood by importance
sampling with k = 1000 on all 10k test images, in nats.

Prints one JSON line: {"impl": "pytorch", "seed", "test_elbo", "test_log_likelihood", ...}.
Used by `launch/reproduce vae-quality --with-pytorch`; not part of Elbo itself.
"""
import gzip, json, math, os, struct, sys, time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DATA = "/usr/share/datasets/fashion-mnist"


def read_idx_images(prefix):
    name = next(f for f in os.listdir(DATA) if f.startswith(prefix))
    raw = gzip.open(os.path.join(DATA, name)).read() if name.endswith(".gz") else open(os.path.join(DATA, name), "rb").read()
    _, n, rows, cols = struct.unpack(">IIII", raw[:16])
    return np.frombuffer(raw, np.uint8, offset=16).reshape(n, rows * cols)


class VAE(nn.Module):
    def __init__(self, latent=50, hidden=200):
        super().__init__()
        self.latent = latent
        self.encoder = nn.Sequential(nn.Linear(784, hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                                     nn.ReLU(), nn.Linear(hidden, 2 * latent))
        self.decoder = nn.Sequential(nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                                     nn.ReLU(), nn.Linear(hidden, 784))

    def posterior(self, x):
        h = self.encoder(x)
        return h[:, :self.latent], h[:, self.latent:]

    def elbo(self, x):
        mu, logvar = self.posterior(x)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        log_px_z = -F.binary_cross_entropy_with_logits(self.decoder(z), x, reduction="none").sum(1)
        kl = 0.5 * (mu ** 2 + logvar.exp() - 1 - logvar).sum(1)
        return log_px_z - kl

    @torch.no_grad()
    def log_likelihood(self, x, k):
        mu, logvar = self.posterior(x)
        eps = torch.randn(k, *mu.shape)
        z = mu + torch.exp(0.5 * logvar) * eps
        logits = self.decoder(z.reshape(-1, self.latent)).reshape(k, x.shape[0], -1)
        log_px_z = -F.binary_cross_entropy_with_logits(logits, x.expand(k, -1, -1), reduction="none").sum(2)
        half_log_2pi = 0.5 * math.log(2 * math.pi)
        log_pz = (-0.5 * z ** 2 - half_log_2pi).sum(2)
        log_qz = (-0.5 * eps ** 2 - 0.5 * logvar - half_log_2pi).sum(2)
        return torch.logsumexp(log_px_z + log_pz - log_qz, 0) - math.log(k)


def main():
    seed = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    k = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    train = torch.tensor((read_idx_images("train-images") / 255.0 > 0.5).astype(np.float32))
    test = torch.tensor((read_idx_images("t10k-images") / 255.0 > 0.5).astype(np.float32))
    model = VAE()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    start = time.time()
    for _ in range(10):
        perm = torch.randperm(len(train))
        for i in range(len(train) // 100):
            loss = -model.elbo(train[perm[i * 100:(i + 1) * 100]]).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    seconds = time.time() - start
    torch.set_num_threads(os.cpu_count() or 1)
    with torch.no_grad():
        test_elbo = sum(model.elbo(test[i:i + 1000]).sum().item() for i in range(0, len(test), 1000)) / len(test)
        ll = sum(model.log_likelihood(test[i:i + 20], k).sum().item() for i in range(0, len(test), 20)) / len(test)
    print(json.dumps({"impl": "pytorch", "torch": torch.__version__, "seed": seed, "k": k,
                      "test_elbo": round(test_elbo, 3), "test_log_likelihood": round(ll, 3),
                      "train_seconds": round(seconds, 1)}), flush=True)


if __name__ == "__main__":
    main()
