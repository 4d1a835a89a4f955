// The experiment view's data (src/engine/services/experiment.ts) and page (reportHtml.ts's
// experimentHtml), and `linger experiment`: checkpoints linked by their parents into runs, a chart
// per metric across the stages, notes where a number would surprise (issue 20, item 4).
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DemoCNN, initBackend, linger, manualSeed, rand } from '../../src/engine/index';
import { save } from '../../src/engine/state/checkpoint';
import type { CheckpointSummary } from '../../src/engine/host/protocol';
import { checkpointSummary } from '../../src/engine/services/checkpointSummary';
import { experimentReport, formatExperiment, renderExperimentCharts } from '../../src/engine/services/experiment';
import { runExperiment } from '../../src/engine/cli/experiment';
import { experimentHtml } from '../../src/extension/views/reportHtml';

const summary = (
  file: string,
  stage: CheckpointSummary['stage'],
  metrics: Record<string, number>,
  extra: Partial<CheckpointSummary> = {},
) => ({ file, size: 1, linger: true, stage, metrics, tensors: 1, parameters: 1, ...extra }) as CheckpointSummary;

describe('runs, charts and notes from summaries', () => {
  test('parents link checkpoints into runs; a branch is a second run; a quick run and a beaten float are explained', () => {
    const d = '/w/checkpoints/demo';
    const recipe = (epochs: number) => ({ epochs, trainImages: 200, testImages: 40, limitPerClass: 20 });
    const r = experimentReport([
      summary(
        `${d}/fixed.safetensors`,
        'fixed',
        { accuracy: 0.85, loss: 0.4 },
        { parent: 'checkpoints/demo/traced.safetensors', recipe: recipe(1) },
      ),
      summary(`${d}/float.safetensors`, 'float', { accuracy: 0.79, loss: 0.6 }, { recipe: recipe(2) }),
      summary(
        `${d}/traced.safetensors`,
        'traced',
        { accuracy: 0.84, loss: 0.45 },
        { parent: 'checkpoints/demo/float.safetensors', recipe: recipe(1) },
      ),
      // a branch: another fixed from the same traced parent, 4-bit, far worse
      summary(
        `${d}/fixed-4bit.safetensors`,
        'fixed',
        { accuracy: 0.6, loss: 1.1 },
        { parent: `${d}/traced.safetensors`, recipe: recipe(1) },
      ),
    ]);
    assert.equal(r.title, 'demo');
    assert.deepEqual(
      r.runs.map((x) => [x.label, x.files.map((f) => path.basename(f))]),
      [
        ['fixed-4bit', ['float.safetensors', 'traced.safetensors', 'fixed-4bit.safetensors']],
        ['fixed', ['float.safetensors', 'traced.safetensors', 'fixed.safetensors']],
      ],
    );
    assert.deepEqual(r.metrics, ['accuracy', 'loss']);
    const texts = r.notes.map((n) => n.text);
    assert.ok(
      texts.some((t) =>
        /^fixed: fixed \(85\.0%\) beats float \(79\.0%\) because the later stages kept training: 2 more epochs on top of float's 2/.test(t),
      ),
      texts.join('\n'),
    );
    assert.ok(texts.some((t) => /^fixed-4bit: fixed point costs 24\.0 points against the float stage \(84\.0% → 60\.0%\)/.test(t)));
    assert.ok(texts.some((t) => /a quick run: trained on 200 images \(20 per class\) and tested on 40/.test(t)));
    // the chart: one line per run, the stages in pipeline order, accuracy as a percentage
    const spec = r.charts[0].spec as {
      data: { values: { stage: string; run: string }[] };
      encoding: { x: { sort: string[] }; y: { axis?: { format: string } } };
    };
    assert.equal(r.charts[0].metric, 'accuracy');
    assert.deepEqual(spec.encoding.x.sort, ['float', 'traced', 'fixed']);
    assert.equal(spec.encoding.y.axis?.format, '.1%');
    assert.equal(spec.data.values.filter((v) => v.run === 'fixed').length, 3);
  });

  test('fixed beating float with no further training is called noise; a missing parent and no metrics are said', () => {
    const r = experimentReport([
      summary('/a/float.safetensors', 'float', { accuracy: 0.5 }, { recipe: { epochs: 3 } }),
      summary('/a/fixed.safetensors', 'fixed', { accuracy: 0.51 }, { parent: '/a/float.safetensors', recipe: { epochs: 0 } }),
      summary('/a/other.safetensors', 'fixed', {}, { parent: '/elsewhere/float.safetensors' }),
    ]);
    const texts = r.notes.map((n) => n.text);
    assert.ok(
      texts.some((t) => /with no further training \(calibration only\): a difference this small is the test set's noise/.test(t)),
      texts.join('\n'),
    );
    assert.ok(texts.some((t) => /other\.safetensors: its parent \/elsewhere\/float\.safetensors is not among these checkpoints/.test(t)));
    assert.ok(texts.some((t) => /other\.safetensors records no metrics/.test(t)));
  });

  test('several folders overlay, each run named by its folder', () => {
    const r = experimentReport([
      summary('/c/cnn/float.safetensors', 'float', { accuracy: 0.8 }),
      summary('/c/cnn/fixed.safetensors', 'fixed', { accuracy: 0.79 }, { parent: 'cnn/float.safetensors' }),
      summary('/c/gru/float.safetensors', 'float', { accuracy: 0.7 }),
    ]);
    assert.equal(r.title, '2 experiments');
    assert.deepEqual(r.folders, ['/c/cnn', '/c/gru']);
    assert.ok(
      r.notes.every((n) => !/^float\.safetensors/.test(n.text)),
      'notes name the folder when several are shown',
    );
    assert.deepEqual(
      r.runs.map((x) => [x.label, x.files.length]),
      [
        ['cnn', 2],
        ['gru', 1],
      ],
    );
  });
});

describe('real checkpoints: summaries, SVG charts, the page and the CLI', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'linger-experiment-'));
  const exp = path.join(dir, 'exp <1>');
  let files: string[] = [];
  before(async () => {
    await initBackend();
    manualSeed(3);
    fs.mkdirSync(exp);
    const m = new DemoCNN();
    const f = await save(m, path.join(exp, 'float.safetensors'), {
      metrics: { accuracy: 0.7, loss: 0.9 },
      recipe: { epochs: 2, lr: 0.05 },
    });
    linger.traceLayers(m, m, rand([1, 1, 28, 28]));
    const t = await save(m, path.join(exp, 'traced.safetensors'), {
      metrics: { accuracy: 0.72, loss: 0.8 },
      parent: f,
      recipe: { epochs: 1, lr: 0.01 },
    });
    linger.init(m);
    linger.calibrate(
      m,
      Array.from({ length: 2 }, () => rand([4, 1, 28, 28])),
    );
    const q = await save(m, path.join(exp, 'fixed.pt'), {
      metrics: { accuracy: 0.71, loss: 0.85 },
      parent: t,
      recipe: { epochs: 1, lr: 0.005, bits: 8 },
    });
    files = [f, t, q];
  });

  test('the folded BNs are named; each chart renders to SVG; the page escapes file names and inlines the charts', async () => {
    const r = experimentReport(files.map(checkpointSummary));
    assert.equal(r.title, 'exp <1>');
    assert.deepEqual(r.runs[0].files, files);
    assert.ok(
      r.notes.some((n) => /traced\.safetensors: bn1 is folded into conv1, bn2 is folded into conv2/.test(n.text)),
      JSON.stringify(r.notes),
    );
    const svgs = await renderExperimentCharts(r);
    assert.deepEqual(
      svgs.map((s) => s.metric),
      ['accuracy', 'loss'],
    );
    for (const s of svgs) {
      assert.match(s.svg, /^<svg /);
      assert.match(s.svg, />float<\/text>.*>traced<\/text>.*>fixed<\/text>/s);
      assert.doesNotMatch(s.svg, /fill="#fff"|fill="white"/, 'no white background');
    }
    const page = experimentHtml(r, svgs);
    assert.match(page, /<h1>Experiment exp &lt;1&gt;<\/h1>/);
    assert.equal((page.match(/<figure class="chart"><svg /g) ?? []).length, 2);
    assert.match(page, /<span class="stage stage-float">float<\/span> <code>float\.safetensors<\/code> — accuracy 70\.00%, loss 0\.9/);
    assert.match(page, /<ul><li><span class="stage stage-traced">traced<\/span>/, 'traced nests under float');
    assert.match(
      page,
      /<h2>Recipes<\/h2>.*<th scope="col">fixed\.pt \(fixed\)<\/th>.*<td>bits<\/td><td>–<\/td><td>–<\/td><td>8<\/td>/s,
      'the recipes table',
    );
    assert.doesNotMatch(page, /exp <1>/, 'every file name escaped');
    // an SVG that carries a script is dropped, not inlined
    assert.doesNotMatch(experimentHtml(r, [{ metric: 'x', svg: '<svg><script>alert(1)</script></svg>' }]), /<script/);
  });

  test('linger experiment: the runs as text; a truncated file is named and exits 1; an empty folder exits 2', async () => {
    const out: string[] = [];
    assert.equal(await runExperiment([exp], (s) => out.push(s)), 0);
    assert.match(
      out.join('\n'),
      /^experiment exp <1>: 3 checkpoint\(s\), 1 run\(s\)\n {2}run:\n {4}float {3}float\.safetensors {2}accuracy 70\.0%, loss 0\.9000, 2 epoch\(s\)/,
    );
    assert.equal(formatExperiment(experimentReport(files.map(checkpointSummary))), out.join('\n'));
    const bad = path.join(dir, 'bad');
    fs.mkdirSync(bad);
    fs.copyFileSync(files[0], path.join(bad, 'float.safetensors'));
    fs.writeFileSync(path.join(bad, 'cut.safetensors'), fs.readFileSync(files[1]).subarray(0, 100));
    const o2: string[] = [];
    assert.equal(await runExperiment([bad], (s) => o2.push(s)), 1);
    assert.match(o2.join('\n'), /cannot read cut\.safetensors: /);
    const empty = path.join(dir, 'empty');
    fs.mkdirSync(empty);
    const e3: string[] = [];
    assert.equal(
      await runExperiment(
        [empty],
        () => undefined,
        (s) => e3.push(s),
      ),
      2,
    );
    assert.match(e3.join('\n'), /holds no checkpoint/);
  });
});
