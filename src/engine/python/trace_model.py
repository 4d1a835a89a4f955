#!/usr/bin/env python3
"""Linger Studio's bridge to a user's PyTorch model file (docs/python-models.md).

Imports the file (this RUNS the user's code: the studio calls it only in a trusted workspace),
builds the model — create_model() when the file defines it, else the nn.Module class named by
--class (or the only one defined there) — and exports it to ONNX the way the studio's importer
keeps BatchNorm and the state-dict names (eval mode, TrainingMode.PRESERVE, no constant folding).
The input is example_input() when defined, else torch.randn(--input-shape).

    python3 trace_model.py model.py -o model.onnx --info info.json [--class Net] [--input-shape 1,1,28,28]

info.json always says what happened: {"ok": true, ...} with the class, the input shape, PyTorch's
own printout and the line of each module's definition, or {"ok": false, "kind": ..., "error":
..., "frame": "file:line in function"} — kinds: no-torch, import, choose-class, input-shape,
build, forward, export, usage. The exit status is 0 only when ok.
"""
import argparse
import importlib.util
import inspect
import json
import os
import re
import sys
import traceback


def last_frame(tb, prefer):
    """The innermost frame in the user's file when there is one, else the innermost frame."""
    frames = traceback.extract_tb(tb)
    mine = [f for f in frames if os.path.abspath(f.filename) == prefer]
    f = (mine or frames or [None])[-1]
    return None if f is None else {"file": f.filename, "line": f.lineno, "function": f.name, "text": (f.line or "").strip()}


def fail(info_path, kind, error, frame=None, **extra):
    out = {"ok": False, "kind": kind, "error": error, **({"frame": frame} if frame else {}), **extra}
    with open(info_path, "w", encoding="utf-8") as f:
        json.dump(out, f)
    sys.exit(1)


def definition_lines(model, user_file):
    """module path -> 1-based line of `self.<name> = ...` in the class that owns it, when in the user's file."""
    lines = {}
    for path, m in model.named_modules():
        if not path:
            continue
        parent_path, _, name = path.rpartition(".")
        parent = model.get_submodule(parent_path) if parent_path else model
        try:
            src_file = os.path.abspath(inspect.getsourcefile(type(parent)) or "")
            if src_file != user_file:
                continue
            src, start = inspect.getsourcelines(type(parent))
        except (OSError, TypeError):
            continue
        pat = re.compile(r"self\." + re.escape(name) + r"\s*(:[^=]*)?=")
        for i, text in enumerate(src):
            if pat.search(text):
                lines[path] = start + i
                break
        else:
            # a container's numbered child (Sequential's "0"): the container's own line
            if name.isdigit() and parent_path in lines:
                lines[path] = lines[parent_path]
    return lines


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--info", required=True)
    ap.add_argument("--class", dest="cls")
    ap.add_argument("--input-shape")
    a = ap.parse_args()
    user_file = os.path.abspath(a.file)
    try:
        import torch
        import torch.nn as nn
    except Exception as e:  # noqa: BLE001 (any failure to import torch is the same answer)
        fail(a.info, "no-torch", f"{sys.executable} cannot import torch: {e}", python=sys.executable)

    sys.path.insert(0, os.path.dirname(user_file))
    try:
        spec = importlib.util.spec_from_file_location("linger_studio_user_model", user_file)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod
        spec.loader.exec_module(mod)
    except BaseException as e:  # noqa: BLE001 (SystemExit in a script's top level too)
        fail(a.info, "import", f"{type(e).__name__}: {e}", last_frame(e.__traceback__, user_file))

    classes = [
        n for n, v in vars(mod).items()
        if inspect.isclass(v) and issubclass(v, nn.Module) and v.__module__ == mod.__name__
    ]
    factory = getattr(mod, "create_model", None)
    try:
        if a.cls:
            if a.cls not in classes:
                fail(a.info, "choose-class", f"no nn.Module class '{a.cls}' in the file" + (f" (it defines {', '.join(classes)})" if classes else ""), classes=classes)
            model, cls_name = getattr(mod, a.cls)(), a.cls
        elif callable(factory):
            model = factory()
            if not isinstance(model, nn.Module):
                fail(a.info, "build", f"create_model() returned {type(model).__name__}, not an nn.Module", classes=classes)
            cls_name = type(model).__name__
        elif len(classes) == 1:
            model, cls_name = getattr(mod, classes[0])(), classes[0]
        else:
            fail(
                a.info, "choose-class",
                f"the file defines {len(classes)} nn.Module classes and no create_model()"
                + (f": {', '.join(classes)}" if classes else ""),
                classes=classes,
            )
    except SystemExit:
        raise
    except BaseException as e:  # noqa: BLE001
        fail(a.info, "build", f"building the model: {type(e).__name__}: {e}", last_frame(e.__traceback__, user_file), classes=classes)

    example = getattr(mod, "example_input", None)
    try:
        if callable(example):
            x = example()
        elif a.input_shape:
            shape = [int(d) for d in a.input_shape.split(",")]
            if not shape or any(d <= 0 for d in shape):
                raise ValueError(f"not a shape: {a.input_shape}")
            x = torch.randn(*shape)
        else:
            fail(a.info, "input-shape", "the file defines no example_input(), and no input shape was given", classes=classes,
                 className=cls_name)
    except SystemExit:
        raise
    except BaseException as e:  # noqa: BLE001
        fail(a.info, "build", f"the example input: {type(e).__name__}: {e}", last_frame(e.__traceback__, user_file))
    xs = x if isinstance(x, tuple) else (x,)
    model.eval()
    try:
        with torch.no_grad():
            model(*xs)
    except BaseException as e:  # noqa: BLE001
        fail(a.info, "forward", f"forward on an input of shape {[list(t.shape) for t in xs]}: {type(e).__name__}: {e}",
             last_frame(e.__traceback__, user_file))
    try:
        torch.onnx.export(
            model, xs, a.output, input_names=["input"] if len(xs) == 1 else None, output_names=["output"],
            opset_version=13, training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False,
        )
    except BaseException as e:  # noqa: BLE001
        fail(a.info, "export", f"torch.onnx.export: {type(e).__name__}: {e}", last_frame(e.__traceback__, user_file))
    out = {
        "ok": True,
        "className": cls_name,
        "classes": classes,
        "inputShape": list(xs[0].shape),
        "inputDtype": str(xs[0].dtype).replace("torch.", ""),
        "exampleInput": callable(example),
        "text": str(model),
        "definitions": definition_lines(model, user_file),
        "torch": torch.__version__,
    }
    with open(a.info, "w", encoding="utf-8") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()
