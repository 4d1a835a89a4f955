#!/usr/bin/env python3
"""ONNX import fixtures for nn.LSTM / nn.GRU (test/engine/onnx/import-recurrent.test.ts).

Run from the repository root with Debian's python3-torch and python3-onnx:

    /usr/bin/python3 scripts/golden/make_onnx_rnn_fixtures.py

For every model below it writes, under test/fixtures/onnx-rnn/ (a folder of its own: the fixture
list of import.test.ts is fixed), the same files as make_onnx_fixtures.py:
    <name>.default.onnx    torch.onnx.export(model.eval(), ...) with its defaults: LSTM/GRU weights
                           reordered into anonymous initializers (onnx::LSTM_349), module paths only
                           in node names (/rnn/LSTM, /rnn/LSTM_1)
    <name>.preserve.onnx   training=TrainingMode.PRESERVE, do_constant_folding=False: initializers
                           named like the state dict (rnn.weight_ih_l0), the reorder done by
                           Slice/Concat/Unsqueeze nodes in the graph
and one <name>.json:
    name, opset, dynamic, input, output, modules, state_dict_keys   as make_onnx_fixtures.py
    state_dict             PyTorch's state dict ({key: {shape, data}})
    rnn                    the recurrent modules' configuration ({path: {type, input_size,
                           hidden_size, num_layers, bias, batch_first, bidirectional}})
Hidden sizes are at most 8 so that the files stay small.
"""
import json
import os
import warnings

import onnx
import torch
import torch.nn as nn

from make_onnx_fixtures import enc, seed  # scripts/golden/make_onnx_fixtures.py: the same encoding and seeds

torch.set_num_threads(1)
warnings.filterwarnings("ignore")
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "test", "fixtures", "onnx-rnn")


# ---- the models ---------------------------------------------------------------------------------
class GRUClassifier(nn.Module):
    """Conv1d → ReLU → GRU (seq-first, after a permute) → Linear on the last hidden state."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(3, 6, 3, padding=1)
        self.relu = nn.ReLU()
        self.gru = nn.GRU(6, 8)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):  # [B, 3, T]
        x = self.relu(self.conv(x)).permute(2, 0, 1)
        y, h = self.gru(x)
        return self.fc(h[-1])


class BiLSTM(nn.Module):
    """2-layer bidirectional batch_first LSTM; the head reads the last step and both final states."""

    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(5, 4, num_layers=2, bidirectional=True, batch_first=True)
        self.fc = nn.Linear(16, 3)

    def forward(self, x):  # [B, T, 5]
        y, (h, c) = self.rnn(x)
        return self.fc(torch.cat([y[:, -1], h[-1], c[-2]], dim=1))


class GRUStack(nn.Module):
    """2-layer GRU without bias at opset 11 (Squeeze with an axes attribute between the layers)."""

    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(4, 6, num_layers=2, bias=False)

    def forward(self, x):  # [T, B, 4]
        y, _ = self.rnn(x)
        return y


class GRUWithH0(nn.Module):
    """batch_first GRU whose initial state is computed from the input."""

    def __init__(self):
        super().__init__()
        self.init = nn.Linear(5, 6)
        self.gru = nn.GRU(5, 6, batch_first=True)

    def forward(self, x):  # [B, T, 5]
        h0 = torch.tanh(self.init(x.mean(1))).unsqueeze(0)
        y, _ = self.gru(x, h0)
        return y


class LSTMWithState(nn.Module):
    """2-layer LSTM with h0 and c0 computed from the input (sliced per layer in the graph)."""

    def __init__(self):
        super().__init__()
        self.init = nn.Linear(5, 12)
        self.lstm = nn.LSTM(5, 6, num_layers=2)

    def forward(self, x):  # [T, B, 5]
        b = x.shape[1]
        h0 = torch.tanh(self.init(x.mean(0))).view(b, 2, 6).transpose(0, 1).contiguous()
        y, (h, c) = self.lstm(x, (h0, h0 * 0.5))
        return y + c[-1]


# name: (class, input shape, opset, dynamic batch axis or None; importOnnx frees dim 0 only)
MODELS = {
    "gru_classifier": (GRUClassifier, [2, 3, 7], 13, 0),
    "bilstm": (BiLSTM, [2, 6, 5], 13, 0),
    "gru_stack": (GRUStack, [5, 2, 4], 11, None),
    "gru_h0": (GRUWithH0, [2, 6, 5], 14, 0),
    "lstm_state": (LSTMWithState, [5, 3, 5], 17, None),
}


def export(model, x, path, opset, dynamic, preserve):
    kwargs = dict(input_names=["input"], output_names=["output"], opset_version=opset)
    if dynamic is not None:
        kwargs["dynamic_axes"] = {"input": {dynamic: "batch"}, "output": {dynamic: "batch"}}
    if preserve:
        kwargs["training"] = torch.onnx.TrainingMode.PRESERVE
        kwargs["do_constant_folding"] = False
    torch.onnx.export(model, (x,), path, **kwargs)
    onnx.checker.check_model(onnx.load(path))


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, (cls, shape, opset, dynamic) in MODELS.items():
        seed(name)
        model = cls().eval()
        x = torch.randn(*shape)
        with torch.no_grad():
            y = model(x)
        for mode in ("default", "preserve"):
            export(model, x, os.path.join(OUT, f"{name}.{mode}.onnx"), opset, dynamic, mode == "preserve")
        rnn = {
            p: {"type": type(m).__name__, "input_size": m.input_size, "hidden_size": m.hidden_size, "num_layers": m.num_layers,
                "bias": m.bias, "batch_first": m.batch_first, "bidirectional": m.bidirectional}
            for p, m in model.named_modules() if isinstance(m, (nn.LSTM, nn.GRU))
        }
        meta = {
            "name": name, "opset": opset, "dynamic": dynamic,
            "input": enc(x), "output": enc(y),
            "modules": [[p, type(m).__name__] for p, m in model.named_modules() if p],
            "state_dict_keys": list(model.state_dict().keys()),
            "state_dict": {k: enc(v) for k, v in model.state_dict().items()},
            "rnn": rnn,
        }
        with open(os.path.join(OUT, f"{name}.json"), "w") as f:
            json.dump(meta, f, separators=(",", ":"))
        print(name, "ok")


if __name__ == "__main__":
    main()
