#!/usr/bin/env python3
"""Golden values from PyTorch for nn.LSTM / nn.GRU, nn.LayerNorm and nn.Embedding
(test/engine/rnn-parity.test.ts).

Run from the repository root with Debian's python3-torch:

    /usr/bin/python3 scripts/golden/make_rnn_fixtures.py

Writes test/fixtures/golden/rnn.json and sequence.json (LayerNorm, Embedding: make_fixtures.py's
layer cases, "x" int64 indices for Embedding) in make_fixtures.py's format. A case holds the layer and its
constructor kwargs (snake_case), the state dict (PyTorch keys), the input x, the initial state
("h0", and "c0" for LSTM, or absent), upstream gradients for the output ("g") and the final states
("gh", "gc"), the results ("y", "hn", "cn") and the gradients of sum(y·g) + sum(hn·gh) + sum(cn·gc)
w.r.t. x, h0, c0 and every parameter. Computed in float64 from float32 draws.
"""
import os
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixtures import OUT_DIR, dumps, enc, enc_state, seed  # noqa: E402

CASES = [
    # name, layer, (input_size, hidden_size), kwargs, x shape (as the layer takes it), with initial state
    ("lstm_basic", "LSTM", (5, 4), {}, (6, 3, 5), False),
    ("lstm_h0c0", "LSTM", (5, 4), {}, (6, 3, 5), True),
    ("lstm_2layer_bidir_batchfirst", "LSTM", (5, 4), {"num_layers": 2, "bidirectional": True, "batch_first": True}, (3, 6, 5), True),
    ("lstm_nobias", "LSTM", (3, 6), {"bias": False}, (4, 2, 3), False),
    ("lstm_unbatched", "LSTM", (5, 4), {}, (6, 5), True),
    ("gru_basic", "GRU", (5, 4), {}, (6, 3, 5), False),
    ("gru_h0", "GRU", (5, 4), {}, (6, 3, 5), True),
    ("gru_2layer_bidir_batchfirst", "GRU", (5, 4), {"num_layers": 2, "bidirectional": True, "batch_first": True}, (3, 6, 5), True),
    ("gru_nobias_bidir", "GRU", (3, 6), {"bias": False, "bidirectional": True}, (4, 2, 3), False),
    ("gru_unbatched", "GRU", (5, 4), {}, (6, 5), True),
]


def case(name, layer, args, kwargs, x_shape, with_state):
    seed(name)
    m = getattr(nn, layer)(*args, **kwargs)
    x = torch.randn(x_shape)
    layers = kwargs.get("num_layers", 1) * (2 if kwargs.get("bidirectional") else 1)
    batch = [] if len(x_shape) == 2 else [x_shape[0] if kwargs.get("batch_first") else x_shape[1]]
    state_shape = [layers, *batch, args[1]]
    h0 = torch.randn(state_shape) if with_state else None
    c0 = torch.randn(state_shape) if with_state and layer == "LSTM" else None
    c = {"name": name, "layer": layer, "args": list(args), "kwargs": kwargs, "state": enc_state(m), "x": enc(x)}
    m.double()
    xd = x.double().requires_grad_()
    h0d = h0.double().requires_grad_() if h0 is not None else None
    c0d = c0.double().requires_grad_() if c0 is not None else None
    if layer == "LSTM":
        y, (hn, cn) = m(xd, (h0d, c0d)) if with_state else m(xd)
    else:
        y, hn = m(xd, h0d) if with_state else m(xd)
        cn = None
    g, gh = torch.randn(y.shape), torch.randn(hn.shape)
    loss = (y * g.double()).sum() + (hn * gh.double()).sum()
    c.update({"g": enc(g), "gh": enc(gh), "y": enc(y), "hn": enc(hn)})
    if cn is not None:
        gc = torch.randn(cn.shape)
        loss = loss + (cn * gc.double()).sum()
        c.update({"gc": enc(gc), "cn": enc(cn)})
    loss.backward()
    if h0 is not None:
        c["h0"] = enc(h0)
    if c0 is not None:
        c["c0"] = enc(c0)
    grads = {"x": enc(xd.grad)}
    if h0d is not None:
        grads["h0"] = enc(h0d.grad)
    if c0d is not None:
        grads["c0"] = enc(c0d.grad)
    for k, p in m.named_parameters():
        grads[k] = enc(p.grad)
    c["grads"] = grads
    c["repr"] = repr(m)
    return c


def sequence_cases():
    out = []
    for name, args, kwargs, x_shape in [
        ("layernorm_last", [4], {}, (2, 3, 4)),
        ("layernorm_two_dims", [[3, 4]], {"eps": 1e-3}, (2, 3, 4)),
        ("layernorm_no_affine", [5], {"elementwise_affine": False}, (3, 5)),
    ]:
        seed(name)
        m = nn.LayerNorm(*args, **kwargs)
        if m.elementwise_affine:
            with torch.no_grad():
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.5)
        x = torch.randn(x_shape) * 2 + 0.5
        c = {"name": name, "layer": "LayerNorm", "args": args, "kwargs": kwargs, "state": enc_state(m), "x": enc(x), "repr": repr(m)}
        m.double()
        xd = x.double().requires_grad_()
        y = m(xd)
        g = torch.randn(y.shape)
        (y * g.double()).sum().backward()
        c.update({"g": enc(g), "y": enc(y), "grads": {"x": enc(xd.grad), **{k: enc(p.grad) for k, p in m.named_parameters()}}})
        out.append(c)
    for name, args, kwargs, idx in [
        ("embedding_basic", [10, 3], {}, [[1, 2, 4, 5], [4, 3, 2, 9]]),
        ("embedding_padding", [10, 3], {"padding_idx": 2}, [[1, 2, 4, 5], [4, 3, 2, 9], [2, 2, 0, 4]]),
    ]:
        seed(name)
        m = nn.Embedding(*args, **kwargs)
        x = torch.tensor(idx)
        c = {"name": name, "layer": "Embedding", "args": args, "kwargs": kwargs, "state": enc_state(m), "x": enc(x), "repr": repr(m)}
        m.double()
        y = m(x)
        g = torch.randn(y.shape)
        (y * g.double()).sum().backward()
        c.update({"g": enc(g), "y": enc(y), "grads": {"weight": enc(m.weight.grad)}})
        out.append(c)
    seed("bmm")
    a, b = torch.randn(2, 3, 4), torch.randn(2, 4, 5)
    ad, bd = a.double().requires_grad_(), b.double().requires_grad_()
    y = torch.bmm(ad, bd)
    g = torch.randn(y.shape)
    (y * g.double()).sum().backward()
    out.append({"name": "bmm", "layer": "F.bmm", "args": [], "kwargs": {}, "state": {}, "x": enc(a), "x2": enc(b), "repr": "",
                "g": enc(g), "y": enc(y), "grads": {"x": enc(ad.grad), "x2": enc(bd.grad)}})
    return out


def main():
    torch.set_num_threads(1)
    for family, cases in [("rnn", [case(*c) for c in CASES]), ("sequence", sequence_cases())]:
        doc = {"generator": "scripts/golden/make_rnn_fixtures.py", "torch": torch.__version__, "cases": cases}
        text = dumps(doc) + "\n"
        path = os.path.join(OUT_DIR, f"{family}.json")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        print(f"{os.path.relpath(path)}: {len(doc['cases'])} cases, {len(text)} bytes")


if __name__ == "__main__":
    main()
