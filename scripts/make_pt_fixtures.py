#!/usr/bin/env python3
"""The .pt fixtures of test/engine/state/pt*.test.ts (docs/pt-checkpoints.md), made with Debian's PyTorch:

    /usr/bin/python3 scripts/make_pt_fixtures.py

Writes test/fixtures/pt/*.pt and versions.json (torch's version, and each fixture's tensors as
{dtype, shape, data} in row-major order, so the tests compare values without torch). Malicious
pickles (os.system via __reduce__, builtins.eval, getattr) are written by hand into the zip
layout; their payload would create test/fixtures/pt/PWNED if it ran. Nothing here loads them.
"""
import collections
import io
import json
import os
import pickle
import sys
import zipfile

import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "pt")
PWNED = "test/fixtures/pt/PWNED"
torch.manual_seed(0)


def enc(t):
    t = t.detach().contiguous()
    dt = str(t.dtype).replace("torch.", "")
    if t.dtype in (torch.float16, torch.bfloat16, torch.float64):
        data = [float(v) for v in t.float().reshape(-1).tolist()]
    elif t.is_floating_point():
        data = [float(v) for v in t.reshape(-1).tolist()]
    else:
        data = [int(v) for v in t.reshape(-1).tolist()]
    return {"dtype": dt, "shape": list(t.shape), "data": data}


record = {"torch": torch.__version__, "python": sys.version.split()[0], "fixtures": {}}


def save(name, obj, sd=None, **kw):
    torch.save(obj, os.path.join(OUT, name), **kw)
    if sd is not None:
        record["fixtures"][name] = {k: enc(v) for k, v in sd.items()}


# every dtype torch writes a storage for
dtypes = collections.OrderedDict()
dtypes["f32"] = torch.randn(2, 3)
dtypes["f64"] = torch.randn(3, dtype=torch.float64)
dtypes["f16"] = torch.randn(4).half()
dtypes["bf16"] = torch.randn(4).bfloat16()
dtypes["i64"] = torch.tensor([-3, 0, 2**31 - 1, -(2**31)], dtype=torch.int64)
dtypes["i32"] = torch.tensor([[1, -2], [3, 4]], dtype=torch.int32)
dtypes["i16"] = torch.tensor([-300, 300], dtype=torch.int16)
dtypes["i8"] = torch.tensor([-128, 127], dtype=torch.int8)
dtypes["u8"] = torch.tensor([0, 255], dtype=torch.uint8)
dtypes["bool"] = torch.tensor([True, False, True])
dtypes["scalar"] = torch.tensor(2.5)
dtypes["empty"] = torch.zeros(0, 3)
save("dtypes.pt", dtypes, dtypes)

# views of one storage: a transposed weight, a slice with an offset, a strided column, an expand
base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
views = collections.OrderedDict()
views["base"] = base
views["t"] = base.t()
views["rows"] = base[1:3]
views["col"] = base[:, 2]
views["step"] = base[::2, 1::3]
views["expand"] = torch.tensor([1.0, 2.0]).expand(3, 2)
save("views.pt", views, views)

# a training checkpoint: the state dict nested, with epoch and optimizer
net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2), torch.nn.Flatten(), torch.nn.Linear(2, 3))
opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
net(torch.randn(2, 1, 3, 3)).sum().backward()
opt.step()
sd = net.state_dict()
save("training.pt", {"state_dict": sd, "epoch": 3, "optimizer": opt.state_dict(), "note": "seed 0"}, sd)
save("state_dict.pt", sd, sd)
save("empty.pt", {}, {})

# a linger fixed-stage state dict: real linger 1.1.1's final state of the conformance model
# conv_batchnorm_pool (test/fixtures/conformance, values as linger left them; int64 num_batches_tracked)
conf = json.load(open(os.path.join(OUT, "..", "conformance", "conv_batchnorm_pool.json")))
ld = collections.OrderedDict(
    (k, torch.tensor(v["data"], dtype=getattr(torch, v["dtype"])).reshape(v["shape"])) for k, v in conf["final_state"].items()
)
save("linger_fixed.pt", ld, ld)
# the traced stage of the conformance model cnn: NormalizeConvBN2d keys and EmptyBatchNorm's _linger_ignore_parameter
cnn = json.load(open(os.path.join(OUT, "..", "conformance", "cnn.json")))
td = collections.OrderedDict()
for k, shape, dt in cnn["stages"]["traced"]["state"]:
    td[k] = (torch.randn(shape) if dt == "float32" else torch.tensor(2)).to(getattr(torch, dt)).reshape(shape)
save("linger_traced.pt", td, td)

# the legacy format
save("legacy.pt", dtypes, None, _use_new_zipfile_serialization=False)


class System:
    def __reduce__(self):
        return (os.system, (f"touch {PWNED}",))


class Eval:
    def __reduce__(self):
        return (eval, (f"open('{PWNED}', 'w')",))


class GetAttr:
    def __reduce__(self):
        return (getattr, (PWNED, "upper"))


def evil(name, payload):
    """A torch.save zip whose data.pkl is `payload` pickled (protocol 2 and 4)."""
    for proto in (2, 4):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
            z.writestr("archive/data.pkl", pickle.dumps(payload, protocol=proto))
            z.writestr("archive/version", "3\n")
        open(os.path.join(OUT, f"{name}_p{proto}.pt"), "wb").write(buf.getvalue())


evil("evil_system", {"w": System()})
evil("evil_eval", collections.OrderedDict(w=Eval()))
evil("evil_getattr", [GetAttr()])
json.dump(record, open(os.path.join(OUT, "fixtures.json"), "w"), indent=1)
print("torch", torch.__version__, "fixtures:", sorted(os.listdir(OUT)))
