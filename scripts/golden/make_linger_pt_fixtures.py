#!/usr/bin/env python3
"""Checkpoints a user trains with the REAL linger 1.1.1, as `torch.save` files: the reference for pairing
a linger `.pt` with its PyTorch model file (test/fixtures/python/linger_net.py) in the studio
(docs/python-models.md, "Checkpoints from real linger").

    LINGER_SRC=<extracted linger-v1.1.1> /usr/bin/python3 scripts/golden/make_linger_pt_fixtures.py

The user's path, on random data (seeded): float training; then a new model, `trace_layers`
(fuse_bn=True), the float state loaded, training (the traced stage); then a new model,
`trace_layers` + `init`, the float state loaded after the last transform, QAT. Each stage's
`state_dict()` is saved with torch.save as test/fixtures/python/linger_net/{float,traced,fixed}.pt;
linger_net.linger.json keeps the eval input, linger's eval outputs at the fixed stage (as int8
codes with their scale) and its printouts of the traced and the fixed model. Runs in its own interpreter (linger
patches torch).

    /usr/bin/python3 scripts/golden/make_linger_pt_fixtures.py --check ours.pt

is the other direction (test/engine/python/lingerCheckpoint.test.ts): real linger's fixed-stage
model loads `ours.pt` (written by the engine) with strict=True and prints its eval codes on the
fixture's input as JSON.
"""
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
REF = os.environ.get("LINGER_REF", os.path.abspath(os.path.join(ROOT, "..", "shared", "reference")))
sys.path.insert(0, os.path.join(ROOT, "scripts", "conformance"))
from linger_make_fixtures import linger_src  # noqa: E402 (the conformance fixtures' extraction of linger)

MODEL = os.path.join(ROOT, "test", "fixtures", "python", "linger_net.py")
OUT = os.path.join(ROOT, "test", "fixtures", "python", "linger_net")
STEPS = 3
LR = 0.05


def f32(t):
    return [float(v) for v in t.detach().reshape(-1).tolist()]


def linger_and_model():
    """The real linger (linger first on sys.path, linger_compat last) and the user's model module."""
    sys.path.insert(0, linger_src())
    sys.path.append(os.path.join(REF, "linger"))
    from linger_compat import linger
    import importlib.util

    spec = importlib.util.spec_from_file_location("linger_net", MODEL)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return linger, mod


def run():
    linger, mod = linger_and_model()
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(1)
    torch.manual_seed(0)
    x = torch.randn(8, 1, 12, 12)
    labels = torch.randint(0, 5, (8,))
    x_eval = torch.randn(4, 1, 12, 12)

    def train(model):
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=LR)
        for _ in range(STEPS):
            opt.zero_grad()
            F.cross_entropy(model(x), labels).backward()
            opt.step()

    model = mod.create_model()
    train(model)
    float_sd = {k: v.clone() for k, v in model.state_dict().items()}
    torch.save(model.state_dict(), os.path.join(OUT, "float.pt"))

    model = mod.create_model()
    linger.trace_layers(model, model, x, fuse_bn=True)
    traced_print = str(model)
    model.load_state_dict(float_sd)
    train(model)
    torch.save(model.state_dict(), os.path.join(OUT, "traced.pt"))

    model = mod.create_model()
    linger.trace_layers(model, model, x, fuse_bn=True)
    model = linger.init(model)
    res = model.load_state_dict(float_sd, strict=False)
    train(model)
    torch.save(model.state_dict(), os.path.join(OUT, "fixed.pt"))
    model.eval()
    with torch.no_grad():
        out = model(x_eval)
    scale = float(out.scale_data) if getattr(out, "scale_data", None) is not None else None
    record = {
        "linger": "1.1.1 (commit 89247220)",
        "torch": torch.__version__,
        "script": "scripts/golden/make_linger_pt_fixtures.py",
        "steps": STEPS,
        "lr": LR,
        "x_eval": {"shape": list(x_eval.shape), "data": f32(x_eval)},
        "eval": {"scale": scale, "values": f32(out), "codes": None if scale is None else [int(v) for v in torch.round(out * scale).reshape(-1).tolist()]},
        "fixed_load": {"missing": list(res.missing_keys), "unexpected": list(res.unexpected_keys)},
        "traced_print": traced_print,
        "fixed_print": str(model),
        "keys": {stage: list(torch.load(os.path.join(OUT, f"{stage}.pt")).keys()) for stage in ["float", "traced", "fixed"]},
    }
    print(json.dumps(record))


def check(file):
    linger, mod = linger_and_model()
    import torch

    rec = json.load(open(os.path.join(ROOT, "test", "fixtures", "python", "linger_net.linger.json")))
    x = torch.tensor(rec["x_eval"]["data"], dtype=torch.float32).reshape(rec["x_eval"]["shape"])
    model = mod.create_model()
    linger.trace_layers(model, model, x, fuse_bn=True)
    model = linger.init(model)
    model.load_state_dict(torch.load(file, weights_only=True), strict=True)
    model.eval()
    with torch.no_grad():
        out = model(x)
    s = float(out.scale_data)
    print(json.dumps({"scale": s, "codes": [int(v) for v in torch.round(out * s).reshape(-1).tolist()]}))


def main():
    if sys.argv[1:] == ["--run"]:
        return run()
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        return check(sys.argv[2])
    os.makedirs(OUT, exist_ok=True)
    p = subprocess.run([sys.executable, __file__, "--run"], env=dict(os.environ, LINGER_SRC=linger_src()), capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(p.stderr[-3000:])
    record = json.loads(p.stdout.strip().splitlines()[-1])
    path = os.path.join(ROOT, "test", "fixtures", "python", "linger_net.linger.json")
    with open(path, "w") as f:
        json.dump(record, f, indent=1)
        f.write("\n")
    print(f"wrote {path} and {OUT}/{{float,traced,fixed}}.pt")


if __name__ == "__main__":
    main()
