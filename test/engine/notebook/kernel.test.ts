// The notebook kernel (KernelSession and the thread it runs cells on), driven directly: REPL state
// across cells, errors in the cells' own lines, interrupts (at a step, at an await, and of code
// that never reaches one), displays, live fit output, the views' events, and loading checkpoints
// into the kernel's models.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CHART_MIME, seriesChart } from '../../../src/engine/notebook/display';
import type { KernelEvent, NbOutput } from '../../../src/engine/notebook/messages';
import { applyOutput } from '../../../src/engine/notebook/nbformat';
import { ExecuteResult, KernelSession, SessionOptions } from '../../../src/engine/notebook/session';

type ErrorOutput = Extract<NbOutput, { output_type: 'error' }>;
type DataOutput = Extract<NbOutput, { output_type: 'display_data' | 'execute_result' }>;

interface Ran {
  result: ExecuteResult;
  /** folded as a front end shows them (streams merged, displays updated in place) */
  outputs: NbOutput[];
  /** every output as it arrived */
  raw: NbOutput[];
  /** ms from interrupt() to the result, when the cell was interrupted */
  latencyMs?: number;
}

/** Runs a cell; `interruptAfterMs` interrupts it from here after that long. */
async function run(s: KernelSession, source: string, interruptAfterMs?: number): Promise<Ran> {
  const outputs: NbOutput[] = [];
  const raw: NbOutput[] = [];
  const ids = new Map<string, number>();
  let interruptedAt: number | undefined;
  let timer: NodeJS.Timeout | undefined;
  const p = s.execute(source, {
    onOutput: (o) => {
      raw.push(o);
      applyOutput(outputs, o, ids);
    },
  });
  // (an interrupt reaches a running cell only: a cell still waiting for the kernel to start is waited for)
  const interrupt = () => {
    if (!s.busy) {
      timer = setTimeout(interrupt, 50);
      return;
    }
    interruptedAt = performance.now();
    s.interrupt();
  };
  if (interruptAfterMs !== undefined) timer = setTimeout(interrupt, interruptAfterMs);
  // a failure bound, not a performance threshold
  let bound: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    bound = setTimeout(() => reject(new Error(`the cell did not finish within 60 s:\n${source}`)), 60_000);
  });
  try {
    const result = await Promise.race([p, limit]);
    return { result, outputs, raw, latencyMs: interruptedAt === undefined ? undefined : performance.now() - interruptedAt };
  } finally {
    clearTimeout(timer);
    clearTimeout(bound);
  }
}

/** Runs a cell that must succeed. */
async function ok(s: KernelSession, source: string): Promise<Ran> {
  const r = await run(s, source);
  assert.equal(r.result.status, 'ok', `the cell failed: ${JSON.stringify(r.outputs.find((o) => o.output_type === 'error'))}\n${source}`);
  return r;
}

const text = (o: NbOutput | undefined): string => String((o as DataOutput | undefined)?.data['text/plain'] ?? '');
const resultOf = (r: Ran) =>
  r.outputs.find((o): o is Extract<NbOutput, { output_type: 'execute_result' }> => o.output_type === 'execute_result');
const errorOf = (r: Ran) => r.outputs.find((o): o is ErrorOutput => o.output_type === 'error');
const displays = (r: Ran) => r.outputs.filter((o): o is DataOutput => o.output_type === 'display_data');
/** the text/plain of a cell's result (a cell ending in a string shows the string itself) */
async function value(s: KernelSession, source: string): Promise<string> {
  const r = await ok(s, source);
  const res = resultOf(r);
  assert.ok(res, `no result from:\n${source}`);
  return text(res);
}

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'linger-kernel-'));
}

