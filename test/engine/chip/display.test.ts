// display(linger.checkChip(model, x)) in a notebook (docs/chip-rules.md, "In VS Code"): the findings
// as a table with the way out, and the memory plan per layer with bars against the chip's sizes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend, linger, nn } from '../../../src/engine/index';
import { mimeBundle } from '../../../src/engine/notebook/display';

test('a checkChip report displays as a findings table and a memory plan (HTML), and as the CLI prints it (text)', async () => {
  await initBackend();
  const model = new nn.Sequential(new nn.Conv2d(3, 8, 7, { stride: 2, padding: 3 }), new nn.ReLU(), new nn.Conv2d(8, 4, 3, { padding: 1 }));
  const r = linger.checkChip(model, [1, 3, 32, 32]);
  const b = mimeBundle(r);
  const html = String(b['text/html']);
  assert.match(html, /venus<\/b> \(thinker v1\.1\.0 \(tpacker\)\): <span[^>]*>1 error<\/span>/);
  assert.match(
    html,
    /<td style="color:#e5484d">✖<\/td><td style="text-align:left"><code>0<\/code> Conv2dInt<\/td><td style="text-align:left">conv-kernel<\/td><td>7<\/td>/,
  );
  assert.match(html, /split it into 3 stacked 3×3 convs/);
  assert.match(html, /SRAM \(SHARE_MEM\) [\d.]+ KB of 640\.0 KB/);
  assert.equal(
    (html.match(/<tr><td style="text-align:left"><code>/g) ?? []).length,
    r.memory!.layers.length,
    'a row per layer of the plan',
  );
  const text = String(b['text/plain']);
  assert.match(text, /conv-kernel/);
  assert.match(text, /1 error, 0 warnings/);
});
