#!/usr/bin/env node
// npm run conformance: re-runs the REAL reference programs live (docs/onnx.md, "thinker
// conformance") when they are present — ../shared/reference (next to the repository), or
// THINKER_SRC / LINGER_SRC (extracted trees) — and says plainly what it skips.
//
//   thinker v1.1.0: extract + build (scripts of ../shared/reference/thinker), export every case of
//     test/engine/conformance/thinkerCases.ts, pack each with tpacker and run it on the executor,
//     compare with the engine's integer eval; train two tiny demo checkpoints (DemoCNN, DemoGRU),
//     export them with `linger export --dialect thinker` (no model file) and run 200 test images.
//   chip rules: export every model of test/engine/chip/chipCases.ts (thinker dialect, unchecked),
//     pack each with tpacker (scripts/conformance/chip_run.py): refused or not, at which layer, and
//     the memory it plans, against test/fixtures/chip/verdicts.json (docs/chip-rules.md).
//   linger 1.1.1: what linger.onnx.export writes for the same small models (attribute names), and
//     scripts/conformance/live_linger.py when it exists (the fixed-stage numerics against real linger).
//
// The live verdicts must equal the committed fixtures (test/fixtures/conformance/thinker/);
// `npm run conformance -- --update` rewrites them instead. Exit 1 on a difference or failure.
// Env: CONFORMANCE_WORK (work dir, kept), PYTHON (/usr/bin/python3), THINKER_TOOLS (run_thinker.py's dir).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const REF = process.env.LINGER_REFERENCE ?? path.resolve(ROOT, '..', 'shared', 'reference');
const PY = process.env.PYTHON ?? '/usr/bin/python3';
const FIX = path.join(ROOT, 'test', 'fixtures', 'conformance', 'thinker');
const update = process.argv.includes('--update');
const work = process.env.CONFORMANCE_WORK ?? fs.mkdtempSync(path.join(os.tmpdir(), 'linger-conformance-'));
fs.mkdirSync(work, { recursive: true });
const failures = [];
let thinkerBuild = null;
const skipped = [];
const t0 = Date.now();

const say = (s) => console.log(`conformance: ${s}`);
function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, {
    cwd: ROOT,
    encoding: 'utf8',
    stdio: opts.quiet ? 'pipe' : 'inherit',
    env: { ...process.env, ...(opts.env ?? {}) },
  });
  if (r.status !== 0 && !opts.allowFail)
    throw new Error(
      `${cmd} ${args.join(' ')} exited ${r.status}${opts.quiet ? `:\n${(r.stdout ?? '') + (r.stderr ?? '')}`.slice(-3000) : ''}`,
    );
  return r;
}
const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
const pyHas = (mods) => spawnSync(PY, ['-c', `import ${mods}`], { stdio: 'ignore' }).status === 0;

/** An extracted tree: the env var's, else the tarball extracted into the work dir. */
function tree(envVar, tarball, dirName) {
  if (process.env[envVar]) return process.env[envVar];
  const tgz = path.join(REF, tarball);
  if (!fs.existsSync(tgz)) return null;
  const dest = path.join(work, dirName);
  if (!fs.existsSync(dest)) run('tar', ['-xzf', tgz, '-C', work]);
  return dest;
}

