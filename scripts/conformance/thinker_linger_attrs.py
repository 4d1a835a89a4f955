#!/usr/bin/env python3
"""What REAL linger 1.1.1's `linger.onnx.export` writes for small models: each node's op type,
domain, attribute names and the values that are not scales (strings, ints, int lists). The
thinker dialect of `linger export` is compared with it attribute by attribute
(test/engine/conformance/thinker.test.ts); docs/onnx.md, "thinker conformance".

  LINGER_SRC=<extracted linger-v1.1.1> LINGER_COMPAT=<dir of linger_compat.py> \
    /usr/bin/python3 scripts/conformance/thinker_linger_attrs.py [out.json]

Each model runs in its own interpreter (linger patches torch process-wide). Default output:
test/fixtures/conformance/thinker/linger_attrs.json.
"""
import json, os, subprocess, sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "..", "test", "fixtures", "conformance", "thinker", "linger_attrs.json")

# name -> (input shape, SetIQTensor*/SetFunction* flags); the models are built in case_model()
CASES = {
    "cnn_residual": ([2, 1, 8, 8], []),
    "conv1d_bn_linear": ([2, 4, 10], []),
    "convtranspose": ([2, 2, 4, 4], []),
    "bn_only": ([2, 3, 4, 4], []),
    "cat_maxpool": ([2, 1, 8, 8], []),
    "mul": ([2, 1, 6, 6], []),
    "conv_grouped_dilated_strided": ([2, 4, 9, 9], []),
    "relu6": ([2, 1, 6, 6], []),
    "bmm": ([2, 3, 4], ["bmm"]),
}


def case_model(name):
    import torch, torch.nn as nn
    class CnnResidual(nn.Module):
        def __init__(s):
            super().__init__()
            s.conv = nn.Conv2d(1, 4, 3, padding=1); s.bn = nn.BatchNorm2d(4); s.relu = nn.ReLU()
            s.conv2 = nn.Conv2d(4, 4, 3, padding=1); s.pool = nn.AvgPool2d(2); s.fc = nn.Linear(64, 10)
        def forward(s, x):
            y = s.relu(s.bn(s.conv(x)))
            y = y + s.conv2(y)
            return s.fc(s.pool(y).flatten(1))
    class Conv1dBn(nn.Module):
        def __init__(s):
            super().__init__()
            s.conv = nn.Conv1d(4, 6, 3, padding=1); s.bn = nn.BatchNorm1d(6); s.relu = nn.ReLU(); s.fc = nn.Linear(60, 5)
        def forward(s, x):
            return s.fc(s.relu(s.bn(s.conv(x))).flatten(1))
    class ConvT(nn.Module):
        def __init__(s):
            super().__init__()
            s.up = nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1, output_padding=1)
        def forward(s, x):
            return s.up(x)
    class BnOnly(nn.Module):
        def __init__(s):
            super().__init__()
            s.bn = nn.BatchNorm2d(3)
        def forward(s, x):
            return s.bn(x)
    class CatPool(nn.Module):
        def __init__(s):
            super().__init__()
            s.a = nn.Conv2d(1, 2, 3, padding=1); s.b = nn.Conv2d(1, 3, 3, padding=1); s.pool = nn.MaxPool2d(2); s.fc = nn.Linear(80, 4)
        def forward(s, x):
            return s.fc(s.pool(torch.cat([s.a(x), s.b(x)], 1)).flatten(1))
    class Mul(nn.Module):
        def __init__(s):
            super().__init__()
            s.a = nn.Conv2d(1, 2, 3, padding=1); s.b = nn.Conv2d(1, 2, 3, padding=1)
        def forward(s, x):
            return s.a(x) * s.b(x)
    class Grouped(nn.Module):
        def __init__(s):
            super().__init__()
            s.conv = nn.Conv2d(4, 4, 3, stride=2, padding=2, dilation=2, groups=2)
        def forward(s, x):
            return s.conv(x)
    class Relu6(nn.Module):
        def __init__(s):
            super().__init__()
            s.conv = nn.Conv2d(1, 2, 3, padding=1); s.act = nn.ReLU6(); s.fc = nn.Linear(72, 3)
        def forward(s, x):
            return s.fc(s.act(s.conv(x)).flatten(1))
    class Bmm(nn.Module):
        def __init__(s):
            super().__init__()
            s.fc = nn.Linear(4, 4)
        def forward(s, x):
            y = s.fc(x)
            return torch.bmm(y, y.transpose(1, 2))
    return {"cnn_residual": CnnResidual, "conv1d_bn_linear": Conv1dBn, "convtranspose": ConvT, "bn_only": BnOnly,
            "cat_maxpool": CatPool, "mul": Mul, "conv_grouped_dilated_strided": Grouped, "relu6": Relu6,
            "bmm": Bmm}[name]()


