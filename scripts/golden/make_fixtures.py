#!/usr/bin/env python3
"""Golden values from PyTorch for the engine's layer parity tests (test/engine/parity.test.ts).

Run from the repository root with Debian's python3-torch (1.13; no pip packages needed):

    /usr/bin/python3 scripts/golden/make_fixtures.py

It (re)writes test/fixtures/golden/<family>.json, one file per layer family (conv2d,
conv_transpose2d, conv1d, batchnorm, linear, activation, pooling, misc, cnn_sgd). The output is
deterministic: every case seeds torch from a hash of its name and runs on one thread.

A file is {"generator", "torch", "cases": [case, ...]}. A tensor is {"shape": [...], "data": [...]}
with the values flattened in PyTorch's row-major order (plus "dtype": "int64" for integer tensors).
A layer case holds:
    name            unique id, used as the test's name
    layer           nn class name ("Conv2d", ...) or functional op ("F.softmax", ...)
    args, kwargs    the PyTorch constructor (or functional) arguments, kwargs in snake_case
    mode            "train" or "eval"
    state           the state dict before the forward (all parameters and buffers, PyTorch keys)
    x, g            the input and an upstream gradient of the output's shape
    target          (cross_entropy only) the int class labels
    y               the output, layer(x)
    grads           gradients of sum(y * g) w.r.t. "x" and every parameter (state-dict key)
    state_after     (BatchNorm only) running_mean / running_var / num_batches_tracked after it
The cnn_sgd case instead holds the model's initial state, x, integer labels, and for each of two
SGD(lr 0.1, momentum 0.9) steps on cross_entropy the loss and the state dict after the step.

Inputs, parameters and g are drawn as float32; the reference is then computed in float64 from
those exact values and rounded to float32 when written, so the golden values carry no float32
accumulation error of their own. Floats are written with the shortest decimal that round-trips
to the same float32.
"""
import json
import os
import warnings
import zlib

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "test", "fixtures", "golden")

MODULES = {
    "Conv2d": nn.Conv2d, "ConvTranspose2d": nn.ConvTranspose2d, "Conv1d": nn.Conv1d,
    "BatchNorm2d": nn.BatchNorm2d, "BatchNorm1d": nn.BatchNorm1d, "Linear": nn.Linear,
    "ReLU": nn.ReLU, "ReLU6": nn.ReLU6, "Sigmoid": nn.Sigmoid, "Tanh": nn.Tanh,
    "MaxPool2d": nn.MaxPool2d, "AvgPool2d": nn.AvgPool2d, "AdaptiveAvgPool2d": nn.AdaptiveAvgPool2d,
    "Flatten": nn.Flatten,
}
FUNCTIONAL = {"F.softmax": F.softmax, "F.log_softmax": F.log_softmax, "F.cross_entropy": F.cross_entropy}


# ---- encoding -----------------------------------------------------------------------------------
def enc(t):
    """A tensor as {shape, data}: floats rounded to float32 (shortest round-trip decimal)."""
    t = t.detach().cpu()
    if t.is_floating_point():
        data = [float(str(v)) for v in t.numpy().astype(np.float32).ravel()]
        return {"shape": list(t.shape), "data": data}
    return {"shape": list(t.shape), "data": [int(v) for v in t.numpy().ravel()], "dtype": "int64"}


def enc_state(module):
    return {k: enc(v) for k, v in module.state_dict().items()}


def dumps(obj, indent=0):
    """JSON with one line per tensor and per scalar field, so fixtures stay readable and diffable."""
    pad = " " * indent
    if isinstance(obj, dict) and "data" not in obj:
        if not obj:
            return "{}"
        items = [f'{pad} {json.dumps(k)}: {dumps(v, indent + 1)}' for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, list) and any(isinstance(v, dict) for v in obj):
        return "[\n" + ",\n".join(pad + " " + dumps(v, indent + 1) for v in obj) + "\n" + pad + "]"
    return json.dumps(obj, separators=(",", ":"))


# ---- cases ----------------------------------------------------------------------------------------
def seed(name):
    torch.manual_seed(zlib.crc32(name.encode()))


