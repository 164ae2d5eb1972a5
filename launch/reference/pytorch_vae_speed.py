"""PyTorch speed reference for Elbo's VAE benchmarks (../shared/ANCHORS.md, first table).

The anchor's model and step (pytorch_vae.py's VAE: 784-200-200-50 ReLU, Bernoulli decoder,
one-sample ELBO with analytic KL, Adam 1e-3, batch 100, binarised Fashion-MNIST), timed over
STEPS steps after a warm-up, with THREADS intra-op threads. `launch/bench-vs-pytorch` runs it in
the same rounds as `elbo bench vae`, so the two are compared on one machine at one moment.

    python pytorch_vae_speed.py THREADS STEPS

Prints one JSON line: {"impl": "pytorch", "threads", "steps", "ms_per_step", "examples_per_second"}.
"""
import json, sys, time

import numpy as np
import torch

from pytorch_vae import VAE, read_idx_images


def main():
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    train = torch.tensor((read_idx_images("train-images") / 255.0 > 0.5).astype(np.float32))
    model = VAE()
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
    print(json.dumps({"impl": "pytorch", "torch": torch.__version__, "threads": threads,
                      "steps": steps, "ms_per_step": round(seconds * 1000 / steps, 3),
                      "examples_per_second": round(100 * steps / seconds, 1)}), flush=True)


if __name__ == "__main__":
    main()
