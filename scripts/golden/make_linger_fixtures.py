#!/usr/bin/env python3
"""Golden values for linger's float-stage layers (SPEC §4), computed with plain PyTorch ops.

Run from the repository root with Debian's python3-torch:

    /usr/bin/python3 scripts/golden/make_linger_fixtures.py

Writes test/fixtures/golden/linger_float.json (format as make_fixtures.py: tensors are
{shape, data} in row-major order). Each case: "kind" (convbn | normalize), the conv/bn/linear
constructor arguments, the clamp values, mode, state dict before (engine key names), x, g,
y = layer(x), grads of sum(y*g) w.r.t. x and every parameter, and state_after (running stats).

The reference semantics (SPEC §4.1), for NormalizeConvBN{2d,1d,Transpose2d} in training:
    c = conv(x, W, b); mu, var_b = batch mean / biased variance per channel
    y_u = gamma (c - mu) / sqrt(var_b + eps) + beta                         (unfused)
    s = gamma / sqrt(var_b + eps); W' = clampW(W * s per out channel); b' = clampB((b - mu) s + beta)
    y_f = conv(x, W', b')                                                     (fused, what a chip computes)
    y = clampD(y_u + (y_f - y_u).detach())
In eval: the fold uses running_mean / running_var. Normalize* layers clamp weight, bias and output
with ordinary (straight-through inside, zero outside) gradients.
"""
import json
import os
import zlib

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(1)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "test", "fixtures", "golden", "linger_float.json")


def enc(t):
    t = t.detach().cpu()
    if t.is_floating_point():
        return {"shape": list(t.shape), "data": [float(str(v)) for v in t.numpy().astype(np.float32).ravel()]}
    return {"shape": list(t.shape), "data": [int(v) for v in t.numpy().ravel()], "dtype": "int64"}


def cl(t, v):
    return t if v is None else t.clamp(-v, v)


def seed(name):
    torch.manual_seed(zlib.crc32(name.encode()))


def conv_apply(kind, conv, x, w, b):
    if kind == "Conv2d":
        return F.conv2d(x, w, b, conv.stride, conv.padding, conv.dilation, conv.groups)
    if kind == "Conv1d":
        return F.conv1d(x, w, b, conv.stride, conv.padding, conv.dilation, conv.groups)
    return F.conv_transpose2d(x, w, b, conv.stride, conv.padding, conv.output_padding, conv.groups, conv.dilation)


