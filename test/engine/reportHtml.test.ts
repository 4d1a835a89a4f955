// Inspect's and Compare's pages (src/extension/views/reportHtml.ts, what their read-only editors
// show): made from a real checkpoint's inspection and comparison, every value escaped (issue 20).
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DemoCNN, initBackend, linger, manualSeed, rand } from '../../src/engine/index';
import { save } from '../../src/engine/state/checkpoint';
import { inspectCheckpoint } from '../../src/engine/services/inspect';
import { compareCheckpoints } from '../../src/engine/state/compare';
import { compareHtml, esc, histogramSvg, inspectHtml, scaleLabel } from '../../src/extension/views/reportHtml';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'linger-report-'));
let floatFile = '',
  fixedFile = '';
before(async () => {
  await initBackend();
  manualSeed(5);
  const m = new DemoCNN();
  floatFile = await save(m, path.join(dir, 'float <b>.safetensors'));
  linger.traceLayers(m, m, rand([1, 1, 28, 28]));
  linger.init(m);
  linger.calibrate(
    m,
    Array.from({ length: 2 }, () => rand([4, 1, 28, 28])),
  );
  fixedFile = await save(m, path.join(dir, 'fixed.safetensors'));
});

test('scales read as 2^n with a Q-format; a histogram has a bar per bin and marks zero', () => {
  assert.equal(scaleLabel(32, 8), '2^5 · Q2.5');
  assert.equal(scaleLabel(256, 8), '2^8 · 8 fractional bits');
  assert.equal(scaleLabel(undefined, 8), '–');
  const svg = histogramSvg({ lo: -1, hi: 3, counts: [1, 0, 4, 2] });
  assert.equal((svg.match(/<rect /g) ?? []).length, 4);
  assert.match(svg, /<line class="zero" x1="30\.00"/);
  assert.equal(esc('<a href="x">&\''), '&lt;a href=&quot;x&quot;&gt;&amp;&#39;');
});

test("Inspect's page: metadata, the Int layers' scales, a histogram per tensor, the file name escaped", () => {
  const r = inspectCheckpoint(fixedFile);
  const page = inspectHtml(r);
  assert.ok(r.layers.length === 4, JSON.stringify(r.layers.map((l) => l.path)));
  for (const l of r.layers) assert.match(page, new RegExp(`<td>${l.path}</td><td>${l.type}</td><td>8/8/8</td><td>2\\^-?\\d+ · `));
  assert.equal((page.match(/<svg class="hist"/g) ?? []).length, r.tensors.filter((t) => t.histogram).length);
  assert.match(page, /conv1\.scale_o<\/code>.*filled only while exporting \(linger\)/);
  assert.match(page, /conv1\.running_o<\/code>.*EMA of 127\/s → eval scale 2\^/);
  const f = inspectHtml(inspectCheckpoint(floatFile));
  assert.ok(f.includes('float &lt;b&gt;.safetensors') && !f.includes('<b>.safetensors'), 'the name is escaped');
  assert.ok(!f.includes('Fixed-point layers'), 'a float checkpoint has none');
});

test("Compare's page: float → fixed names the BatchNorms folded into the convs where their weights moved", async () => {
  const r = await compareCheckpoints(floatFile, fixedFile);
  assert.deepEqual(
    r.folded.map((f) => `${f.bn}→${f.conv}:${f.in}`),
    ['bn1→conv1:b', 'bn2→conv2:b'],
  );
  const page = compareHtml(r);
  assert.match(
    page,
    /<code>conv1\.weight<\/code><\/td><td>[^<]+<\/td><td><span class="note-inline">bn1 folded into conv1 in fixed\.safetensors/,
  );
  assert.match(page, /<code>bn1\.running_mean<\/code> <span class="note-inline">folded into conv1<\/span>/);
  assert.match(r.text, /BatchNorm folded in fixed\.safetensors: bn1 → conv1, bn2 → conv2/);
});
