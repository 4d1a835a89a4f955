"""The conformance models, as data both sides build from (scripts/conformance/linger_make_fixtures.py
here, test/engine/conformance/linger.test.ts in the engine).

A model is {"modules": [[name, type, args, kwargs], ...], "forward": [[out, op, [inputs], attrs], ...],
"input": shape, "classes": K or None, optional "ids": V (the input is token ids in [0, V)) and
"flags": ["bmm" | "channel_shuffle"] (linger's SetFunctionBmmQuant / SetFunctionChannelShuffleQuant,
the engine's init options)}. Ops: "call" (attrs.m: a module name), "add", "mul", "cat"
(attrs.dim), "flatten", "clamp" (attrs.min, attrs.max: torch.clamp), "sum" (attrs.dim: Tensor.sum), "transpose" (attrs.a, attrs.b), "bmm", "shuffle" (attrs.groups:
linger.channel_shuffle). The value named "y" is the output. A 2-D output with "classes" trains with
cross entropy against labels, else with a mean squared error against a fixed target.
"""

def build_net(spec, torch, nn, linger):
    """The spec's model in PyTorch (both scripts build it here), after its flags are set on linger."""
    if "bmm" in spec.get("flags", []):
        linger.SetFunctionBmmQuant(True)
    if "channel_shuffle" in spec.get("flags", []):
        linger.SetFunctionChannelShuffleQuant(True)
    types = {"Conv2d": nn.Conv2d, "Conv1d": nn.Conv1d, "ConvTranspose2d": nn.ConvTranspose2d, "Linear": nn.Linear,
             "BatchNorm2d": nn.BatchNorm2d, "BatchNorm1d": nn.BatchNorm1d, "ReLU": nn.ReLU, "AvgPool2d": nn.AvgPool2d,
             "MaxPool2d": nn.MaxPool2d, "ReLU6": nn.ReLU6, "Embedding": nn.Embedding}

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            for n, typ, args, kw in spec["modules"]:
                setattr(self, n, types[typ](*args, **kw))

        def forward(self, x):
            env = {"x": x}
            for out, op, ins, attrs in spec["forward"]:
                a = [env[i] for i in ins]
                if op == "call":
                    env[out] = getattr(self, attrs["m"])(a[0])
                elif op == "add":
                    env[out] = a[0] + a[1]
                elif op == "mul":
                    env[out] = a[0] * a[1]
                elif op == "cat":
                    env[out] = torch.cat(a, dim=attrs["dim"])
                elif op == "flatten":
                    env[out] = torch.flatten(a[0], 1)
                elif op == "clamp":
                    env[out] = torch.clamp(a[0], attrs["min"], attrs["max"])
                elif op == "sum":
                    env[out] = a[0].sum(attrs["dim"])
                elif op == "transpose":
                    env[out] = a[0].transpose(attrs["a"], attrs["b"])
                elif op == "bmm":
                    env[out] = torch.bmm(a[0], a[1])
                elif op == "shuffle":
                    env[out] = linger.channel_shuffle(a[0], attrs["groups"])
                else:
                    raise ValueError(op)
            return env["y"]

    return Net()


def seq(names_types, inp, classes=None):
    """A chain: every module called once, in order."""
    mods, fwd, prev = [], [], "x"
    for i, (name, typ, args, kw) in enumerate(names_types):
        mods.append([name, typ, args, kw])
        out = "y" if i == len(names_types) - 1 else name
        fwd.append([out, "call", [prev], {"m": name}])
        prev = out
    return {"modules": mods, "forward": fwd, "input": inp, "classes": classes}


def conv(name, cin, cout, k, **kw):
    return [name, "Conv2d", [cin, cout, k], kw]


