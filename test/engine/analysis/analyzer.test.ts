// The analyzer's API as the extension and the CLI use it: ranges, messages, languages, cells.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { LoadOrderAnalyzer, languageForId, languageForPath, maskIPython } from '../../../src/engine/analysis';

let analyzer: LoadOrderAnalyzer;
before(async () => {
  analyzer = await LoadOrderAnalyzer.create();
});

test('each rule says why and what to do', () => {
  const src = [
    'import linger',
    'model = MyNet()',
    'model.load_state_dict(sd)',
    'model = linger.normalize_layers(model)',
    'model = linger.trace_layers(model, model, x)',
    'model.load_state_dict(sd)',
    'model = linger.init(model)',
    'model = linger.trace_layers(model, model, x)',
    'model = linger.init(model)',
  ].join('\n');
  const byCode = Object.fromEntries(analyzer.analyze(src, 'python').map((d) => [`${d.code}@${d.range.start.line + 1}`, d]));
  assert.deepEqual(Object.keys(byCode).sort(), ['LINGER001@6', 'LINGER002@3', 'LINGER004@8', 'LINGER004@9', 'LINGER005@5']);
  assert.equal(byCode['LINGER002@3'].severity, 'warning');
  assert.equal(
    byCode['LINGER002@3'].message,
    'model.load_state_dict() runs before linger.normalize_layers (line 4) transforms the same model: ' +
      'load the state dict after the last transform (a checkpoint of an earlier stage still loads into the transformed model), ' +
      'or the transforms replace the layers it was loaded into',
  );
  assert.equal(
    byCode['LINGER005@5'].message,
    'linger.trace_layers runs after linger.normalize_layers (line 4) on the same model: ' +
      'call linger.trace_layers first, before every other configuration, so fusion sees the original layers; move it above line 4',
  );
  assert.equal(
    byCode['LINGER001@6'].message,
    'model.load_state_dict() runs between linger.trace_layers (line 5) and linger.init (line 7) ' +
      'on the same model: load the state dict after the last transform, or the next transform rebuilds the layers and the loaded weights are lost',
  );
  assert.equal(
    byCode['LINGER004@8'].message,
    'linger.trace_layers is applied a second time to the same model (first at line 5): ' +
      'trace_layers may run only once per model (linger traces one part of the network, once); remove this call',
  );
  assert.equal(
    byCode['LINGER004@9'].message,
    'linger.init is applied a second time to the same model (first at line 7): ' +
      'init may run only once per model (the layers are already fixed-point); remove this call',
  );
  assert.equal(byCode['LINGER001@6'].fix?.title, 'Move model.load_state_dict() after linger.init (line 9)');
  const [out] = analyzer.analyze('import linger\nlinger.init(m)\nlinger.normalize_layers(m)\n', 'python');
  assert.equal(
    out.message,
    'linger.normalize_layers runs after linger.init (line 2) on the same model: linger.init has already replaced ' +
      'the layers with fixed-point ones, so linger.normalize_layers must come before it; move this call above line 2',
  );
});

test('TypeScript messages name the engine and its run-time warning', () => {
  const [d] = analyzer.analyze('linger.traceLayers(m, m, x);\nm.loadStateDict(sd);\nlinger.init(m);\n', 'typescript');
  assert.equal(d.code, 'LINGER001');
  assert.match(d.message, /^m\.loadStateDict\(\) runs between linger\.traceLayers \(line 1\) and linger\.init \(line 3\)/);
  assert.match(d.message, /this engine warns LINGER_LOAD_ORDER/);
});

test('ranges are 0-based lines and UTF-16 columns, as VS Code counts them', () => {
  const src =
    'import linger\nmodel = linger.trace_layers(model, model, x)  # 追踪 😀\nx = "模型"; model.load_state_dict(sd)  # 加载\nlinger.init(model)\n';
  const [d] = analyzer.analyze(src, 'python');
  assert.equal(d.code, 'LINGER001');
  assert.deepEqual(d.range, { start: { line: 2, col: 10 }, end: { line: 2, col: 35 } });
  const line = src.split('\n')[2];
  assert.equal(line.slice(d.range.start.col, d.range.end.col), 'model.load_state_dict(sd)');
  assert.equal(d.fix, undefined); // the load shares its line with other code
});

test('a file without linger or a load is not even parsed', () => {
  assert.deepEqual(analyzer.analyze('import torch\nx = torch.zeros(3)\n', 'python'), []);
  assert.deepEqual(analyzer.analyze('', 'typescript'), []);
});

test('languages by file extension and by VS Code language id', () => {
  assert.equal(languageForPath('a/b/train.py'), 'python');
  assert.equal(languageForPath('x.TS'), 'typescript');
  assert.equal(languageForPath('x.tsx'), 'tsx');
  assert.equal(languageForPath('x.mjs'), 'javascript');
  assert.equal(languageForPath('x.ipynb'), undefined);
  assert.equal(languageForId('typescriptreact'), 'tsx');
  assert.equal(languageForId('javascriptreact'), 'javascript');
  assert.equal(languageForId('markdown'), undefined);
});

test('notebook cells of this project (TypeScript) form one scope; markdown cells keep their index', () => {
  const diags = analyzer.analyzeCells([
    { text: "import { linger } from 'linger-studio';\nconst model = createModel();", language: 'typescript' },
    { text: '# Trace', language: 'markdown' },
    { text: 'linger.traceLayers(model, model, x);', language: 'typescript' },
    { text: 'model.loadStateDict(sd);', language: 'typescript' },
    { text: 'linger.init(model);', language: 'typescript' },
  ]);
  assert.equal(diags.length, 1);
  assert.equal(diags[0].cell, 3);
  assert.equal(diags[0].code, 'LINGER001');
  assert.deepEqual(diags[0].range, { start: { line: 0, col: 0 }, end: { line: 0, col: 23 } });
  assert.match(diags[0].message, /between linger\.traceLayers \(cell 3, line 1\) and linger\.init \(cell 5, line 1\)/);
});

test('IPython magics keep their offsets and are not parsed as Python', () => {
  assert.equal(maskIPython('%matplotlib inline\n  !ls\nx = 1'), '#matplotlib inline\n  #ls\nx = 1');
  assert.equal(maskIPython('%%bash\necho hi'), '      \n       ');
});

test('a folder without the grammars is a clear error at creation', async () => {
  await assert.rejects(
    LoadOrderAnalyzer.create({ wasmDir: '/nonexistent/wasm' }),
    /linger analysis: (grammar )?\/nonexistent\/wasm\/tree-sitter(-python)?\.wasm not found/,
  );
});

test('aliases count as linger words before parsing: a file with one linger word and two aliased calls is analysed', () => {
  const ts = "const { linger: lg } = require('./quantization');\nlg.init(m);\nlg.init(m);\n";
  assert.deepEqual(
    analyzer.analyze(ts, 'javascript').map((d) => `${d.range.start.line}:${d.code}`),
    ['2:LINGER004'],
  );
  const py = 'from linger import init as q\nq(m)\nq(m)\n';
  assert.deepEqual(
    analyzer.analyze(py, 'python').map((d) => `${d.range.start.line}:${d.code}`),
    ['2:LINGER004'],
  );
});
