#!/usr/bin/env python3
"""PyTorch peer of `linger bench`: the demo CNN's (or, with --model gru, the sequence demo's)
training step time (ms, median after warm-up).

Run by the engine's bench with Debian's python3-torch:
    /usr/bin/python3 scripts/bench/torch_peer.py --threads 1 --steps 30 --warmup 5 --batch 64 --mode float|qat [--model cnn|gru]
--mode qat is PyTorch's eager-mode int8 QAT of the same CNN (conv-bn-relu fused, fake quantization
with the default QAT qconfig), the peer of the engine's fixed stage.
Prints one JSON object: {"torch": version, "mode": m, "threads": n, "median_ms": float, "steps": n}.

    /usr/bin/python3 scripts/bench/torch_peer.py --serve
is how the bench takes turns with the engine: it prints {"torch": version} and then, for each request
line {"model": "cnn"|"gru", "mode": "float"|"qat", "threads": n, "steps": n} on stdin, runs that
many steps of that model (built once, then kept) and prints {"times": [ms, ...]}.
"""
import argparse
import json
import statistics
import sys
import time
import warnings

import torch
import torch.nn as nn
import torch.nn.functional as F


class DemoCNN(nn.Module):
    def __init__(self, qat=False):
        super().__init__()
        self.qat = qat
        self.quant = torch.quantization.QuantStub()
        self.dequant = torch.quantization.DeQuantStub()
        self.relu1, self.relu2, self.relu3 = nn.ReLU(), nn.ReLU(), nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(32)
        self.fc1 = nn.Linear(32 * 7 * 7, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        if self.qat:
            x = self.quant(x)
        x = self.pool(self.relu1(self.bn1(self.conv1(x))))
        x = self.pool(self.relu2(self.bn2(self.conv2(x))))
        x = torch.flatten(x, 1)
        x = self.fc2(self.relu3(self.fc1(x)))
        return self.dequant(x) if self.qat else x


class DemoGRU(nn.Module):
    """src/engine/train/demoGru.ts: rows as 28 time steps of 28 features, Conv1d-BN-ReLU, GRU, Linear."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(28, 32, 3, padding=1)
        self.bn = nn.BatchNorm1d(32)
        self.relu = nn.ReLU()
        self.gru = nn.GRU(32, 64, batch_first=True)
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        seq = x.reshape(-1, 28, 28).transpose(1, 2)
        y = self.relu(self.bn(self.conv(seq))).transpose(1, 2)
        _, h = self.gru(y)
        return self.fc(h.reshape(-1, 64))


def build(model_name, mode, batch):
    """The model in training mode, its optimizer and one fixed batch."""
    torch.manual_seed(0)
    model = (DemoGRU() if model_name == "gru" else DemoCNN(qat=mode == "qat")).train()
    if mode == "qat":
        model.eval()
        torch.quantization.fuse_modules(model, [["conv1", "bn1", "relu1"], ["conv2", "bn2", "relu2"], ["fc1", "relu3"]], inplace=True)
        model.train()
        model.qconfig = torch.quantization.get_default_qat_qconfig("fbgemm")
        torch.quantization.prepare_qat(model, inplace=True)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    x = torch.rand(batch, 1, 28, 28)
    y = torch.randint(0, 10, (batch,))
    return model, opt, x, y


def steps(run, n):
    """n training steps, each one's ms."""
    model, opt, x, y = run
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        loss.item()
        times.append((time.perf_counter() - t0) * 1000)
    return times


def serve(batch):
    print(json.dumps({"torch": torch.__version__}), flush=True)
    runs = {}
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        if req.get("model") == "gru" and req.get("mode") == "qat":
            print(json.dumps({"error": "PyTorch has no eager-mode int8 QAT of nn.GRU"}), flush=True)
            continue
        key = (req["model"], req["mode"])
        if key not in runs:
            runs[key] = build(req["model"], req["mode"], batch)
        torch.set_num_threads(int(req["threads"]))
        print(json.dumps({"times": steps(runs[key], int(req["steps"]))}), flush=True)


def main():
    warnings.filterwarnings("ignore", category=UserWarning)
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--mode", choices=["float", "qat"], default="float")
    ap.add_argument("--model", choices=["cnn", "gru"], default="cnn")
    ap.add_argument("--serve", action="store_true", help="take requests on stdin (the bench's turns)")
    a = ap.parse_args()
    if a.serve:
        serve(a.batch)
        return
    if a.model == "gru" and a.mode == "qat":
        ap.error("PyTorch has no eager-mode int8 QAT of nn.GRU: --model gru takes --mode float only")
    torch.set_num_threads(a.threads)
    times = steps(build(a.model, a.mode, a.batch), a.warmup + a.steps)[a.warmup:]
    print(json.dumps({"torch": torch.__version__, "model": a.model, "mode": a.mode, "threads": a.threads, "median_ms": statistics.median(times), "steps": a.steps}))


if __name__ == "__main__":
    main()
