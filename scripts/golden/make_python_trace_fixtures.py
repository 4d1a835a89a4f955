#!/usr/bin/env python3
"""What the REAL linger 1.1.1 makes of the seed's PyTorch models (test/fixtures/python/seed_models.py):
PyTorch's printout before and after `linger.trace_layers(model, model, x, fuse_bn=True)`, the
reference for `linger trace seed_models.py` and *Linger: Trace PyTorch Model…* (docs/python-models.md).

    LINGER_SRC=<extracted linger-v1.1.1> /usr/bin/python3 scripts/golden/make_python_trace_fixtures.py

linger is taken from $LINGER_SRC, else extracted from ../shared/reference/linger-v1.1.1.tar.gz;
../shared/reference/linger (linger_compat) goes last on sys.path. Each model is traced in its own
interpreter (linger patches torch). Writes test/fixtures/python/seed_models.linger.json.
"""
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
REF = os.environ.get("LINGER_REF", os.path.abspath(os.path.join(ROOT, "..", "shared", "reference")))
sys.path.insert(0, os.path.join(ROOT, "scripts", "conformance"))
from linger_make_fixtures import linger_src  # noqa: E402 (the same extraction of linger as the conformance fixtures)

MODELS = os.path.join(ROOT, "test", "fixtures", "python", "seed_models.py")
OUT = os.path.join(ROOT, "test", "fixtures", "python", "seed_models.linger.json")


def one(name):
    sys.path.insert(0, linger_src())
    sys.path.append(os.path.join(REF, "linger"))
    from linger_compat import linger
    import importlib.util
    import torch

    spec = importlib.util.spec_from_file_location("seed_models", MODELS)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    torch.manual_seed(0)
    model = getattr(mod, name)()
    before = str(model)
    linger.trace_layers(model, model, torch.randn(*mod.INPUT_SHAPES[name]), fuse_bn=True)
    print(json.dumps({"before": before, "after": str(model)}))


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--one":
        return one(sys.argv[2])
    env = dict(os.environ, LINGER_SRC=linger_src())
    out = {"linger": "1.1.1 (commit 89247220)", "torch": None, "script": "scripts/golden/make_python_trace_fixtures.py", "models": {}}
    import torch
    out["torch"] = torch.__version__
    for name in ["ModelA", "ModelB"]:
        p = subprocess.run([sys.executable, __file__, "--one", name], env=env, capture_output=True, text=True)
        if p.returncode != 0:
            sys.exit(f"{name}: {p.stderr[-2000:]}")
        out["models"][name] = json.loads(p.stdout.strip().splitlines()[-1])
    with open(OUT, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
