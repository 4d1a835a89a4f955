#!/usr/bin/env python3
"""ONNX import fixtures: small PyTorch models exported both ways PyTorch users export them.

Run from the repository root with Debian's python3-torch and python3-onnx:

    /usr/bin/python3 scripts/golden/make_onnx_fixtures.py

For every model below it writes, under test/fixtures/onnx/:
    <name>.default.onnx    torch.onnx.export(model.eval(), ...) with its defaults: BatchNorm folded
                           into Conv, initializers renamed (onnx::Conv_55), module paths only in
                           node names (/layer1/layer1.0/conv1/Conv)
    <name>.preserve.onnx   training=TrainingMode.PRESERVE, do_constant_folding=False: BatchNormalization
                           kept, initializers named like the state dict (layer1.0.conv1.weight), equal
                           initializers deduplicated through Identity nodes
and one <name>.json:
    name, opset, dynamic (whether dim 0 was exported as a dynamic axis)
    input, output          the test input and PyTorch's eval output ({shape, data}, row-major)
    modules                PyTorch's named_modules (path, class name), root excluded
    state_dict_keys        PyTorch's state_dict keys, in order
The models are random-init with non-trivial BatchNorm statistics, seeded from their names, so the
output is deterministic. Weights are float32; the .onnx files are kept small on purpose.
"""
import json
import os
import warnings
import zlib

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F

from demo_cnn import DemoCNN  # scripts/golden/demo_cnn.py

torch.set_num_threads(1)
warnings.filterwarnings("ignore")
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "test", "fixtures", "onnx")


def enc(t):
    t = t.detach().cpu()
    return {"shape": list(t.shape), "data": [float(str(v)) for v in t.numpy().astype(np.float32).ravel()]}


def seed(name):
    torch.manual_seed(zlib.crc32(name.encode()))


def randomize_bn(m, keep_affine=False):
    """Running statistics (and, unless keep_affine, gamma/beta) away from their defaults."""
    for mod in m.modules():
        if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
            c = mod.num_features
            mod.running_mean.copy_(torch.randn(c) * 0.2)
            mod.running_var.copy_(torch.rand(c) * 0.8 + 0.4)
            if not keep_affine:
                mod.weight.data.copy_(torch.rand(c) * 0.8 + 0.6)
                mod.bias.data.copy_(torch.randn(c) * 0.1)


# ---- the models ---------------------------------------------------------------------------------
class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNetBlock(nn.Module):
    """A ResNet-style stem and two basic blocks (residual adds; the second downsamples)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = nn.Sequential(BasicBlock(8, 8), BasicBlock(8, 16, stride=2))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer1(x)
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)


class GroupedTranspose(nn.Module):
    """Grouped conv + BN, then grouped and strided ConvTranspose2d layers."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 8, 3, padding=1, groups=2)
        self.bn = nn.BatchNorm2d(8)
        self.act = nn.ReLU()
        self.up = nn.ConvTranspose2d(8, 4, 3, stride=2, padding=1, output_padding=1, groups=2)
        self.act2 = nn.ReLU6()
        self.up2 = nn.ConvTranspose2d(4, 2, 2, stride=2, dilation=1)
        self.pool = nn.AvgPool2d(2)

    def forward(self, x):
        x = self.act(self.bn(self.conv(x)))
        x = self.act2(self.up(x))
        return self.pool(self.up2(x))


class ConcatNet(nn.Module):
    """torch.cat of branches; conv_a's output feeds both bn_a and the cat (it must stay unfused)."""

    def __init__(self):
        super().__init__()
        self.conv_a = nn.Conv2d(3, 4, 3, padding=1)
        self.bn_a = nn.BatchNorm2d(4)
        self.conv_b = nn.Conv2d(3, 4, 1)
        self.bn_b = nn.BatchNorm2d(4)
        self.conv_c = nn.Conv2d(12, 6, 3, stride=2, padding=1)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x):
        a = self.conv_a(x)
        b = F.relu(self.bn_b(self.conv_b(x)))
        y = torch.cat([F.relu(self.bn_a(a)), b, a], dim=1)
        y = self.conv_c(y)
        return self.sigmoid(y) * 2.0 - 0.5


class GemmMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(20, 32)
        self.act1 = nn.ReLU()
        self.fc2 = nn.Linear(32, 16)
        self.act2 = nn.Sigmoid()
        self.fc3 = nn.Linear(16, 5)
        self.softmax = nn.Softmax(dim=1)

    def forward(self, x):
        return self.softmax(self.fc3(self.act2(self.fc2(self.act1(self.fc1(x))))))


class ViewNet(nn.Module):
    """Reshapes with x.view(n, c*h*w): Shape/Gather/Unsqueeze/Concat feeding Reshape."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, stride=2)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4 * 6 * 6, 8)

    def forward(self, x):
        x = F.relu(self.bn(self.conv(x)))
        n, c, h, w = x.shape
        x = x.view(n, c * h * w)
        return self.fc(x) / 4.0 + 1.0


# name: (class, input shape, opset, dynamic batch, keep BN gamma/beta at their defaults)
MODELS = {
    "demo_cnn": (DemoCNN, [2, 1, 28, 28], 13, True, False),
    "resnet_block": (ResNetBlock, [2, 3, 16, 16], 13, True, True),
    "grouped_transpose": (GroupedTranspose, [2, 4, 6, 6], 17, False, False),
    "concat": (ConcatNet, [2, 3, 8, 8], 14, True, False),
    "gemm_mlp": (GemmMLP, [4, 20], 11, True, False),
    "view": (ViewNet, [3, 1, 14, 14], 11, True, False),
}


def export(model, x, path, opset, dynamic, preserve):
    kwargs = dict(input_names=["input"], output_names=["output"], opset_version=opset)
    if dynamic:
        kwargs["dynamic_axes"] = {"input": {0: "batch"}, "output": {0: "batch"}}
    if preserve:
        kwargs["training"] = torch.onnx.TrainingMode.PRESERVE
        kwargs["do_constant_folding"] = False
    torch.onnx.export(model, (x,), path, **kwargs)
    onnx.checker.check_model(onnx.load(path))


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, (cls, shape, opset, dynamic, keep_affine) in MODELS.items():
        seed(name)
        model = cls()
        with torch.no_grad():
            randomize_bn(model, keep_affine)
        model.eval()
        x = torch.randn(*shape)
        with torch.no_grad():
            y = model(x)
        for mode in ("default", "preserve"):
            export(model, x, os.path.join(OUT, f"{name}.{mode}.onnx"), opset, dynamic, mode == "preserve")
        meta = {
            "name": name, "opset": opset, "dynamic": dynamic,
            "input": enc(x), "output": enc(y),
            "modules": [[p, type(m).__name__] for p, m in model.named_modules() if p],
            "state_dict_keys": list(model.state_dict().keys()),
        }
        with open(os.path.join(OUT, f"{name}.json"), "w") as f:
            json.dump(meta, f, separators=(",", ":"))
        print(name, "ok")


if __name__ == "__main__":
    main()
