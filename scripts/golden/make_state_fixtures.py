#!/usr/bin/env python3
"""State dicts between PyTorch and the engine, both directions (SPEC §6, issue 5).

Run from the repository root with Debian's python3-torch (the `safetensors` package is not needed:
the format is read and written here by hand, with struct + json):

    /usr/bin/python3 scripts/golden/make_state_fixtures.py
        Writes test/fixtures/state/torch_democnn.safetensors, PyTorch's DemoCNN state dict (BN
        statistics from a few training-mode batches, num_batches_tracked as int64), and
        test/fixtures/state/torch_democnn.json: an input x and PyTorch's eval output y.
        Then checks the committed engine-written checkpoint (engine_democnn_float.*), if present.

    /usr/bin/python3 scripts/golden/make_state_fixtures.py --check <checkpoint> <io.json>
        Loads a float checkpoint written by the engine into PyTorch's DemoCNN (strict), runs it in
        eval mode on io.json's x and prints JSON {"y": {shape, data}, "max_abs_diff", "keys"}.
        When io.json has the engine's output y, exits 1 if any element differs by more than
        1e-4 * max(1, |y|).

The safetensors format: 8-byte little-endian header length N, N bytes of JSON
{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}}, then the data,
little-endian, offsets relative to the end of the header.
"""
import json
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn

from demo_cnn import DemoCNN  # scripts/golden/demo_cnn.py

torch.set_num_threads(1)
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "..", "test", "fixtures", "state")
TOL = 1e-4

DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1", "U8": "u1", "BOOL": "?"}
TORCH_TO_ST = {torch.float32: "F32", torch.float64: "F64", torch.int64: "I64", torch.int32: "I32"}


def write_safetensors(path, tensors, metadata=None):
    header, chunks, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, t in tensors.items():
        t = t.detach().cpu().contiguous()
        data = t.numpy().astype(DTYPES[TORCH_TO_ST[t.dtype]]).tobytes()
        header[name] = {"dtype": TORCH_TO_ST[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)  # the data 8-byte aligned, as the format's writers do
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for c in chunks:
            f.write(c)


def read_safetensors(path):
    with open(path, "rb") as f:
        buf = f.read()
    (n,) = struct.unpack("<Q", buf[:8])
    header = json.loads(buf[8:8 + n].decode("utf-8"))
    metadata = header.pop("__metadata__", {})
    data = buf[8 + n:]
    tensors = {}
    for name, e in header.items():
        b, end = e["data_offsets"]
        arr = np.frombuffer(data[b:end], dtype=DTYPES[e["dtype"]]).reshape(e["shape"])
        tensors[name] = torch.from_numpy(arr.copy())
    return tensors, metadata


def enc(t):
    t = t.detach().cpu()
    return {"shape": list(t.shape), "data": [float(str(v)) for v in t.numpy().astype(np.float32).ravel()]}


def dec(f):
    return torch.tensor(f["data"], dtype=torch.float32).reshape(f["shape"])


def make_torch_fixture():
    torch.manual_seed(20240605)
    m = DemoCNN()
    with torch.no_grad():  # BN affine parameters away from 1 and 0, so a dropped one would show
        for bn in (m.bn1, m.bn2):
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.2, 0.2)
    m.train()
    with torch.no_grad():
        for _ in range(3):  # running statistics and num_batches_tracked = 3
            m(torch.rand(8, 1, 28, 28))
    m.eval()
    x = torch.rand(2, 1, 28, 28)
    with torch.no_grad():
        y = m(x)
    sd = m.state_dict()
    assert sd["bn1.num_batches_tracked"].dtype == torch.int64
    os.makedirs(OUT, exist_ok=True)
    write_safetensors(os.path.join(OUT, "torch_democnn.safetensors"), sd, {"format": "pt"})
    with open(os.path.join(OUT, "torch_democnn.json"), "w") as f:
        json.dump({"keys": list(sd.keys()), "x": enc(x), "y": enc(y)}, f)
        f.write("\n")
    print(f"wrote torch_democnn.safetensors ({len(sd)} tensors) and torch_democnn.json")


def check(ckpt, io_path):
    tensors, metadata = read_safetensors(ckpt)
    stage = metadata.get("linger.stage", "float")
    if stage != "float":
        raise SystemExit(f"{ckpt}: a {stage}-stage checkpoint; PyTorch's DemoCNN takes float-stage state")
    tensors = {k: v for k, v in tensors.items() if not k.startswith("__optimizer__/")}
    m = DemoCNN()
    m.load_state_dict(tensors, strict=True)  # the engine's int32 num_batches_tracked is copied into int64
    m.eval()
    with open(io_path) as f:
        io = json.load(f)
    with torch.no_grad():
        y = m(dec(io["x"]))
    result = {"keys": list(tensors.keys()), "y": enc(y)}
    ok = True
    if "y" in io:
        ref = dec(io["y"])
        diff = (y - ref).abs()
        result["max_abs_diff"] = float(diff.max())
        ok = bool((diff <= TOL * torch.clamp(ref.abs(), min=1.0)).all())
        result["within_tolerance"] = ok
    print(json.dumps(result))
    return ok


def main(argv):
    if len(argv) >= 1 and argv[0] == "--check":
        if len(argv) != 3:
            raise SystemExit("usage: make_state_fixtures.py --check <checkpoint.safetensors> <io.json>")
        return 0 if check(argv[1], argv[2]) else 1
    make_torch_fixture()
    engine = os.path.join(OUT, "engine_democnn_float.safetensors")
    if os.path.exists(engine):
        ok = check(engine, os.path.join(OUT, "engine_democnn_float.json"))
        print(f"engine_democnn_float.safetensors in PyTorch: {'within' if ok else 'NOT within'} {TOL}", file=sys.stderr)
        return 0 if ok else 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
