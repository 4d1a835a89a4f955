"""Ours → linger, strictly: the state dict our engine saved for each conformance model loads into the
real linger 1.1.1's model at the same stage with load_state_dict(strict=True).

Usage (from the repository root):
    LINGER_STATE_DIR=/tmp/ours node scripts/test.mjs conformance/linger   # our final state dicts
    /usr/bin/python3 scripts/conformance/live_linger.py /tmp/ours [model ...]

For each model of scripts/conformance/linger_models.py (or the ones named), in its own interpreter
(linger patches torch globally): builds the model as scripts/conformance/linger_make_fixtures.py does,
runs trace_layers → normalize_layers → init, loads the fixture's float weights, runs one training
forward (linger makes its iq layers then), and loads <dir>/<model>.safetensors strictly. Our int32
num_batches_tracked is copied into linger's int64 buffer (load_state_dict checks shapes, not dtypes;
docs/fixed-point.md#conformance-with-linger-111). Prints "ok"/"FAIL" per model; exits 1 on a failure.
Takes $LINGER_SRC or extracts ../shared/reference/linger-v1.1.1.tar.gz.
"""
import json
import os
import struct
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from linger_models import MODELS, build_net  # noqa: E402
from linger_make_fixtures import CLAMP, REF, linger_src  # noqa: E402

FIXTURES = os.path.join(ROOT, "test", "fixtures", "conformance")
DTYPES = {"F32": "float32", "I32": "int32", "I64": "int64", "F64": "float64"}


def read_safetensors(path):
    import numpy as np
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    body = data[8 + n:]
    out = {}
    for k, e in header.items():
        if k == "__metadata__":
            continue
        b, end = e["data_offsets"]
        out[k] = np.frombuffer(body[b:end], dtype=DTYPES[e["dtype"]]).reshape(e["shape"]).copy()
    return out


def run_case(name, state_dir):
    sys.path.insert(0, linger_src())
    sys.path.append(os.path.join(REF, "linger"))
    from linger_compat import linger  # noqa: F401
    import torch
    import torch.nn as nn

    torch.set_num_threads(1)
    spec = MODELS[name]
    with open(os.path.join(FIXTURES, f"{name}.json")) as f:
        fx = json.load(f)

    def tens(e):
        return torch.tensor(e["data"], dtype=getattr(torch, e["dtype"])).reshape(e["shape"])

    model = build_net(spec, torch, nn, linger)
    float_sd = {k: tens(e) for k, e in fx["float_state"].items()}
    x = tens(fx["x"])
    model.load_state_dict(float_sd)
    model.train()
    linger.trace_layers(model, model, x, fuse_bn=True)
    model = linger.normalize_layers(model, normalize_weight_value=None, normalize_bias_value=None, normalize_output_value=CLAMP)
    model = linger.init(model)
    model.load_state_dict(float_sd)
    model(x)  # linger's iq layers exist from the first forward on
    ours = {k: torch.from_numpy(v) for k, v in read_safetensors(os.path.join(state_dir, f"{name}.safetensors")).items()}
    try:
        model.load_state_dict(ours, strict=True)
    except RuntimeError as e:
        print(str(e).replace("\n", " ")[:600], flush=True)
        return 1
    own = model.state_dict()
    bad = [k for k, v in ours.items() if not torch.equal(own[k].to(v.dtype), v)]
    if bad:
        print("values differ after the load: " + ", ".join(bad), flush=True)
        return 1
    return 0


def main(argv):
    if len(argv) >= 3 and argv[0] == "--case":
        return run_case(argv[1], argv[2])
    if not argv:
        print(__doc__)
        return 2
    state_dir, names = argv[0], argv[1:] or list(MODELS)
    env = dict(os.environ, LINGER_SRC=linger_src())
    failed = []
    for name in names:
        r = subprocess.run([sys.executable, os.path.abspath(__file__), "--case", name, state_dir], env=env)
        print(("ok   " if r.returncode == 0 else "FAIL ") + name, flush=True)
        if r.returncode:
            failed.append(name)
    print(f"{len(names) - len(failed)} of {len(names)} load strictly into linger" + (": failed " + ", ".join(failed) if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
