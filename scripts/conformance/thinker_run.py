#!/usr/bin/env python3
"""The live half of the thinker check (docs/onnx.md, "thinker conformance"): every case folder that
scripts/conformance/thinker_export.ts wrote (model.onnx, input_<k>.f32.bin, engine_<k>.txt) is
packed by the REAL tpacker v1.1.0 and run on thinker's x86 executor, unmodified (no --compat), and
thinker's output is compared bit for bit with the engine's integer eval.

  /usr/bin/python3 scripts/conformance/thinker_run.py <cases dir> --build <thinker build dir> \
      [--tools <dir of run_thinker.py>] [--out verdicts.json] [--keep N]

Writes a verdict per case (packs, passed/failed inputs, the first error line, thinker's outputs of
the first --keep inputs) to --out; exit 1 when a case whose export succeeded fails to pack, or
differs, unless the case is listed as a known thinker limitation in the export (case.json
`expect`).
"""
import argparse, glob, json, os, re, struct, subprocess, sys

HERE = os.path.dirname(os.path.abspath(__file__))
THINKER = "v1.1.0 (commit 020ee121)"


def f32(x):
    return struct.unpack("f", struct.pack("f", x))[0]


def run_case(d, tools, build, keep):
    meta = json.load(open(os.path.join(d, "case.json")))
    v = {"about": meta.get("about", "")}
    if meta.get("graphHash"):
        v["graphHash"] = meta["graphHash"]
    if meta.get("exportError"):
        v.update(packs=None, exportError=meta["exportError"])
        return meta["name"], v
    n = len(glob.glob(os.path.join(d, "input_*.f32.bin")))
    ins = [os.path.join(d, f"input_{k}.f32.bin") for k in range(n)]
    p = subprocess.run([sys.executable, os.path.join(tools, "run_thinker.py"), os.path.join(d, "model.onnx"), *ins,
                        "--io", "float", "--build", build, "--work", os.path.join(d, "work")], capture_output=True, text=True)
    out = p.stdout
    with open(os.path.join(d, "run.log"), "w") as f:
        f.write(out + p.stderr)
    v["packs"] = out.startswith("tpacker: packed")
    if not v["packs"]:
        err = [l for l in p.stderr.splitlines() if l.strip() and not l.startswith("run_thinker:")]
        v["error"] = (err[-1] if err else p.stderr.strip()[-300:]).strip()
        return meta["name"], v
    # thinker_run prints float32 outputs with 9 significant digits: exact as float32, so the
    # comparison with the engine's values is in float32 (run_thinker.py's own --ref compares doubles)
    outs = [[f32(float(t)) for t in o.split()] for o in re.findall(r"thinker output \S+ \([^)]*\):\n  (.*)", out)]
    v["passed"] = v["failed"] = 0
    for k in range(n):
        ref = [f32(float(t)) for t in open(os.path.join(d, f"engine_{k}.txt")).read().split()]
        got = outs[k] if k < len(outs) else None
        if got is not None and got == ref:
            v["passed"] += 1
            continue
        v["failed"] += 1
        if "firstDifference" not in v:
            if got is None:
                v["firstDifference"] = f"input {k}: " + ((p.stderr.strip().splitlines() or ["the executor failed"])[-1])
            else:
                diff = [i for i, (a, b) in enumerate(zip(got, ref)) if a != b]
                v["firstDifference"] = (f"input {k}: {len(diff)} of {len(ref)} values differ, e.g. [{diff[0]}] thinker {got[diff[0]]!r}, engine {ref[diff[0]]!r}"
                                        if diff else f"input {k}: thinker gave {len(got)} values, the engine {len(ref)}")
    v["outputs"] = outs[:keep]
    return meta["name"], v


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cases")
    ap.add_argument("--build", required=True)
    ap.add_argument("--tools", default=os.environ.get("THINKER_TOOLS", os.path.join(HERE, "..", "..", "..", "shared", "reference", "thinker")))
    ap.add_argument("--out")
    ap.add_argument("--keep", type=int, default=4)
    a = ap.parse_args()
    if not os.path.exists(os.path.join(a.tools, "run_thinker.py")):
        sys.exit(f"thinker_run: no run_thinker.py in {a.tools} (set THINKER_TOOLS)")
    verdicts, bad = {}, []
    for d in sorted(glob.glob(os.path.join(a.cases, "*", "case.json"))):
        d = os.path.dirname(d)
        name, v = run_case(d, a.tools, a.build, a.keep)
        verdicts[name] = v
        if v.get("exportError"):
            line = f"export refused: {v['exportError']}"
        elif not v["packs"]:
            line = f"tpacker REJECTS: {v['error']}"
            bad.append(name)
        else:
            line = f"packs; {v['passed']} of {v['passed'] + v['failed']} inputs bit-exact" + (f" ({v.get('firstDifference')})" if v["failed"] else "")
            if v["failed"]:
                bad.append(name)
        print(f"{name}: {line}", flush=True)
    doc = {"made_by": "scripts/conformance/thinker_run.py (inputs and engine values: thinker_export.ts)", "thinker": THINKER, "cases": verdicts}
    if a.out:
        with open(a.out, "w") as f:
            json.dump(doc, f, indent=1, sort_keys=True)
            f.write("\n")
    print(f"thinker: {len(verdicts) - len(bad)} of {len(verdicts)} cases conform" + (f"; not: {', '.join(bad)}" if bad else ""))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