def value(a):
    from onnx import helper
    v = helper.get_attribute_value(a)
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, float):
        return "<float>"  # scales depend on the trained values: compared by name only
    if isinstance(v, list):
        return [x for x in v] if all(isinstance(x, int) for x in v) else "<list>"
    if isinstance(v, int):
        return v
    return "<tensor>"


def run_case(name):
    sys.path.insert(0, os.environ["LINGER_SRC"])
    sys.path.append(os.environ["LINGER_COMPAT"])
    from linger_compat import linger
    import io, contextlib, torch, onnx
    shape, flags = CASES[name]
    if "bmm" in flags:
        linger.SetFunctionBmmQuant(True)
    torch.manual_seed(0)
    m = case_model(name)
    x = torch.randn(*shape)
    sd = {k: v.clone() for k, v in m.state_dict().items()}
    linger.trace_layers(m, m, x, fuse_bn=True)
    m = linger.init(m)
    m.load_state_dict(sd)
    m.train()
    for _ in range(3):
        m(x)
    m.eval()
    buf = io.BytesIO()
    with contextlib.redirect_stdout(io.StringIO()):
        linger.onnx.export(m, x, buf, input_names=["input"], output_names=["output"], opset_version=12)
    g = onnx.load_from_string(buf.getvalue()).graph
    nodes = [{"op": n.op_type, "domain": n.domain, "inputs": len(n.input),
              "attributes": {a.name: value(a) for a in sorted(n.attribute, key=lambda a: a.name)}} for n in g.node]
    dims = [[d.dim_value if d.HasField("dim_value") else d.dim_param for d in i.type.tensor_type.shape.dim] for i in g.input]
    return {"input_shape": shape, "flags": flags, "graph_input_dims": dims, "nodes": nodes}


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--case":
        print(json.dumps(run_case(sys.argv[2])))
        return
    out = sys.argv[1] if len(sys.argv) > 1 else OUT
    src = os.environ.get("LINGER_SRC")
    if not src or not os.path.exists(os.path.join(src, "linger")):
        sys.exit("thinker_linger_attrs: set LINGER_SRC to an extracted linger-v1.1.1 tree")
    cases = {}
    for name in CASES:
        p = subprocess.run([sys.executable, "-W", "ignore", __file__, "--case", name], capture_output=True, text=True)
        if p.returncode != 0:
            cases[name] = {"error": (p.stderr.strip().splitlines() or ["?"])[-1]}
        else:
            cases[name] = json.loads(p.stdout.strip().splitlines()[-1])
        print(f"{name}: {'error: ' + cases[name]['error'] if 'error' in cases[name] else ' '.join(n['op'] for n in cases[name]['nodes'])}")
    doc = {"made_by": "scripts/conformance/thinker_linger_attrs.py", "linger": "v1.1.1 (commit 89247220)",
           "note": "float attributes (scales) are recorded as '<float>': compared by name", "cases": cases}
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        json.dump(doc, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