/** A session in a fresh folder, disposed (and the folder removed) after the suite. */
function session(opts: Partial<SessionOptions> = {}) {
  const dir = tempDir();
  const events: KernelEvent[] = [];
  const log: string[] = [];
  const s = new KernelSession({ notebookDir: dir, onEvent: (e) => events.push(e), onLog: (l) => log.push(l), ...opts });
  return {
    s,
    dir,
    events,
    log,
    async dispose() {
      await s.dispose();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

describe("an interrupted cell's last outputs", () => {
  test('a cell that stopped at the interrupt is not restarted while its charts are still being drawn', async () => {
    // The grace period is shorter than drawing the chart the cell shows as it stops (the first
    // chart of the process loads vega: this suite runs first for that). The kernel has reported
    // the cell done by then, so it must not be restarted, which would lose the state.
    const g = session({ interruptGraceMs: 300 });
    try {
      await g.s.start();
      const r = await run(
        g.s,
        [
          'const w = new nn.Linear(4, 1);',
          'const sgd = new optim.SGD(w.parameters(), { lr: 0.01 });',
          'let n = 0;',
          'try {',
          '  while (true) { sgd.step(() => w(randn([4, 4])).pow(2).mean()); n++; }',
          '} finally {',
          '  display({ loss: [3, 2, 1] });',
          '}',
        ].join('\n'),
        500,
      );
      assert.equal(r.result.ename, 'InterruptedError', JSON.stringify(r.result));
      assert.equal(r.result.restarted, undefined);
      assert.deepEqual(
        r.outputs.map((o) => o.output_type),
        ['display_data', 'error'],
      );
      assert.match(String((r.outputs[0] as DataOutput).data['image/svg+xml']), /^<svg/);
      const next = await ok(g.s, 'n > 0 && String(w)');
      assert.equal(text(resultOf(next)), 'Linear(in_features=4, out_features=1, bias=True)');
      assert.equal(next.result.executionCount, 2);
    } finally {
      await g.dispose();
    }
  });
});

describe('REPL state across cells', () => {
  const k = session();
  before(async () => {
    await k.s.start();
  });
  after(() => k.dispose());

  test('declarations, imports, hoisting, destructuring, await, results and streams', async () => {
    const counts: number[] = [];
    const c1 = await ok(
      k.s,
      [
        "import { nn, DemoCNN as Cnn } from 'linger-studio';",
        'const a: number = 2;',
        'let counter = 0;',
        'class Box { constructor(readonly v: number) {} }',
        'const early = later(3); // declared below: hoisted',
        'function later(n: number): number { return n * a; }',
        "console.log('to stdout', 1);",
        "console.error('to stderr');",
        "console.log('stdout again');",
        'early',
      ].join('\n'),
    );
    counts.push(c1.result.executionCount);
    const res1 = resultOf(c1);
    assert.equal(text(res1), '6');
    assert.equal(res1?.execution_count, 1);
    const streams = c1.outputs.filter((o): o is Extract<NbOutput, { output_type: 'stream' }> => o.output_type === 'stream');
    assert.deepEqual(
      streams.map((o) => [o.name, o.text]),
      [
        ['stdout', 'to stdout 1\n'],
        ['stderr', 'to stderr\n'],
        ['stdout', 'stdout again\n'],
      ],
    );
    assert.equal(c1.outputs[c1.outputs.length - 1].output_type, 'execute_result', "the result comes after the cell's streams");

    const c2 = await ok(
      k.s,
      [
        'counter = counter + 1;',
        'counter += 1;',
        'const b = new Box(a).v + later(1);',
        "const { p, q: [r1, r2], ...rest } = { p: 'P', q: [10, 20], s: 's', t: 't' };",
        'const [first, , third = 33] = [1, 2];',
        'const lin = new nn.Linear(4, 2);',
        'const cnn = new Cnn();',
        'const waited = await new Promise<number>((resolve) => setTimeout(() => resolve(42), 20));',
        'JSON.stringify({ counter, b, p, r1, r2, rest, first, third, linear: lin instanceof nn.Module, cnn: cnn.typeName(), waited })',
      ].join('\n'),
    );
    counts.push(c2.result.executionCount);
    assert.equal(resultOf(c2)?.execution_count, 2);
    assert.deepEqual(JSON.parse(text(resultOf(c2))), {
      counter: 2,
      b: 4,
      p: 'P',
      r1: 10,
      r2: 20,
      rest: { s: 's', t: 't' },
      first: 1,
      third: 33,
      linear: true,
      cnn: 'DemoCNN',
      waited: 42,
    });

    // a trailing statement that is not an expression gives no result; neither does an undefined value
    const c3 = await ok(k.s, 'counter = counter * 10;\nif (counter > 0) { counter++; }');
    counts.push(c3.result.executionCount);
    assert.deepEqual(c3.outputs, []);
    const c4 = await ok(k.s, 'const z = 5;');
    counts.push(c4.result.executionCount);
    assert.deepEqual(c4.outputs, []);
    const c5 = await ok(k.s, "console.log('only a stream')");
    counts.push(c5.result.executionCount);
    assert.deepEqual(c5.outputs, [{ output_type: 'stream', name: 'stdout', text: 'only a stream\n' }]);

    // `let` reassigned in a later cell, functions and classes still there
    const c6 = await ok(k.s, '`${counter} ${z} ${later(5)} ${new Box(7).v}`');
    counts.push(c6.result.executionCount);
    assert.equal(text(resultOf(c6)), '21 5 10 7');
    assert.equal(resultOf(c6)?.execution_count, 6);
    assert.deepEqual(counts, [1, 2, 3, 4, 5, 6]);
    assert.equal(k.s.executionCount, 6);
  });

  test('re-running a cell that declares const replaces the value (no "already declared")', async () => {
    const cell = 'const x = 1;\nlet y = x + 1;\nclass K {}\nfunction f() { return x; }\n[x, y, f()]';
    const first = await ok(k.s, cell);
    const again = await ok(k.s, cell);
    assert.equal(text(resultOf(first)), '[ 1, 2, 1 ]');
    assert.equal(text(resultOf(again)), '[ 1, 2, 1 ]');
    assert.equal(await value(k.s, 'const x = 2;\nx * 10'), '20');
    assert.equal(await value(k.s, 'f()'), '2', 'a function of an earlier cell reads the global');
    assert.equal(resultOf(again)?.execution_count, (resultOf(first)?.execution_count ?? 0) + 1);
  });
});

describe('errors', () => {
  const k = session();
  before(async () => {
    await k.s.start();
  });
  after(() => k.dispose());

  test("a TypeScript syntax error names the cell's own line and column", async () => {
    const r = await run(k.s, ['const typed: number = 1;', 'function id<T>(v: T): T { return v; }', 'const broken = (typed + ;'].join('\n'));
    assert.equal(r.result.status, 'error');
    assert.equal(r.result.ename, 'SyntaxError');
    const e = errorOf(r)!;
    assert.equal(e.ename, 'SyntaxError');
    assert.equal(e.traceback[0], `SyntaxError: ${e.evalue}`);
    assert.equal(e.traceback[1], '  at line 3, column 25');
    assert.equal(e.traceback[2], '    const broken = (typed + ;');
    assert.equal(e.traceback[3], `    ${' '.repeat(24)}^`);
    // nothing of the cell ran
    assert.equal(await value(k.s, 'typeof typed'), 'undefined');
  });

  test('a runtime error maps frames in earlier and later cells to their own lines; the kernel goes on', async () => {
    const defs = await ok(
      k.s,
      [
        '// helpers',
        'function explode(n: number): number {',
        '  if (n > 0) return explode(n - 1);',
        "  throw new Error('boom at the bottom');",
        '}',
      ].join('\n'),
    );
    const d = defs.result.executionCount;
    const r = await run(k.s, ['const kept: string = "still here";', 'const n: number = 1;', '  explode(n);'].join('\n'));
    const c = r.result.executionCount;
    assert.equal(r.result.status, 'error');
    assert.equal(r.result.ename, 'Error');
    assert.equal(r.result.evalue, 'boom at the bottom');
    const tb = errorOf(r)!.traceback;
    assert.equal(tb[0], 'Error: boom at the bottom');
    const frames = tb.filter((l) => l.startsWith('  at '));
    assert.deepEqual(
      frames,
      [
        `  at Cell [${d}], line 4, column 9 in explode`,
        `  at Cell [${d}], line 3, column 21 in explode`,
        `  at Cell [${c}], line 3, column 3`,
      ],
      tb.join('\n'),
    );
    // the source line of the innermost frame, with a caret
    assert.equal(tb[2], "      throw new Error('boom at the bottom');");
    assert.equal(tb[3], `    ${' '.repeat(8)}^`);
    assert.ok(!tb.some((l) => /node:|node_modules|src\/engine/.test(l)), `engine frames are elided:\n${tb.join('\n')}`);

    const after = await ok(k.s, 'kept + " " + explode.name');
    assert.equal(text(resultOf(after)), 'still here explode');
    assert.equal(after.result.executionCount, c + 1);
  });

  test('errors thrown as non-Errors, and a cell cannot export', async () => {
    const thrown = await run(k.s, "throw 'a plain string'");
    assert.equal(thrown.result.status, 'error');
    assert.equal(errorOf(thrown)?.evalue, 'a plain string');

    const r = await run(k.s, 'const fine = 1;\nexport const a = 1;');
    assert.equal(r.result.status, 'error');
    assert.equal(r.result.ename, 'SyntaxError');
    assert.match(r.result.evalue ?? '', /a notebook cell cannot export: its declarations are already visible to later cells/);
    assert.deepEqual(errorOf(r)?.traceback.slice(1), ['  at line 2, column 1', '    export const a = 1;', '    ^']);
    assert.equal(await value(k.s, 'typeof a'), 'undefined');
    // the export is found where it was written (the transpiled module gathers exports at its end)
    const later = await run(k.s, 'const x = 1;\n\n  export { x };\nconst y = 2;');
    assert.deepEqual(errorOf(later)?.traceback.slice(1), ['  at line 3, column 3', '      export { x };', '      ^']);
  });

  test('an error thrown later by a callback or an unawaited promise is reported, and the kernel keeps its state', async () => {
    const started = await ok(
      k.s,
      "const survives = 'yes';\nsetTimeout(() => { throw new Error('thrown by a timer'); }, 10);\nPromise.reject(new Error('nobody awaited this'));\n'started'",
    );
    assert.equal(text(resultOf(started)), 'started');
    await new Promise((r) => setTimeout(r, 300));
    const next = await ok(k.s, 'survives');
    assert.equal(text(resultOf(next)), 'yes', "the kernel thread was not ended (Emscripten's rethrowing handlers are replaced)");
    const stderr = next.outputs
      .filter((o) => o.output_type === 'stream' && o.name === 'stderr')
      .map((o) => (o as { text: string }).text)
      .join('');
    assert.match(stderr, /Error: thrown by a timer\n {2}at Cell \[\d+\], line 2, column 26/);
    assert.match(stderr, /Error: nobody awaited this/);
    assert.equal(next.result.executionCount, started.result.executionCount + 1, 'no restart');
  });
});

describe('interrupts', () => {
  const k = session({ interruptGraceMs: 1000 });
  before(async () => {
    await k.s.start();
  });
  after(() => k.dispose());
  const latencies: Record<string, number> = {};
  after(() =>
    console.log(
      `interrupt latency (interrupt() → the cell's result): ${Object.entries(latencies)
        .map(([w, ms]) => `${w} ${ms.toFixed(0)} ms`)
        .join(', ')}`,
    ),
  );

  test("the user's own training loop stops at its next step; the state it reached is kept", async (t) => {
    const r = await run(
      k.s,
      [
        'manualSeed(1);',
        'const tiny = new nn.Linear(4, 2);',
        'const opt = new optim.SGD(tiny.parameters(), { lr: 0.01 });',
        'let steps = 0;',
        'while (true) {',
        '  opt.step(() => F.crossEntropy(tiny(randn([8, 4])), tensor([0, 1, 0, 1, 1, 0, 0, 1], [8], "int32")));',
        '  steps++;',
        '}',
      ].join('\n'),
      1000,
    );
    assert.equal(r.result.status, 'error');
    assert.equal(r.result.ename, 'InterruptedError');
    assert.equal(r.result.restarted, undefined);
    assert.match(r.result.evalue ?? '', /^interrupted at (an optimizer step|a call of Linear)$/);
    assert.match(errorOf(r)!.traceback.join('\n'), /InterruptedError: interrupted at .*\n {2}at Cell \[\d+\], line 6, column \d+/);
    latencies['a step loop'] = r.latencyMs!;
    t.diagnostic(`step loop: interrupt → result ${r.latencyMs!.toFixed(0)} ms`);

    const state = JSON.parse(await value(k.s, 'JSON.stringify({ steps, model: String(tiny), stage: tiny.stage() })'));
    assert.ok(state.steps > 0, `steps ${state.steps}`);
    assert.equal(state.model, 'Linear(in_features=4, out_features=2, bias=True)');
    assert.equal(state.stage, 'float');
  });

  test('fit on a long DataLoader stops at its next batch or step; the model is kept', async (t) => {
    await ok(
      k.s,
      [
        'manualSeed(2);',
        'const n = 200_000;',
        'const set = data.fromArrays(Float32Array.from({ length: n * 4 }, () => Math.random()), Int32Array.from({ length: n }, (_, i) => i % 3), [4]);',
        'const loader = new data.DataLoader(set, { batchSize: 4, shuffle: true });',
        'const fitted = new nn.Linear(4, 3);',
      ].join('\n'),
    );
    const r = await run(k.s, 'fit(fitted, loader, new optim.SGD(fitted.parameters(), { lr: 0.05 }), { epochs: 10 })', 1000);
    assert.equal(r.result.status, 'error');
    assert.equal(r.result.ename, 'InterruptedError');
    assert.match(r.result.evalue ?? '', /^interrupted at (a DataLoader batch|an optimizer step|a call of Linear)$/);
    latencies.fit = r.latencyMs!;
    t.diagnostic(`fit: interrupt → result ${r.latencyMs!.toFixed(0)} ms`);
    // the live progress line says so
    assert.ok(
      displays(r).some((o) => / · interrupted after \d+ steps$/.test(text(o))),
      JSON.stringify(displays(r).map(text)),
    );
    assert.equal(await value(k.s, 'String(fitted) + " " + loader.length'), 'Linear(in_features=4, out_features=3, bias=True) 50000');
  });

  test('a pending await is interrupted without a restart', async (t) => {
    await ok(k.s, 'const survivor = "alive";');
    const r = await run(k.s, 'console.log("waiting");\nawait new Promise(() => {});', 500);
    assert.equal(r.result.status, 'error');
    assert.equal(r.result.ename, 'InterruptedError');
    assert.equal(r.result.evalue, 'interrupted at an await');
    assert.equal(r.result.restarted, undefined);
    assert.equal(r.outputs[0].output_type, 'stream');
    latencies.await = r.latencyMs!;
    t.diagnostic(`await: interrupt → result ${r.latencyMs!.toFixed(0)} ms`);
    const next = await ok(k.s, 'survivor');
    assert.equal(text(resultOf(next)), 'alive');
    assert.equal(next.result.executionCount, r.result.executionCount + 1);
  });

  test('code that reaches no step is stopped by restarting the kernel after the grace period', async (t) => {
    await ok(k.s, 'const x = 1;');
    assert.ok(k.s.executionCount > 1);
    const r = await run(k.s, 'let spins = 0;\nwhile (true) { spins++; }', 500);
    assert.equal(r.result.status, 'error');
    assert.equal(r.result.ename, 'KernelRestarted');
    assert.equal(r.result.restarted, true);
    assert.match(r.result.evalue ?? '', /did not reach an interruptible step within 1 s of the interrupt .*every variable was lost/);
    assert.equal(errorOf(r)?.ename, 'KernelRestarted');
    latencies['while (true) {}'] = r.latencyMs!;
    t.diagnostic(`while (true) {}: interrupt → result ${r.latencyMs!.toFixed(0)} ms (grace 1 s)`);

    const fresh = await ok(k.s, 'typeof x + " " + typeof survivor + " " + typeof DemoCNN');
    assert.equal(text(resultOf(fresh)), 'undefined undefined function');
    assert.equal(fresh.result.executionCount, 1, 'a fresh kernel counts from 1');
    assert.equal(resultOf(fresh)?.execution_count, 1);
    assert.equal(await value(k.s, '1 + 1'), '2');
    assert.equal(k.s.executionCount, 2);
  });

  test('restart() clears every variable and the execution count', async () => {
    await ok(k.s, 'const kept = new nn.Linear(2, 2);\nlet also = 3;');
    assert.equal((await k.s.listModules()).filter((m) => m.name === 'kept').length, 1);
    await k.s.restart();
    assert.equal(k.s.executionCount, 0);
    const r = await ok(k.s, 'typeof kept + " " + typeof also');
    assert.equal(text(resultOf(r)), 'undefined undefined');
    assert.equal(r.result.executionCount, 1);
    assert.deepEqual(await k.s.listModules(), []);
  });
});

describe('display', () => {
  const k = session();
  before(async () => {
    await k.s.start();
  });
  after(() => k.dispose());

  test('a model as text (its PyTorch repr) and an HTML table', async () => {
    const r = await ok(k.s, 'const net = new DemoCNN();\ndisplay(net);\nString(net)');
    const [d] = displays(r);
    assert.ok(d, 'a display_data');
    const repr = text(resultOf(r));
    assert.match(repr, /^DemoCNN\(\n {2}\(conv1\): Conv2d\(1, 16, kernel_size=\(3, 3\)/);
    assert.equal(text(d), repr);
    const html = String(d.data['text/html']);
    assert.match(html, /^<table>/);
    assert.match(html, /<code>conv1<\/code><\/td><td[^>]*><code>Conv2d\(1, 16, kernel_size=\(3, 3\)/);
    assert.match(
      html,
      /<code>fc1<\/code><\/td><td[^>]*><code>Linear\(in_features=1568, out_features=128, bias=True\)<\/code><\/td><td[^>]*><\/td><td[^>]*>200,832<\/td>/,
    );
    assert.match(html, /DemoCNN · float stage<\/td><td[^>]*>207,018<\/td>/);
    assert.equal(r.outputs.filter((o) => o.output_type === 'execute_result').length, 1, 'display() returns a handle, which is no result');
    const handleOnly = await ok(k.s, 'display("shown")');
    assert.deepEqual(
      handleOnly.outputs.map((o) => [o.output_type, text(o)]),
      [['display_data', 'shown']],
    );
  });

  test('a big tensor is summarised; a small one prints its values', async () => {
    const big = text(resultOf(await ok(k.s, 'randn([1000, 1000])')));
    assert.ok(big.length < 1000, `${big.length} characters`);
    assert.match(big, /^tensor\(shape=\[1000, 1000\], dtype=float32, min=-?[\d.]+, max=[\d.]+, mean=/);
    assert.match(big, /\(1,000,000 in all\)$/);
    const small = text(resultOf(await ok(k.s, 'tensor([[1, 2.5], [-3, 4]])')));
    assert.equal(small, 'tensor(shape=[2, 2], dtype=float32)\n[[ 1.0000,  2.5000],\n [-3.0000,  4.0000]]');
  });

  test('a long series is drawn as at most 400 means of consecutive values, at their mean step', () => {
    const ys = Array.from({ length: 100_000 }, (_, i) => i + 1);
    const values = (seriesChart({ loss: ys }).spec.data as { values: { step: number; value: number }[] }).values;
    assert.equal(values.length, 400);
    // 250 values per point: the first averages steps 1–250
    assert.deepEqual(values[0], { step: 125.5, value: 125.5, series: 'loss' });
    assert.deepEqual(values[399], { step: 99_875.5, value: 99_875.5, series: 'loss' });
    assert.deepEqual((seriesChart({ loss: [3, 2] }).spec.data as { values: unknown[] }).values, [
      { step: 1, value: 3, series: 'loss' },
      { step: 2, value: 2, series: 'loss' },
    ]);
  });

  test("metric series are drawn as an SVG chart on the session's thread", async () => {
    const r = await ok(k.s, 'display({ loss: [3, 2, 1.5, 1] })');
    const [d] = displays(r);
    assert.ok(d);
    assert.match(String(d.data['image/svg+xml']), /^<svg/);
    assert.match(String(d.data['image/svg+xml']), /<\/svg>$/);
    assert.equal(d.data[CHART_MIME], undefined);
    assert.match(text(d), /loss: \[ 3, 2, 1\.5, 1 \]/);
    // chart() as a cell's result too
    const c = resultOf(
      await ok(
        k.s,
        "chart({ title: 'bars', data: { values: [{ a: 'x', b: 1 }] }, mark: 'bar', encoding: { x: { field: 'a' }, y: { field: 'b', type: 'quantitative' } } })",
      ),
    );
    assert.match(String(c?.data['image/svg+xml']), /^<svg/);
    assert.equal(text(c), '<chart: bars>');
    assert.ok(!(CHART_MIME in c!.data));
  });

  test('a quantization report is an HTML table', async () => {
    const r = await ok(
      k.s,
      [
        'manualSeed(0);',
        'const q = new DemoCNN();',
        'linger.init(q, { dummyInput: randn([1, 1, 28, 28]) });',
        'linger.calibrate(q, [randn([8, 1, 28, 28])]);',
        'linger.quantReport(q, randn([8, 1, 28, 28]))',
      ].join('\n'),
    );
    const res = resultOf(r)!;
    const html = String(res.data['text/html']);
    assert.match(html, /^<table><thead><tr><th[^>]*>path<\/th><th[^>]*>type<\/th><th[^>]*>bits<\/th>/);
    // without traceLayers the BatchNorms are quantized layers of their own
    assert.deepEqual(
      [...html.matchAll(/<tr><td[^>]*>(\w+)<\/td><td[^>]*>(\w+)<\/td>/g)].map((m) => `${m[1]}:${m[2]}`),
      ['conv1:Conv2dInt', 'bn1:BatchNormInt', 'conv2:Conv2dInt', 'bn2:BatchNormInt', 'fc1:LinearInt', 'fc2:LinearInt'],
    );
    assert.match(text(res), /^layer +type +bits x\/w\/o/);
  });
});

describe('live fit and evaluate output', () => {
  const k = session();
  before(async () => {
    await k.s.start();
  });
  after(() => k.dispose());

  test('fit updates one progress display in place and ends with a summary; evaluate ends with the accuracy', async () => {
    const r = await ok(
      k.s,
      [
        'manualSeed(3);',
        'const set = data.fromArrays(Float32Array.from({ length: 30 * 8 * 4 }, (_, i) => (i % 7) / 7), Int32Array.from({ length: 30 * 8 }, (_, i) => i % 2), [4]);',
        'const m = new nn.Linear(4, 2);',
        'const losses = fit(m, new data.DataLoader(set, { batchSize: 8 }), new optim.SGD(m.parameters(), { lr: 0.1 }));',
      ].join('\n'),
    );
    const first = r.raw.find((o): o is Extract<NbOutput, { output_type: 'display_data' }> => o.output_type === 'display_data');
    const id = first?.transient?.display_id;
    assert.ok(id, 'the progress display has an id');
    assert.equal(text(first), 'fit: starting…');
    const updates = r.raw.filter((o) => o.output_type === 'update_display_data' && o.transient.display_id === id);
    assert.ok(updates.length >= 2, `${updates.length} updates`);
    assert.match(text(updates[0]), /^epoch 1\/1 · step \d+\/30 · loss [\d.]+/);
    // folded: the progress line is the first output and shows the summary
    assert.match(text(r.outputs[0]), /^fit: 1 epoch, \d+ steps in [\d.]+ s on 1 thread · mean loss per epoch [\d.]+$/);
    assert.match(text(r.outputs[0]), /fit: 1 epoch, 30 steps/);
    // a layer made in a cell: worker threads cannot build it, and fit says so
    assert.match(
      text(r.outputs[1]),
      /^fit: Linear was not made by a model file, an ONNX import, DemoCNN or DemoGRU.*training on one thread$/,
    );
    // then the loss chart
    assert.match(String((r.outputs[2] as DataOutput).data['image/svg+xml']), /^<svg/);
    assert.equal(r.outputs.length, 3);
    assert.ok(!r.outputs.some((o) => (o as { transient?: unknown }).transient), 'folded outputs carry no transient');

    const e = await ok(k.s, 'const res = evaluate(m, new data.DataLoader(set, { batchSize: 16 }));');
    const [progress] = displays(e);
    assert.match(text(progress), /^accuracy \d+\.\d\d% · loss [\d.]+ · 240 samples \(float stage\)$/);
    const acc = Number(await value(k.s, 'res.accuracy'));
    assert.ok(text(progress).startsWith(`accuracy ${(acc * 100).toFixed(2)}%`));
  });
});

describe('events for the views, models and checkpoints', () => {
  const k = session();
  before(async () => {
    await k.s.start();
  });
  after(() => k.dispose());

  test('traceLayers in a cell reports the model before and after', async () => {
    k.events.length = 0;
    await ok(k.s, 'const model = new DemoCNN();\nlinger.traceLayers(model, model, randn([1, 1, 28, 28]));');
    const ev = k.events.filter((e): e is Extract<KernelEvent, { kind: 'model' }> => e.kind === 'model');
    assert.equal(ev.length, 1);
    const [e] = ev;
    assert.equal(e.transform, 'traceLayers');
    assert.equal(e.name, 'model');
    assert.equal(e.before.stage, 'float');
    assert.equal(e.before.modules.find((m) => m.path === 'conv1')?.type, 'Conv2d');
    assert.equal(e.after.modules.find((m) => m.path === 'conv1')?.type, 'NormalizeConvBN2d');
    assert.equal(e.after.label, 'model after traceLayers');
    assert.match(e.after.text, /\(conv1\): NormalizeConvBN2d\(/);
  });

  test("linger.save reports the file (relative to the notebook's folder) and shows where it went", async () => {
    k.events.length = 0;
    const r = await ok(k.s, "const floatNet = new DemoCNN();\nconst savedTo = await linger.save(floatNet, 'ck/float.safetensors');");
    const file = path.join(k.dir, 'ck', 'float.safetensors');
    assert.deepEqual(k.events, [{ kind: 'saved', file, stage: 'float' }]);
    assert.ok(fs.existsSync(file));
    const [d] = displays(r);
    assert.ok(text(d).includes(file), text(d));
    assert.equal(text(d), `saved the float-stage checkpoint ${file}`);
    assert.match(String(d.data['text/html']), /<a href="ck\/float.safetensors"><code>ck\/float.safetensors<\/code><\/a>/);
    assert.equal(await value(k.s, 'savedTo'), file);
  });

  test('listModules lists the Module globals; loadCheckpoint keeps the stage rule and refuses without a change', async () => {
    await ok(
      k.s,
      [
        'const fixedNet = new DemoCNN();',
        'linger.init(fixedNet, { dummyInput: randn([1, 1, 28, 28]) });',
        'linger.calibrate(fixedNet, [randn([4, 1, 28, 28])]);',
        "await linger.save(fixedNet, 'ck/fixed.safetensors');",
        'const target = new DemoCNN();',
        'const notAModel = { conv1: 1 };',
      ].join('\n'),
    );
    const mods = (await k.s.listModules()).sort((a, b) => a.name.localeCompare(b.name));
    assert.deepEqual(
      mods.map((m) => [m.name, m.type, m.stage]),
      [
        ['fixedNet', 'DemoCNN', 'fixed'],
        ['floatNet', 'DemoCNN', 'float'],
        ['model', 'DemoCNN', 'traced'],
        ['target', 'DemoCNN', 'float'],
      ],
    );
    assert.ok(
      mods.every((m) => m.parameters > 200_000),
      JSON.stringify(mods),
    );

    const weight = 'JSON.stringify(Array.from(target.conv1.weight.dataSync().slice(0, 16)))';
    const before = await value(k.s, weight);
    k.events.length = 0;
    await assert.rejects(
      k.s.loadCheckpoint('target', path.join(k.dir, 'ck', 'fixed.safetensors')),
      /cannot load a fixed-stage state dict into a float-stage model: a state dict loads into the same or a later stage only/,
    );
    assert.equal(await value(k.s, weight), before, 'a refused load changes nothing');
    assert.equal(k.events.length, 0, 'and reports no change to the views');

    // a float checkpoint loads (relative paths are the notebook's)
    const loaded = await k.s.loadCheckpoint('target', 'ck/float.safetensors');
    assert.equal(loaded.stage, 'float');
    assert.deepEqual(loaded.missingKeys, []);
    assert.deepEqual(loaded.unexpectedKeys, []);
    assert.notEqual(await value(k.s, weight), before);
    assert.equal(await value(k.s, weight), await value(k.s, 'JSON.stringify(Array.from(floatNet.conv1.weight.dataSync().slice(0, 16)))'));
    assert.deepEqual(
      k.events.map((e) => e.kind === 'model' && [e.name, e.before.stage, e.after.stage]),
      [['target', 'float', 'float']],
    );

    await assert.rejects(k.s.loadCheckpoint('nobody', 'ck/float.safetensors'), /the kernel has no model named nobody/);
  });

  test('requests wait for no cell: they are refused while one runs', async () => {
    let started!: () => void;
    const running = new Promise<void>((r) => {
      started = r;
    });
    const outputs: NbOutput[] = [];
    const p = k.s.execute('console.log("started");\nawait new Promise((r) => setTimeout(r, 300));\n1', {
      onOutput: (o) => {
        outputs.push(o);
        started();
      },
    });
    await running;
    assert.equal(k.s.busy, true);
    await assert.rejects(k.s.listModules(), /the kernel is running a cell; try again when it has finished/);
    assert.equal((await p).status, 'ok');
    assert.equal(text(outputs.find((o) => o.output_type === 'execute_result')), '1');
    assert.equal(k.s.busy, false);
    assert.equal((await k.s.listModules()).length, 4);
  });
});