def scale_weight(kind, conv, w, s):
    if kind == "ConvTranspose2d":  # [in, out/g, k, k]: out channel g*(out/g)+j is dim 1 of group g's rows
        g = conv.groups
        per_row = s.reshape(g, 1, -1).expand(g, w.shape[0] // g, w.shape[1]).reshape(w.shape[0], w.shape[1])
        return w * per_row.reshape(w.shape[0], w.shape[1], *([1] * (w.dim() - 2)))
    return w * s.reshape(-1, *([1] * (w.dim() - 1)))


def convbn_case(name, kind, conv_args, conv_kwargs, bn_kind, x_shape, clamps, mode):
    seed(name)
    conv_cls = {"Conv2d": nn.Conv2d, "Conv1d": nn.Conv1d, "ConvTranspose2d": nn.ConvTranspose2d}[kind]
    conv = conv_cls(*conv_args, **conv_kwargs).double()
    bn = {"BatchNorm2d": nn.BatchNorm2d, "BatchNorm1d": nn.BatchNorm1d}[bn_kind](conv.out_channels).double()
    with torch.no_grad():  # non-trivial BN state
        bn.weight.copy_(torch.rand(bn.num_features) + 0.5)
        bn.bias.copy_(torch.randn(bn.num_features) * 0.3)
        bn.running_mean.copy_(torch.randn(bn.num_features) * 0.2)
        bn.running_var.copy_(torch.rand(bn.num_features) + 0.5)
        for p in list(conv.parameters()) + list(bn.parameters()) + [bn.running_mean, bn.running_var]:
            p.copy_(p.float().double())
    x = torch.randn(*x_shape).float().double().requires_grad_(True)
    state = {f"conv.{k}": enc(v) for k, v in conv.state_dict().items()}
    state.update({f"bn.{k}": enc(v) for k, v in bn.state_dict().items()})
    cw, cb, cd = clamps["weight"], clamps["bias"], clamps["data"]
    b = conv.bias if conv.bias is not None else torch.zeros(conv.out_channels, dtype=torch.float64)
    if mode == "train":
        c = conv_apply(kind, conv, x, conv.weight, conv.bias)
        dims = [0] + list(range(2, c.dim()))
        mu = c.mean(dims)
        var_b = c.var(dims, unbiased=False)
        n = c.numel() / c.shape[1]
        shape = [1, -1] + [1] * (c.dim() - 2)
        y_u = bn.weight.reshape(shape) * (c - mu.reshape(shape)) / torch.sqrt(var_b.reshape(shape) + bn.eps) + bn.bias.reshape(shape)
        s = bn.weight / torch.sqrt(var_b + bn.eps)
        w_f = cl(scale_weight(kind, conv, conv.weight, s), cw)
        b_f = cl((b - mu) * s + bn.bias, cb)
        y_f = conv_apply(kind, conv, x, w_f, b_f)
        y = cl(y_u + (y_f - y_u).detach(), cd)
        with torch.no_grad():
            bn.running_mean.mul_(0.9).add_(0.1 * mu)
            bn.running_var.mul_(0.9).add_(0.1 * var_b * n / (n - 1))
            bn.num_batches_tracked += 1
    else:
        s = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        w_f = cl(scale_weight(kind, conv, conv.weight, s), cw)
        b_f = cl((b - bn.running_mean) * s + bn.bias, cb)
        y = cl(conv_apply(kind, conv, x, w_f, b_f), cd)
    g = torch.randn(*y.shape).float().double()
    params = {f"conv.{k}": p for k, p in conv.named_parameters()}
    params.update({f"bn.{k}": p for k, p in bn.named_parameters()})
    grads = torch.autograd.grad((y * g).sum(), [x] + list(params.values()), allow_unused=True)
    out = {
        "name": name, "kind": "convbn", "conv": kind, "bn": bn_kind, "args": list(conv_args), "kwargs": conv_kwargs,
        "clamps": clamps, "mode": mode, "state": state, "x": enc(x), "g": enc(g), "y": enc(y),
        "grads": {k: enc(v if v is not None else torch.zeros_like(p)) for (k, p), v in zip([("x", x)] + list(params.items()), grads)},
    }
    if mode == "train":
        out["state_after"] = {f"bn.{k}": enc(v) for k, v in bn.state_dict().items() if k.startswith(("running", "num"))}
    return out


def normalize_case(name, layer, args, kwargs, x_shape, clamps, mode="train"):
    seed(name)
    cls = {"Conv2d": nn.Conv2d, "Linear": nn.Linear, "BatchNorm2d": nn.BatchNorm2d, "ConvTranspose2d": nn.ConvTranspose2d}[layer]
    m = cls(*args, **kwargs).double()
    with torch.no_grad():
        for p in m.parameters():
            p.copy_((p * 3).float().double())  # weights big enough for the clamps to bite
    x = (torch.randn(*x_shape) * 2).float().double().requires_grad_(True)
    state = {k: enc(v) for k, v in m.state_dict().items()}
    cw, cb, cd = clamps["weight"], clamps["bias"], clamps["data"]
    if layer == "Conv2d":
        y = F.conv2d(x, cl(m.weight, cw), cl(m.bias, cb), m.stride, m.padding, m.dilation, m.groups)
    elif layer == "ConvTranspose2d":
        y = F.conv_transpose2d(x, cl(m.weight, cw), cl(m.bias, cb), m.stride, m.padding, m.output_padding, m.groups, m.dilation)
    elif layer == "Linear":
        y = F.linear(x, cl(m.weight, cw), cl(m.bias, cb))
    else:
        y = F.batch_norm(x, m.running_mean, m.running_var, cl(m.weight, cw), cl(m.bias, cb), mode == "train", m.momentum, m.eps)
    y = cl(y, cd)
    g = torch.randn(*y.shape).float().double()
    params = dict(m.named_parameters())
    grads = torch.autograd.grad((y * g).sum(), [x] + list(params.values()))
    return {
        "name": name, "kind": "normalize", "layer": layer, "args": list(args), "kwargs": kwargs, "clamps": clamps, "mode": mode,
        "state": state, "x": enc(x), "g": enc(g), "y": enc(y),
        "grads": {k: enc(v) for k, v in zip(["x"] + list(params.keys()), grads)},
    }


NONE = {"weight": None, "bias": None, "data": None}
CL = {"weight": 0.25, "bias": 0.2, "data": 1.5}
cases = [
    convbn_case("convbn2d_train_noclamp", "Conv2d", [4, 6, 3], {"padding": 1}, "BatchNorm2d", [4, 4, 5, 5], NONE, "train"),
    convbn_case("convbn2d_train_noclamp_groups_nobias", "Conv2d", [4, 6, 3], {"padding": 1, "groups": 2, "bias": False}, "BatchNorm2d", [3, 4, 5, 5], NONE, "train"),
    convbn_case("convbn2d_train_clamp", "Conv2d", [4, 6, 3], {"padding": 1}, "BatchNorm2d", [4, 4, 5, 5], CL, "train"),
    convbn_case("convbn2d_eval_clamp", "Conv2d", [4, 6, 3], {"padding": 1, "stride": 2}, "BatchNorm2d", [2, 4, 7, 7], CL, "eval"),
    convbn_case("convbn2d_eval_noclamp", "Conv2d", [4, 6, 3], {"padding": 1}, "BatchNorm2d", [2, 4, 5, 5], NONE, "eval"),
    convbn_case("convtbn2d_train_clamp_groups", "ConvTranspose2d", [4, 6, 3], {"stride": 2, "groups": 2}, "BatchNorm2d", [3, 4, 3, 3], CL, "train"),
    convbn_case("convtbn2d_eval_clamp", "ConvTranspose2d", [4, 6, 3], {"stride": 2}, "BatchNorm2d", [2, 4, 3, 3], CL, "eval"),
    convbn_case("convbn1d_train_clamp", "Conv1d", [4, 6, 3], {"padding": 1}, "BatchNorm1d", [4, 4, 9], CL, "train"),
    normalize_case("nconv2d_clamp", "Conv2d", [3, 5, 3], {"padding": 1}, [2, 3, 5, 5], {"weight": 0.3, "bias": 0.1, "data": 1.0}),
    normalize_case("nconvt2d_clamp", "ConvTranspose2d", [3, 4, 3], {"stride": 2}, [2, 3, 3, 3], {"weight": 0.3, "bias": None, "data": 1.0}),
    normalize_case("nlinear_clamp", "Linear", [6, 4], {}, [5, 6], {"weight": 0.3, "bias": 0.1, "data": 1.0}),
    normalize_case("nbn2d_clamp_train", "BatchNorm2d", [3], {}, [4, 3, 4, 4], {"weight": 0.8, "bias": 0.5, "data": 1.0}),
]
with open(OUT, "w") as f:
    json.dump({"generator": "scripts/golden/make_linger_fixtures.py", "torch": torch.__version__, "cases": cases}, f, separators=(",", ":"))
    f.write("\n")
print("wrote", os.path.normpath(OUT), len(cases), "cases")