function thinker() {
  const src = tree('THINKER_SRC', 'thinker-v1.1.0.tar.gz', 'thinker-v1.1.0');
  const tools = process.env.THINKER_TOOLS ?? path.join(REF, 'thinker');
  if (!src) return skipped.push(`thinker: no ${path.join(REF, 'thinker-v1.1.0.tar.gz')} and no THINKER_SRC`);
  if (!fs.existsSync(path.join(tools, 'build.sh'))) return skipped.push(`thinker: no build.sh/run_thinker.py in ${tools} (THINKER_TOOLS)`);
  const missing = ['cmake', 'make', 'cc'].filter((c) => !has(c));
  if (missing.length || !pyHas('onnx, numpy, sympy, cffi')) {
    return skipped.push(
      `thinker: needs cmake build-essential python3-onnx python3-numpy python3-sympy python3-cffi (missing: ${[...missing, ...(pyHas('onnx, numpy, sympy, cffi') ? [] : ['python modules'])].join(', ')})`,
    );
  }
  const build = path.join(work, 'thinker-build');
  thinkerBuild = build;
  say(`building thinker v1.1.0 in ${build}`);
  run('bash', [path.join(tools, 'build.sh'), build], { env: { THINKER_SRC: src }, quiet: true });
  const cases = path.join(work, 'cases');
  fs.rmSync(cases, { recursive: true, force: true });
  say('exporting the thinker cases');
  run(process.execPath, ['--import', 'tsx', 'scripts/conformance/thinker_export.ts', cases, '--inputs', '4'], { quiet: true });
  demoCheckpoints(cases);
  say("packing with tpacker and running on thinker's executor");
  const out = path.join(work, 'verdicts.json');
  run(PY, [path.join(ROOT, 'scripts', 'conformance', 'thinker_run.py'), cases, '--build', build, '--tools', tools, '--out', out], {
    allowFail: true,
  });
  const live = JSON.parse(fs.readFileSync(out, 'utf8'));
  const file = path.join(FIX, 'verdicts.json');
  if (update) {
    fs.writeFileSync(file, JSON.stringify(live, null, 1) + '\n');
    return say(`wrote ${path.relative(ROOT, file)}`);
  }
  const committed = JSON.parse(fs.readFileSync(file, 'utf8'));
  for (const [name, v] of Object.entries(live.cases)) {
    const c = committed.cases[name];
    const key = (x) =>
      JSON.stringify(
        x && {
          packs: x.packs,
          passed: x.passed,
          failed: x.failed,
          refused: !!x.exportError,
          ...(name.endsWith('_cli') ? {} : { graphHash: x.graphHash }),
        },
      );
    if (!c) failures.push(`thinker ${name}: not in the committed verdicts (npm run conformance -- --update)`);
    else if (key(v) !== key(c)) failures.push(`thinker ${name}: live ${key(v)} vs committed ${key(c)}`);
    // a GRU whose state is not at 2^8 is refused by the export (thinker's GRU kernel would compute
    // another GRU): said, not failed (docs/fixed-point.md, the chip's GRUInt)
    const gruState = /reads the state as if at 2\^8/.test(v.exportError ?? '');
    if (gruState) say(`${name}: refused as thinker v1.1.0 cannot run it: ${v.exportError}`);
    else if (name.endsWith('_cli') && !(v.packs && v.failed === 0))
      failures.push(`thinker ${name}: the CLI's export is not bit-exact on thinker (${v.error ?? v.firstDifference ?? v.exportError})`);
  }
}

/** Two tiny demo checkpoints, exported by the CLI with no model file, with 200 test images each. */
function demoCheckpoints(cases) {
  for (const model of ['cnn', 'gru']) {
    const ck = path.join(work, 'checkpoints');
    const exp = `demo-${model}`;
    say(`training a tiny Demo${model.toUpperCase()} checkpoint (linger demo --epochs 0,0,1 --limit 60)`);
    fs.rmSync(path.join(ck, exp), { recursive: true, force: true });
    run(
      process.execPath,
      [
        '--import',
        'tsx',
        'src/engine/cli.ts',
        'demo',
        '--model',
        model,
        '--epochs',
        '0,0,1',
        '--limit',
        '60',
        '--workers',
        '1',
        '--checkpoints',
        ck,
        '--experiment',
        exp,
      ],
      { quiet: true },
    );
    const fixed = path.join(ck, exp, 'fixed.safetensors');
    const name = `demo_${model}_cli`;
    const dir = path.join(cases, name);
    fs.mkdirSync(dir, { recursive: true });
    run(
      process.execPath,
      ['--import', 'tsx', 'src/engine/cli.ts', 'export', '--checkpoint', fixed, '--dialect', 'thinker', '-o', path.join(dir, 'model.onnx')],
      { quiet: true },
    );
    run(
      process.execPath,
      ['--import', 'tsx', 'scripts/conformance/thinker_export.ts', cases, '--checkpoint', fixed, '--name', name, '--images', '200'],
      { quiet: true },
    );
  }
}

