#!/usr/bin/env python3
"""Golden fixtures of the REAL linger 1.1.1 (commit 89247220, tag v1.1.1) for the engine's conformance test.

    /usr/bin/python3 scripts/conformance/linger_make_fixtures.py [case ...]

linger is taken from $LINGER_SRC, else extracted from ../shared/reference/linger-v1.1.1.tar.gz into a
temporary folder; ../shared/reference/linger (linger_compat, the lingerext stand-in) goes last on
sys.path. Every case runs in its own interpreter (linger patches torch globally). For each model of
linger_models.py: seeded float weights (BN statistics made non-trivial), trace_layers (fuse_bn) ->
normalize_layers (output clamp only: weight/bias normalization needs linger's missing compiled
extension) -> init -> load_state_dict(float weights), STEPS SGD steps on fixed inputs/labels, eval.
Writes test/fixtures/conformance/<model>.json: print(model) and state-dict keys/shapes/dtypes at
every stage, per step the training forward's output codes, the loss, every parameter's gradient
and every buffer after the step, eval output codes, and the final state dict (values).
"""
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
OUT = os.path.join(ROOT, "test", "fixtures", "conformance")
REF = os.environ.get("LINGER_REF", os.path.abspath(os.path.join(ROOT, "..", "shared", "reference")))
LINGER_COMMIT = "89247220"
STEPS = 3
LR = 0.05
CLAMP = 2  # an int, as linger's own defaults (normalize_weight_value=8): Python prints it as 2
sys.path.insert(0, HERE)
from linger_models import MODELS, build_net  # noqa: E402


def linger_src():
    src = os.environ.get("LINGER_SRC")
    if src:
        return src
    tmp = tempfile.mkdtemp(prefix="linger-src-")
    with tarfile.open(os.path.join(REF, "linger-v1.1.1.tar.gz")) as t:
        t.extractall(tmp)
    return os.path.join(tmp, "linger-v1.1.1")


def f32(v):
    import numpy as np
    return [float(str(x)) for x in np.asarray(v, dtype=np.float32).ravel()]


def tensor(t):
    t = t.detach().cpu()
    if t.is_floating_point():
        return {"shape": list(t.shape), "dtype": str(t.dtype).replace("torch.", ""), "data": f32(t.float().numpy())}
    return {"shape": list(t.shape), "dtype": str(t.dtype).replace("torch.", ""), "data": [int(x) for x in t.numpy().ravel()]}


def meta(sd):
    return [[k, list(v.shape), str(v.dtype).replace("torch.", "")] for k, v in sd.items()]


def run_case(name):
    sys.path.insert(0, linger_src())
    sys.path.append(os.path.join(REF, "linger"))
    from linger_compat import linger  # noqa: F401
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    torch.set_num_threads(1)
    spec = MODELS[name]

    torch.manual_seed(zlib.crc32(name.encode()))
    model = build_net(spec, torch, nn, linger)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
                m.weight.copy_(torch.rand(m.num_features) + 0.5)
                m.bias.copy_(torch.randn(m.num_features) * 0.3)
                m.running_mean.copy_(torch.randn(m.num_features) * 0.2)
                m.running_var.copy_(torch.rand(m.num_features) + 0.5)
    float_sd = {k: v.clone() for k, v in model.state_dict().items()}
    if spec.get("ids"):
        x = torch.randint(0, spec["ids"], spec["input"])
        x_eval = torch.randint(0, spec["ids"], spec["input"])
    else:
        x = torch.randn(*spec["input"])
        x_eval = torch.randn(*spec["input"])
    model.eval()
    with torch.no_grad():
        out_shape = list(model(x).shape)
    model.train()
    classes = spec.get("classes")
    labels = torch.randint(0, classes, (spec["input"][0],)) if classes else None
    target = None if classes else torch.randn(*out_shape)

    stages = {}

    def stage(key):
        stages[key] = {"print": str(model), "state": meta(model.state_dict())}

    stage("float")
    linger.trace_layers(model, model, x, fuse_bn=True)
    stage("traced")
    model = linger.normalize_layers(model, normalize_weight_value=None, normalize_bias_value=None, normalize_output_value=CLAMP)
    stage("normalized")
    model = linger.init(model)
    stage("init")
    res = model.load_state_dict(float_sd)
    stage("loaded")
    loaded = {"missing": list(res.missing_keys), "unexpected": list(res.unexpected_keys)}
    initial = {k: tensor(v) for k, v in model.state_dict().items()}

    def codes(out):
        s = getattr(out, "scale_data", None)
        if s is None:
            return {"scale": None, "values": f32(out.detach().numpy())}
        s = float(s)
        return {"scale": s, "codes": [int(v) for v in torch.round(out.detach() * s).numpy().ravel().tolist()]}

    def loss_of(out):
        if classes:
            return F.cross_entropy(out, labels)
        return F.mse_loss(out, target)

    opt = torch.optim.SGD(model.parameters(), lr=LR)
    steps = []
    for _ in range(STEPS):
        opt.zero_grad()
        out = model(x)
        loss = loss_of(out)
        loss.backward()
        grads = {n: tensor(p.grad) for n, p in model.named_parameters() if p.grad is not None}
        opt.step()
        buffers = {n: tensor(b) for n, b in model.named_buffers()}
        steps.append({"output": codes(out), "shape": list(out.shape), "loss": float(loss.item()), "grads": grads, "buffers": buffers})
    model.eval()
    with torch.no_grad():
        ev = [codes(model(x)), codes(model(x_eval))]
    eval_buffers = {n: tensor(b) for n, b in model.named_buffers()}
    stage("eval")
    final = {k: tensor(v) for k, v in model.state_dict().items()}
    fixture = {
        "model": name, "script": "scripts/conformance/linger_make_fixtures.py", "linger": f"v1.1.1 ({LINGER_COMMIT})",
        "torch": torch.__version__, "spec": spec, "steps": STEPS, "lr": LR, "clamp": CLAMP,
        "float_state": {k: tensor(v) for k, v in float_sd.items()},
        "x": tensor(x), "x_eval": tensor(x_eval), "labels": None if labels is None else [int(v) for v in labels],
        "target": None if target is None else tensor(target),
        "stages": stages, "load": loaded, "initial_state": initial, "train": steps, "eval": ev, "eval_buffers": eval_buffers,
        "final_state": final,
    }
    with open(os.path.join(OUT, f"{name}.json"), "w") as f:
        json.dump(fixture, f, separators=(",", ":"))
        f.write("\n")


def main(argv):
    if len(argv) >= 2 and argv[0] == "--case":
        run_case(argv[1])
        return 0
    os.makedirs(OUT, exist_ok=True)
    env = dict(os.environ, LINGER_SRC=linger_src())
    failed = []
    for name in argv or list(MODELS):
        r = subprocess.run([sys.executable, os.path.abspath(__file__), "--case", name], env=env)
        print(("ok   " if r.returncode == 0 else "FAIL ") + name, flush=True)
        if r.returncode:
            failed.append(name)
    if failed:
        print("failed:", ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
