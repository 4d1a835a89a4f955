#!/usr/bin/env python3
"""The live half of the chip check (docs/chip-rules.md): every case folder that
scripts/conformance/chip_export.ts wrote (model.onnx, case.json) is packed by the REAL tpacker
v1.1.0 (unmodified). Records whether tpacker refuses, the op it stops in (the ONNX node of the
traceback's operator) and its assertion, and, when it packs, the memory it reports
("MemType.<X> need capacity: N Bytes"), packed as float in / out (`-s Remove_QuantDequant`) and as
tpacker's default command packs (int8 in / out).

  /usr/bin/python3 scripts/conformance/chip_run.py <cases dir> --build <thinker build dir> [--out verdicts.json]
"""
import argparse, glob, json, os, re, subprocess, sys

THINKER = "v1.1.0 (commit 020ee121)"
# tpacker run as `python -m thinker.tpacker`; os.getlogin() fails without a tty (as run_thinker.py does)
BOOT = ("import os, runpy, sys; os.getlogin = lambda: 'thinker'; sys.argv = ['tpacker'] + sys.argv[1:]; "
        "runpy.run_module('thinker.tpacker', run_name='__main__')")


def layer_of(node_name):
    """The module path of a node the exporter named by its scopes ('/features/features.0/Conv2dInt' -> 'features.0')."""
    parts = [p for p in node_name.split("/") if p][:-1]
    path = []
    for p in parts:
        if path and p.startswith(path[-1] + ".") and p[len(path[-1]) + 1:].isdigit():
            path.append(p[len(path[-1]) + 1:])
        else:
            path.append(p)
    while path and path[-1][:1].isupper():
        path.pop()
    return ".".join(path)


def refused_node(onnx_path, log):
    """The op type of the traceback's ops/<Op>.py and the graph's nodes of that type (the log names no node)."""
    import onnx
    m = re.findall(r"resource_packer/ops/(\w+)\.py", log)
    op = m[-1] if m else None
    g = onnx.load(onnx_path).graph
    if op is None:  # a graph pass refused (graph_optimizer/…): any of linger's nodes
        return None, [n for n in g.node if n.domain == "thinker" and n.op_type not in ("Quant", "Dequant")]
    ops = {"MaxPool", "AvgPool2dInt"} if op == "Pool" else {op}
    return op, [n for n in g.node if n.op_type in ops]