/** The chip corpus: tpacker's verdict on every model (docs/chip-rules.md). */
function chip() {
  if (!thinkerBuild) return skipped.push('chip rules: no thinker build (see the thinker step)');
  const cases = path.join(work, 'chip-cases');
  fs.rmSync(cases, { recursive: true, force: true });
  say('chip rules: exporting the chip corpus and packing each model with tpacker');
  run(process.execPath, ['--import', 'tsx', 'scripts/conformance/chip_export.ts', cases], { quiet: true });
  const out = path.join(work, 'chip-verdicts.json');
  run(PY, [path.join(ROOT, 'scripts', 'conformance', 'chip_run.py'), cases, '--build', thinkerBuild, '--out', out], { quiet: true });
  const file = path.join(ROOT, 'test', 'fixtures', 'chip', 'verdicts.json');
  if (update) {
    fs.copyFileSync(out, file);
    return say(`wrote ${path.relative(ROOT, file)}`);
  }
  const live = JSON.parse(fs.readFileSync(out, 'utf8')).cases;
  const committed = JSON.parse(fs.readFileSync(file, 'utf8')).cases;
  const key = (v) => v && JSON.stringify([v.verdict, v.refusedLayer, v.source, v.memory, v.memoryInt]);
  for (const name of new Set([...Object.keys(live), ...Object.keys(committed)]))
    if (key(live[name]) !== key(committed[name]))
      failures.push(`chip ${name}: live ${key(live[name])} vs committed ${key(committed[name])} (npm run conformance -- --update)`);
}

function linger() {
  const src = tree('LINGER_SRC', 'linger-v1.1.1.tar.gz', 'linger-v1.1.1');
  const compat = process.env.LINGER_COMPAT ?? path.join(REF, 'linger');
  if (!src) return skipped.push(`linger: no ${path.join(REF, 'linger-v1.1.1.tar.gz')} and no LINGER_SRC`);
  if (!pyHas('torch, onnx, numpy, prettytable'))
    return skipped.push('linger: needs python3-torch python3-onnx python3-numpy python3-prettytable');
  if (!fs.existsSync(path.join(compat, 'linger_compat.py')))
    return skipped.push(`linger: no linger_compat.py in ${compat} (LINGER_COMPAT)`);
  const env = { LINGER_SRC: src, LINGER_COMPAT: compat };
  say("real linger 1.1.1: its thinker export's attributes for the small models");
  const out = path.join(work, 'linger_attrs.json');
  run(PY, [path.join(ROOT, 'scripts', 'conformance', 'thinker_linger_attrs.py'), update ? path.join(FIX, 'linger_attrs.json') : out], {
    env,
    quiet: true,
  });
  if (!update) {
    const strip = (f) => JSON.stringify(JSON.parse(fs.readFileSync(f, 'utf8')).cases);
    if (strip(out) !== strip(path.join(FIX, 'linger_attrs.json')))
      failures.push("linger: linger.onnx.export's attributes differ from test/fixtures/conformance/thinker/linger_attrs.json");
  }
  const live = path.join(ROOT, 'scripts', 'conformance', 'live_linger.py');
  if (fs.existsSync(live)) {
    // our engine's final state dict of every linger conformance model, then each loaded strictly
    // into the real linger's model (scripts/conformance/live_linger.py)
    say('our state dicts of the linger conformance models (node scripts/test.mjs conformance/linger)');
    const ours = path.join(work, 'ours');
    fs.mkdirSync(ours, { recursive: true });
    run(process.execPath, [path.join(ROOT, 'scripts', 'test.mjs'), 'conformance/linger'], {
      env: { ...env, LINGER_STATE_DIR: ours },
      quiet: true,
    });
    say('scripts/conformance/live_linger.py: each loaded strictly into real linger 1.1.1');
    const r = run(PY, [live, ours], { env, allowFail: true });
    if (r.status !== 0) failures.push(`linger: live_linger.py exited ${r.status}`);
  } else {
    skipped.push('linger numerics: scripts/conformance/live_linger.py does not exist yet');
  }
}

try {
  thinker();
  chip();
  linger();
} catch (e) {
  failures.push(e.message);
}
for (const s of skipped) say(`SKIPPED ${s}`);
for (const f of failures) say(`FAILED ${f}`);
say(`${failures.length ? 'FAILED' : 'passed'} in ${((Date.now() - t0) / 1000).toFixed(0)} s (work dir ${work})`);
process.exit(failures.length ? 1 : 0);
