#!/usr/bin/env python3
"""Writes test/fixtures/reprs.json: PyTorch's printed form of the seed's models and of single
layers with varied options, the reference for the engine's Module.toString().

Run with Debian's python3-torch:  /usr/bin/python3 scripts/golden/make_reprs.py
Each entry's key names the case; test/engine/module.test.ts builds the same module and compares.
"""
import json
import os

import torch.nn as nn

from demo_cnn import DemoCNN  # scripts/golden/demo_cnn.py


class ModelA(nn.Module):  # seed §3.1
    def __init__(self):
        super().__init__()
        self.transpose = nn.ConvTranspose2d(10, 10, 5, 5, 2, 4, 2, True, 2)
        self.conv = nn.Conv2d(10, 10, kernel_size=3, stride=1, padding=1, bias=True, groups=2)
        self.bn = nn.BatchNorm2d(10)
        self.fc = nn.Linear(10 * 254 * 254, 100)


class ModelB(nn.Module):  # seed §3.2
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(10, 10, kernel_size=3, stride=1, padding=1, bias=True)
        self.bn = nn.BatchNorm2d(10)
        self.relu = nn.ReLU()
        self.conv1 = nn.Conv2d(10, 10, kernel_size=3, stride=1, padding=1, bias=True)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(10, 10, kernel_size=3, stride=1, padding=1, bias=True)
        self.bn1 = nn.BatchNorm2d(10)
        self.relu2 = nn.ReLU()
        self.fc = nn.Linear(250, 100)


cases = {
    "ModelA": ModelA(),
    "ModelB": ModelB(),
    "DemoCNN": DemoCNN(),
    "conv2d_nobias_dil": nn.Conv2d(3, 8, (3, 5), stride=2, padding=(1, 2), dilation=(2, 1), bias=False),
    "conv2d_same": nn.Conv2d(4, 4, 3, padding="same"),
    "conv1d": nn.Conv1d(4, 6, 3, stride=2, padding=1, groups=2),
    "convT_plain": nn.ConvTranspose2d(4, 2, 3),
    "bn1d_custom": nn.BatchNorm1d(7, eps=1e-3, momentum=0.01, affine=False, track_running_stats=False),
    "bn2d_none_momentum": nn.BatchNorm2d(3, momentum=None),
    "linear_nobias": nn.Linear(5, 3, bias=False),
    "relu6": nn.ReLU6(),
    "relu_inplace": nn.ReLU(inplace=True),
    "sigmoid": nn.Sigmoid(),
    "tanh": nn.Tanh(),
    "maxpool_full": nn.MaxPool2d((3, 3), stride=2, padding=1, ceil_mode=True),
    "avgpool": nn.AvgPool2d(3, stride=1, padding=1),
    "adaptive": nn.AdaptiveAvgPool2d((2, 3)),
    "flatten": nn.Flatten(),
    "dropout": nn.Dropout(0.25),
    "identity": nn.Identity(),
    "softmax": nn.Softmax(dim=1),
    "sequential": nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Sequential(nn.Flatten(), nn.Linear(2, 2))),
    "modulelist": nn.ModuleList([nn.ReLU(), nn.Linear(2, 3)]),
}

out = os.path.join(os.path.dirname(__file__), "..", "..", "test", "fixtures", "reprs.json")
with open(out, "w") as f:
    json.dump({k: repr(v) for k, v in cases.items()}, f, indent=1)
    f.write("\n")
print("wrote", os.path.normpath(out))