def randomize_batchnorm(m):
    """Non-trivial affine parameters and running statistics, so every term is exercised."""
    with torch.no_grad():
        if m.affine:
            m.weight.uniform_(0.5, 1.5)
            m.bias.normal_(0, 0.5)
        if m.track_running_stats:
            m.running_mean.normal_(0, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.num_batches_tracked.fill_(3)


def layer_case(name, layer, args, x_shape, kwargs=None, mode="train", x_scale=1.0, num_classes=None, integer_x=False):
    """One layer (or functional op) case; integer_x draws x from {-2, ..., 2} so that values tie."""
    kwargs = kwargs or {}
    seed(name)
    x = torch.randint(-2, 3, x_shape).float() if integer_x else torch.randn(x_shape) * x_scale
    case = {"name": name, "layer": layer, "args": args, "kwargs": kwargs, "mode": mode}
    if layer in FUNCTIONAL:
        fn = FUNCTIONAL[layer]
        module = None
        case["state"] = {}
        if layer == "F.cross_entropy":
            target = torch.randint(0, num_classes, (x_shape[0],))
            case["target"] = enc(target)
            run = lambda xd: fn(xd, target, *args, **kwargs)
        else:
            run = lambda xd: fn(xd, *args, **kwargs)
    else:
        module = MODULES[layer](*args, **kwargs)
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            randomize_batchnorm(module)
        case["state"] = enc_state(module)
        module.double().train(mode == "train")
        run = module

    xd = x.double().requires_grad_()
    y = run(xd)
    g = torch.randn(y.shape)
    (y * g.double()).sum().backward()

    case["x"] = enc(x)
    case["g"] = enc(g)
    case["y"] = enc(y)
    case["grads"] = {"x": enc(xd.grad)}
    if module is not None:
        for k, p in module.named_parameters():
            case["grads"][k] = enc(p.grad)
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.track_running_stats:
            case["state_after"] = {k: enc(v) for k, v in module.state_dict().items() if k not in ("weight", "bias")}
    return case


def conv2d_cases():
    return [
        layer_case("conv2d_3x3_pad1", "Conv2d", [3, 4, 3], [2, 3, 5, 6], {"padding": 1}),
        # 8 rows, k3 s2 p0: the last row and column are read by no window (their dx is 0)
        layer_case("conv2d_stride2", "Conv2d", [3, 4, 3], [2, 3, 8, 8], {"stride": 2}),
        layer_case("conv2d_dilation2", "Conv2d", [3, 4, 3], [2, 3, 7, 7], {"padding": 2, "dilation": 2}),
        layer_case("conv2d_stride2_dilation2", "Conv2d", [3, 4, 3], [2, 3, 9, 9], {"stride": 2, "padding": 1, "dilation": 2}),
        layer_case("conv2d_groups2", "Conv2d", [4, 6, 3], [2, 4, 5, 5], {"padding": 1, "groups": 2}),
        layer_case("conv2d_same", "Conv2d", [3, 4, 3], [2, 3, 5, 6], {"padding": "same"}),
        # even kernel: PyTorch puts the extra padding row/column at the bottom/right
        layer_case("conv2d_same_even_kernel", "Conv2d", [3, 4, [2, 4]], [2, 3, 5, 6], {"padding": "same"}),
        layer_case("conv2d_no_bias", "Conv2d", [3, 4, 3], [2, 3, 5, 5], {"padding": 1, "bias": False}),
        layer_case("conv2d_kernel3x5_pad1x2", "Conv2d", [3, 4, [3, 5]], [2, 3, 5, 7], {"padding": [1, 2]}),
    ]


def conv_transpose2d_cases():
    return [
        layer_case("conv_transpose2d_stride2", "ConvTranspose2d", [3, 4, 3], [2, 3, 4, 4], {"stride": 2, "padding": 1}),
        layer_case("conv_transpose2d_stride2_output_padding1", "ConvTranspose2d", [3, 4, 3], [2, 3, 4, 4],
                   {"stride": 2, "padding": 1, "output_padding": 1}),
        layer_case("conv_transpose2d_groups2", "ConvTranspose2d", [4, 6, 3], [2, 4, 4, 4], {"padding": 1, "groups": 2}),
        layer_case("conv_transpose2d_dilation2", "ConvTranspose2d", [3, 4, 3], [2, 3, 4, 4], {"padding": 1, "dilation": 2}),
        layer_case("conv_transpose2d_stride2x1_no_bias", "ConvTranspose2d", [3, 4, [3, 2]], [2, 3, 3, 4],
                   {"stride": [2, 1], "bias": False}),
        # the seed's ConvTranspose2d(10, 10, 5, 5, 2, 4, 2, True, 2)
        layer_case("conv_transpose2d_seed", "ConvTranspose2d", [10, 10, 5], [1, 10, 3, 3],
                   {"stride": 5, "padding": 2, "output_padding": 4, "groups": 2, "bias": True, "dilation": 2}),
    ]


def conv1d_cases():
    return [
        layer_case("conv1d_plain", "Conv1d", [3, 4, 3], [2, 3, 9], {"padding": 1}),
        layer_case("conv1d_stride2", "Conv1d", [3, 4, 3], [2, 3, 10], {"stride": 2}),
        layer_case("conv1d_groups2", "Conv1d", [4, 6, 3], [2, 4, 7], {"padding": 1, "groups": 2}),
        layer_case("conv1d_dilation2", "Conv1d", [3, 4, 3], [2, 3, 9], {"padding": 2, "dilation": 2}),
    ]


def batchnorm_cases():
    cases = []
    for mode in ("train", "eval"):
        cases += [
            layer_case(f"batchnorm2d_{mode}", "BatchNorm2d", [4], [3, 4, 3, 3], mode=mode),
            layer_case(f"batchnorm2d_{mode}_affine_false", "BatchNorm2d", [4], [3, 4, 3, 3], {"affine": False}, mode=mode),
            layer_case(f"batchnorm1d_2d_{mode}", "BatchNorm1d", [5], [6, 5], mode=mode),
            layer_case(f"batchnorm1d_3d_{mode}", "BatchNorm1d", [4], [3, 4, 5], mode=mode),
        ]
    cases += [
        layer_case("batchnorm2d_train_momentum0.3_eps1e-3", "BatchNorm2d", [4], [3, 4, 3, 3], {"momentum": 0.3, "eps": 1e-3}),
        # momentum=None: cumulative average with factor 1/num_batches_tracked
        layer_case("batchnorm2d_train_momentum_none", "BatchNorm2d", [4], [3, 4, 3, 3], {"momentum": None}),
        layer_case("batchnorm1d_2d_train_momentum0.05", "BatchNorm1d", [5], [6, 5], {"momentum": 0.05}),
        layer_case("batchnorm1d_3d_train_affine_false", "BatchNorm1d", [4], [3, 4, 5], {"affine": False}),
        # without running stats, eval mode normalizes with the batch's statistics too
        layer_case("batchnorm2d_eval_no_running_stats", "BatchNorm2d", [4], [3, 4, 3, 3], {"track_running_stats": False}, mode="eval"),
    ]
    return cases


def linear_cases():
    return [
        layer_case("linear", "Linear", [5, 4], [3, 5]),
        layer_case("linear_no_bias", "Linear", [5, 4], [3, 5], {"bias": False}),
        layer_case("linear_3d_input", "Linear", [5, 4], [2, 3, 5]),
    ]


def activation_cases():
    return [
        layer_case("relu", "ReLU", [], [2, 3, 4, 4]),
        layer_case("relu6", "ReLU6", [], [2, 3, 4, 4], x_scale=4.0),  # values on both sides of 0 and 6
        layer_case("sigmoid", "Sigmoid", [], [2, 3, 4, 4], x_scale=2.0),
        layer_case("tanh", "Tanh", [], [2, 3, 4, 4], x_scale=2.0),
    ]


def pooling_cases():
    return [
        layer_case("maxpool2d_k2", "MaxPool2d", [2], [2, 3, 6, 6]),
        layer_case("maxpool2d_k2_odd_input", "MaxPool2d", [2], [2, 3, 5, 7]),
        layer_case("maxpool2d_k3_s2_p1", "MaxPool2d", [3], [2, 3, 7, 7], {"stride": 2, "padding": 1}),
        layer_case("maxpool2d_k2_ceil_mode", "MaxPool2d", [2], [2, 3, 5, 5], {"ceil_mode": True}),
        layer_case("maxpool2d_k3_s2_ceil_mode", "MaxPool2d", [3], [2, 3, 6, 6], {"stride": 2, "ceil_mode": True}),
        # tied maxima: PyTorch sends a window's gradient to the first maximal element only
        layer_case("maxpool2d_k2_ties", "MaxPool2d", [2], [1, 2, 4, 4], integer_x=True),
        layer_case("maxpool2d_k3_s2_p1_ties", "MaxPool2d", [3], [1, 2, 5, 5], {"stride": 2, "padding": 1}, integer_x=True),
        layer_case("avgpool2d_k2", "AvgPool2d", [2], [2, 3, 6, 6]),
        layer_case("avgpool2d_k3_s1_p1", "AvgPool2d", [3], [2, 3, 5, 5], {"stride": 1, "padding": 1}),
        layer_case("adaptive_avgpool2d_1", "AdaptiveAvgPool2d", [1], [2, 3, 5, 7]),
        layer_case("adaptive_avgpool2d_2x3", "AdaptiveAvgPool2d", [[2, 3]], [2, 3, 5, 7]),
    ]


def misc_cases():
    return [
        layer_case("flatten", "Flatten", [], [2, 3, 2, 3]),
        layer_case("softmax_2d_dim1", "F.softmax", [], [4, 5], {"dim": 1}, x_scale=2.0),
        layer_case("softmax_4d_dim1", "F.softmax", [], [2, 3, 2, 2], {"dim": 1}, x_scale=2.0),
        layer_case("log_softmax_2d_dim1", "F.log_softmax", [], [4, 5], {"dim": 1}, x_scale=2.0),
        layer_case("log_softmax_4d_dim1", "F.log_softmax", [], [2, 3, 2, 2], {"dim": 1}, x_scale=2.0),
        layer_case("cross_entropy_mean", "F.cross_entropy", [], [6, 5], x_scale=2.0, num_classes=5),
    ]


def cnn_sgd_cases():
    """conv-bn-relu-maxpool-flatten-linear, two SGD(lr 0.1, momentum 0.9) steps on one batch."""
    name = "cnn_sgd"
    seed(name)
    model = nn.Sequential()
    model.add_module("conv", nn.Conv2d(3, 4, 3, padding=1))
    model.add_module("bn", nn.BatchNorm2d(4))
    model.add_module("relu", nn.ReLU())
    model.add_module("pool", nn.MaxPool2d(2))
    model.add_module("flatten", nn.Flatten())
    model.add_module("fc", nn.Linear(4 * 3 * 3, 5))
    x = torch.randn(4, 3, 6, 6)
    labels = torch.randint(0, 5, (4,))
    case = {
        "name": name,
        "model": "conv(3→4, k3 p1) bn relu maxpool(2) flatten fc(36→5)",
        "sgd": {"lr": 0.1, "momentum": 0.9},
        "state": enc_state(model), "x": enc(x), "target": enc(labels), "steps": [],
    }
    model.double().train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for _ in range(2):
        opt.zero_grad()
        loss = F.cross_entropy(model(x.double()), labels)
        loss.backward()
        opt.step()
        case["steps"].append({"loss": float(str(np.float32(loss.item()))), "state_after": enc_state(model)})
    return [case]


FAMILIES = {
    "conv2d": conv2d_cases, "conv_transpose2d": conv_transpose2d_cases, "conv1d": conv1d_cases,
    "batchnorm": batchnorm_cases, "linear": linear_cases, "activation": activation_cases,
    "pooling": pooling_cases, "misc": misc_cases, "cnn_sgd": cnn_sgd_cases,
}


def main():
    torch.set_num_threads(1)
    # conv2d_same_even_kernel is meant to exercise exactly that asymmetric padding
    warnings.filterwarnings("ignore", message="Using padding='same' with even kernel lengths")
    os.makedirs(OUT_DIR, exist_ok=True)
    total = 0
    for family, make in FAMILIES.items():
        doc = {"generator": "scripts/golden/make_fixtures.py", "torch": torch.__version__, "cases": make()}
        text = dumps(doc) + "\n"
        path = os.path.join(OUT_DIR, f"{family}.json")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        total += len(text)
        print(f"{os.path.relpath(path)}: {len(doc['cases'])} cases, {len(text)} bytes")
    print(f"total {total} bytes")


if __name__ == "__main__":
    main()
