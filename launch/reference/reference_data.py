"""Data for the PyTorch references, as Elbo reads it (Sources/ElboData): Fashion-MNIST from the
Debian package's IDX files, MNIST-5k from data/mnist_5k.csv.gz with Elbo's fixed stratified
split, static binarisation at 0.5 of pixel/255."""
import gzip, os, struct

import numpy as np
import torch

FASHION = "/usr/share/datasets/fashion-mnist"
MNIST5K = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "data", "mnist_5k.csv.gz")


def read_idx_images(prefix):
    name = next(f for f in os.listdir(FASHION) if f.startswith(prefix))
    path = os.path.join(FASHION, name)
    raw = gzip.open(path).read() if name.endswith(".gz") else open(path, "rb").read()
    _, n, rows, cols = struct.unpack(">IIII", raw[:16])
    return np.frombuffer(raw, np.uint8, offset=16).reshape(n, rows * cols)


def read_mnist5k(path=None):
    """data/mnist_5k.csv.gz with Elbo's fixed split: within each class, the first 400 rows (file
    order) are train and the last 100 test; both keep file order."""
    if path is None:
        env = os.environ.get("ELBO_DATA_DIR")
        path = os.path.join(env, "mnist_5k.csv.gz") if env else MNIST5K
    table = np.loadtxt(gzip.open(path, "rt"), delimiter=",", dtype=np.int64)
    assert table.shape == (5000, 785), table.shape
    pixels, labels = table[:, :784].astype(np.uint8), table[:, 784]
    seen = np.zeros(10, np.int64)
    train_rows, test_rows = [], []
    for row, c in enumerate(labels):
        (train_rows if seen[c] < 400 else test_rows).append(row)
        seen[c] += 1
    assert (seen == 500).all()
    return pixels[train_rows], pixels[test_rows]


def load(data):
    if data == "fashion-mnist":
        train, test = read_idx_images("train-images"), read_idx_images("t10k-images")
    elif data == "mnist-5k":
        train, test = read_mnist5k()
    else:
        raise SystemExit(f"unknown --data {data}")
    binarise = lambda a: torch.tensor((a / 255.0 > 0.5).astype(np.float32))
    return binarise(train), binarise(test)