def pack(onnx_path, work, build, keep_quant=True):
    """keep_quant: `-s Remove_QuantDequant` (float32 in and out); else tpacker's default, which strips them (int8)"""
    env = dict(os.environ, PYTHONPATH=os.path.join(build, "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    pkg = os.path.join(work, "model.bin")
    os.makedirs(work, exist_ok=True)
    p = subprocess.run([sys.executable, "-W", "ignore", "-c", BOOT, "-g", onnx_path, "-o", pkg] + (["-s", "Remove_QuantDequant"] if keep_quant else []),
                       cwd=work, env=env, capture_output=True, text=True)
    log = p.stdout + p.stderr
    with open(os.path.join(work, "tpacker.log"), "w") as f:
        f.write(log)
    return p.returncode == 0 and os.path.exists(pkg), log


def single_node_model(onnx_path, keep, out):
    """The graph cut after node `keep` (its output the graph's output): packing it tells whether tpacker already
    refuses at that node, which names the refused node when the graph has several of the op type."""
    import onnx
    from onnx import helper
    m = onnx.load(onnx_path)
    g = m.graph
    idx = [i for i, n in enumerate(g.node) if n.name == keep][0]
    node = g.node[idx]
    nodes = list(g.node[: idx + 1])
    del g.node[:]
    g.node.extend(nodes)
    del g.output[:]
    g.output.extend([helper.make_tensor_value_info(node.output[0], onnx.TensorProto.INT8, None)])
    onnx.save(m, out)


def run_case(d, build):
    meta = json.load(open(os.path.join(d, "case.json")))
    v = {"about": meta.get("about", ""), "layer": meta.get("layer", "")}
    if meta.get("exportError"):
        v.update(verdict="export-refused", exportError=meta["exportError"])
        return meta["name"], v
    work = os.path.join(d, "work")
    os.makedirs(work, exist_ok=True)
    onnx_path = os.path.join(d, "model.onnx")
    ok, log = pack(onnx_path, work, build)
    if ok:
        v["verdict"] = "packs"
        v["memory"] = {k: int(n) for k, n in re.findall(r"MemType\.(\w+) need capacity: (\d+) Bytes", log)}
        # and as tpacker's default command packs it (int8 in and out): the plan checkChip gives with io 'int'
        ok2, log2 = pack(onnx_path, os.path.join(work, "int"), build, keep_quant=False)
        if ok2:
            v["memoryInt"] = {k: int(n) for k, n in re.findall(r"MemType\.(\w+) need capacity: (\d+) Bytes", log2)}
        return meta["name"], v
    err = [l for l in log.splitlines() if l.strip()]
    v["verdict"] = "refused"
    v["error"] = next((l.strip() for l in reversed(err) if "Error" in l), err[-1].strip() if err else "")
    mem = re.findall(r"thinker/resource_packer/(_type/_tMemory\.py)\", line (\d+)", log)
    if mem:  # the plan does not fit the chip (SHARE_MEM over 640 KB, PSRAM over 8 MB): the model, no node
        v.update(op="memory", source=f"{mem[-1][0]}:{mem[-1][1]}", refusedLayer="")
        return meta["name"], v
    unsupported = re.search(r"do not support (\w+)!", log)
    if unsupported:  # an op type the platform has no kernel for (combine.py): the first node of that type
        import onnx
        node = next(n for n in onnx.load(onnx_path).graph.node if n.op_type == unsupported.group(1))
        src = re.findall(r"thinker/(combine\.py)\", line (\d+)", log)
        v.update(op=node.op_type, node=node.name, refusedLayer=layer_of(node.name), source=f"{src[-1][0]}:{src[-1][1]}")
        return meta["name"], v
    op, cands = refused_node(onnx_path, log)
    v["op"] = op
    src = re.findall(r"thinker/(?:resource_packer/)?((?:ops|graph_optimizer)/\w+\.py)\", line (\d+)", log)
    if src:
        v["source"] = f"{src[-1][0]}:{src[-1][1]}"
    # which node: the first candidate whose graph cut after it tpacker already refuses
    refused = None
    if len(cands) == 1:
        refused = cands[0].name
    else:
        for n in cands:
            cut = os.path.join(work, "cut.onnx")
            single_node_model(onnx_path, n.name, cut)
            ok2, log2 = pack(cut, work, build)
            if not ok2 and re.search(r"resource_packer/ops/|graph_optimizer/", log2):
                refused = n.name
                break
    if refused:
        v["node"] = refused
        v["refusedLayer"] = layer_of(refused)
        v["op"] = v["op"] or next(n.op_type for n in cands if n.name == refused)
    return meta["name"], v


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cases")
    ap.add_argument("--build", required=True)
    ap.add_argument("--out")
    a = ap.parse_args()
    verdicts = {}
    for d in sorted(glob.glob(os.path.join(a.cases, "*", "case.json"))):
        name, v = run_case(os.path.dirname(d), os.path.abspath(a.build))
        verdicts[name] = v
        print(f"{name}: {v['verdict']}" + (f" at '{v.get('refusedLayer')}' ({v.get('op')}): {v.get('error')}" if v["verdict"] == "refused" else "")
              + (f" {v.get('memory')}" if v.get("memory") else ""), flush=True)
    doc = {"made_by": "scripts/conformance/chip_run.py (models: scripts/conformance/chip_export.ts)", "thinker": THINKER, "cases": verdicts}
    if a.out:
        with open(a.out, "w") as f:
            json.dump(doc, f, indent=1, sort_keys=True)
            f.write("\n")


if __name__ == "__main__":
    main()