MODELS = {
    "conv2d": seq([conv("conv", 3, 4, 3, padding=1)], [2, 3, 6, 6]),
    "conv2d_nobias": seq([conv("conv", 3, 4, 3, padding=1, bias=False)], [2, 3, 6, 6]),
    "conv2d_relu": seq([conv("conv", 3, 4, 3, padding=1), ["relu", "ReLU", [], {}]], [2, 3, 6, 6]),
    "conv2d_strided": seq([conv("conv", 3, 4, 3, stride=2, padding=1)], [2, 3, 8, 8]),
    "conv2d_dilated": seq([conv("conv", 3, 4, 3, padding=2, dilation=2)], [2, 3, 7, 7]),
    "conv2d_grouped": seq([conv("conv", 4, 6, 3, padding=1, groups=2)], [2, 4, 5, 5]),
    "conv2d_chain": seq([conv("conv1", 3, 4, 3, padding=1), ["relu", "ReLU", [], {}], conv("conv2", 4, 4, 1)], [2, 3, 5, 5]),
    "conv2d_bn": seq([conv("conv", 3, 4, 3, padding=1), ["bn", "BatchNorm2d", [4], {}]], [2, 3, 6, 6]),
    "conv2d_bn_relu": seq([conv("conv", 3, 4, 3, padding=1), ["bn", "BatchNorm2d", [4], {}], ["relu", "ReLU", [], {}]], [2, 3, 6, 6]),
    "conv1d": seq([["conv", "Conv1d", [3, 4, 3], {"padding": 1}]], [2, 3, 10]),
    "conv1d_bn_relu": seq([["conv", "Conv1d", [3, 4, 3], {"padding": 1}], ["bn", "BatchNorm1d", [4], {}], ["relu", "ReLU", [], {}]], [2, 3, 10]),
    "conv_transpose2d": seq([["deconv", "ConvTranspose2d", [3, 4, 2], {"stride": 2}]], [2, 3, 4, 4]),
    "conv_transpose2d_padded": seq([["deconv", "ConvTranspose2d", [3, 4, 3], {"stride": 2, "padding": 1, "output_padding": 1}]], [2, 3, 4, 4]),
    "linear": seq([["fc", "Linear", [12, 5], {}]], [4, 12], classes=5),
    "linear_relu_linear": seq([["fc1", "Linear", [12, 8], {}], ["relu", "ReLU", [], {}], ["fc2", "Linear", [8, 5], {}]], [4, 12], classes=5),
    "batchnorm": seq([["pool", "MaxPool2d", [2], {}], ["bn", "BatchNorm2d", [3], {}]], [2, 3, 6, 6]),
    "conv_batchnorm_pool": {
        # a BN that is not right after a conv (a pool between): BatchNormInt, fed a quantized tensor
        "modules": [conv("conv", 3, 4, 3, padding=1), ["pool", "MaxPool2d", [2], {}], ["bn", "BatchNorm2d", [4], {}]],
        "forward": [["a", "call", ["x"], {"m": "conv"}], ["b", "call", ["a"], {"m": "pool"}], ["y", "call", ["b"], {"m": "bn"}]],
        "input": [2, 3, 6, 6], "classes": None},
    "avgpool": seq([conv("conv", 3, 4, 3, padding=1), ["pool", "AvgPool2d", [2], {}]], [2, 3, 6, 6]),
    "avgpool_input": seq([["pool", "AvgPool2d", [2], {}], conv("conv", 3, 4, 3, padding=1)], [2, 3, 6, 6]),
    "maxpool": seq([conv("conv", 3, 4, 3, padding=1), ["pool", "MaxPool2d", [2], {}], conv("conv2", 4, 4, 1)], [2, 3, 6, 6]),
    "flatten_linear": {
        "modules": [conv("conv", 3, 4, 3, stride=2, padding=1), ["relu", "ReLU", [], {}], ["fc", "Linear", [36, 5], {}]],
        "forward": [["a", "call", ["x"], {"m": "conv"}], ["b", "call", ["a"], {"m": "relu"}], ["c", "flatten", ["b"], {}],
                    ["y", "call", ["c"], {"m": "fc"}]],
        "input": [3, 3, 6, 6], "classes": 5},
    "iqadd": {
        "modules": [conv("a", 3, 4, 3, padding=1), conv("b", 3, 4, 1)],
        "forward": [["p", "call", ["x"], {"m": "a"}], ["q", "call", ["x"], {"m": "b"}], ["y", "add", ["p", "q"], {}]],
        "input": [2, 3, 5, 5], "classes": None},
    "iqadd_residual": {
        "modules": [conv("conv1", 3, 4, 3, padding=1), ["relu", "ReLU", [], {}], conv("conv2", 4, 4, 3, padding=1), conv("head", 4, 2, 1)],
        "forward": [["a", "call", ["x"], {"m": "conv1"}], ["b", "call", ["a"], {"m": "relu"}], ["c", "call", ["b"], {"m": "conv2"}],
                    ["d", "add", ["c", "b"], {}], ["y", "call", ["d"], {"m": "head"}]],
        "input": [2, 3, 5, 5], "classes": None},
    "iqcat": {
        "modules": [conv("a", 3, 4, 3, padding=1), conv("b", 3, 2, 1), conv("head", 6, 3, 1)],
        "forward": [["p", "call", ["x"], {"m": "a"}], ["q", "call", ["x"], {"m": "b"}], ["r", "cat", ["p", "q"], {"dim": 1}],
                    ["y", "call", ["r"], {"m": "head"}]],
        "input": [2, 3, 5, 5], "classes": None},
    "iqmul": {
        "modules": [conv("a", 3, 4, 3, padding=1), conv("b", 3, 4, 1)],
        "forward": [["p", "call", ["x"], {"m": "a"}], ["q", "call", ["x"], {"m": "b"}], ["y", "mul", ["p", "q"], {}]],
        "input": [2, 3, 5, 5], "classes": None},
    "relu6": seq([conv("conv", 3, 4, 3, padding=1), ["act", "ReLU6", [], {}], conv("head", 4, 2, 1)], [2, 3, 5, 5]),
    "iqclamp": {
        "modules": [conv("conv", 3, 4, 3, padding=1), conv("head", 4, 2, 1)],
        "forward": [["a", "call", ["x"], {"m": "conv"}], ["b", "clamp", ["a"], {"min": 0, "max": 0.9921875}],
                    ["y", "call", ["b"], {"m": "head"}]],
        "input": [2, 3, 5, 5], "classes": None},
    "iqsum": {
        "modules": [conv("conv", 3, 4, 3, padding=1)],
        "forward": [["a", "call", ["x"], {"m": "conv"}], ["y", "sum", ["a"], {"dim": 1}]],
        "input": [2, 3, 5, 5], "classes": None},
    "embedding": {
        "modules": [["emb", "Embedding", [10, 6], {}], ["fc", "Linear", [6, 3], {}]],
        "forward": [["a", "call", ["x"], {"m": "emb"}], ["y", "call", ["a"], {"m": "fc"}]],
        "input": [4, 5], "ids": 10, "classes": None},
    "bmm": {
        "modules": [["fc", "Linear", [4, 4], {}]],
        "forward": [["a", "call", ["x"], {"m": "fc"}], ["b", "transpose", ["a"], {"a": 1, "b": 2}], ["y", "bmm", ["a", "b"], {}]],
        "input": [2, 3, 4], "classes": None, "flags": ["bmm"]},
    "channel_shuffle": {
        "modules": [conv("conv", 2, 4, 3, padding=1), conv("head", 4, 2, 1)],
        "forward": [["a", "call", ["x"], {"m": "conv"}], ["b", "shuffle", ["a"], {"groups": 2}], ["y", "call", ["b"], {"m": "head"}]],
        "input": [2, 2, 5, 5], "classes": None, "flags": ["channel_shuffle"]},
    "cnn": {
        # the issue's small CNN: conv-BN-ReLU x2, residual add, AvgPool2d, two Linear
        "modules": [conv("conv1", 1, 4, 3, padding=1), ["bn1", "BatchNorm2d", [4], {}], ["relu1", "ReLU", [], {}],
                    conv("conv2", 4, 4, 3, padding=1), ["bn2", "BatchNorm2d", [4], {}], ["relu2", "ReLU", [], {}],
                    ["pool", "AvgPool2d", [2], {}], ["fc1", "Linear", [64, 16], {}], ["relu3", "ReLU", [], {}], ["fc2", "Linear", [16, 10], {}]],
        "forward": [["a", "call", ["x"], {"m": "conv1"}], ["b", "call", ["a"], {"m": "bn1"}], ["c", "call", ["b"], {"m": "relu1"}],
                    ["d", "call", ["c"], {"m": "conv2"}], ["e", "call", ["d"], {"m": "bn2"}], ["f", "call", ["e"], {"m": "relu2"}],
                    ["g", "add", ["f", "c"], {}], ["h", "call", ["g"], {"m": "pool"}], ["i", "flatten", ["h"], {}],
                    ["j", "call", ["i"], {"m": "fc1"}], ["k", "call", ["j"], {"m": "relu3"}], ["y", "call", ["k"], {"m": "fc2"}]],
        "input": [4, 1, 8, 8], "classes": 10},
    "net2": {
        # strided Conv+BN, ConvTranspose2d, concat, MaxPool, Linear
        "modules": [conv("conv1", 2, 4, 3, stride=2, padding=1), ["bn1", "BatchNorm2d", [4], {}], ["relu1", "ReLU", [], {}],
                    ["up", "ConvTranspose2d", [4, 4, 2], {"stride": 2}], conv("side", 2, 4, 1),
                    ["pool", "MaxPool2d", [2], {}], ["fc", "Linear", [128, 6], {}]],
        "forward": [["a", "call", ["x"], {"m": "conv1"}], ["b", "call", ["a"], {"m": "bn1"}], ["c", "call", ["b"], {"m": "relu1"}],
                    ["d", "call", ["c"], {"m": "up"}], ["e", "call", ["x"], {"m": "side"}], ["f", "cat", ["d", "e"], {"dim": 1}],
                    ["g", "call", ["f"], {"m": "pool"}], ["h", "flatten", ["g"], {}], ["y", "call", ["h"], {"m": "fc"}]],
        "input": [3, 2, 8, 8], "classes": 6},
    "branches": {
        # two branches from one input joined by an add and a concat, a 1-D head
        "modules": [conv("stem", 3, 4, 3, padding=1), ["relu", "ReLU", [], {}], conv("left", 4, 4, 3, padding=1),
                    conv("right", 4, 4, 1), ["bn", "BatchNorm2d", [4], {}], conv("mix", 8, 4, 1), ["pool", "AvgPool2d", [2], {}],
                    ["fc", "Linear", [16, 3], {}]],
        "forward": [["a", "call", ["x"], {"m": "stem"}], ["b", "call", ["a"], {"m": "relu"}], ["l", "call", ["b"], {"m": "left"}],
                    ["r0", "call", ["b"], {"m": "right"}], ["r", "call", ["r0"], {"m": "bn"}], ["s", "add", ["l", "r"], {}],
                    ["c", "cat", ["s", "b"], {"dim": 1}], ["m", "call", ["c"], {"m": "mix"}], ["p", "call", ["m"], {"m": "pool"}],
                    ["f", "flatten", ["p"], {}], ["y", "call", ["f"], {"m": "fc"}]],
        "input": [2, 3, 4, 4], "classes": 3},
}
