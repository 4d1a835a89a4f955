// The notebook workflow inside a real VS Code: New Experiment Notebook, the Linger kernel running
// the whole template (QUICK) with live outputs, the views following the kernel, interrupt,
// restart, `while (true) {}`, a crashed kernel process and Load into Notebook Model, with
// screenshots of the notebook and its outputs (test-results/notebook-*.png).
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { suite, suiteSetup, suiteTeardown, test } from 'mocha';
import * as vscode from 'vscode';
import { EXTENSION_ID, SCREENSHOT_MARKER, sleep, waitFor } from './util';

interface ModelRoot {
  kind: 'root';
  kernel?: string;
  previous?: unknown;
  file?: string;
  definitions?: Record<string, number>;
  tree: { label: string; stage: string; modules: { path: string; type: string }[]; text?: string };
}
interface CheckpointNode {
  kind: string;
  dir?: string;
  label?: string;
  stage?: string;
  uri?: vscode.Uri;
  summary?: { stage: string };
}
interface Api {
  models: { roots: ModelRoot[] };
  checkpoints: { getChildren(n?: CheckpointNode): Promise<CheckpointNode[]>; refresh(): Promise<void> };
  notebooks: { kernelOf(nb: vscode.NotebookDocument): { pid: number | undefined; kill(signal?: string): void } | undefined };
}

let api: Api;
let ws: string;
let nb: vscode.NotebookDocument;

async function screenshot(name: string): Promise<void> {
  await vscode.commands.executeCommand('notifications.clearAll');
  await sleep(1500);
  console.log(SCREENSHOT_MARKER + name);
  await sleep(1500);
}

const decoder = new TextDecoder();
/** Every output item of a cell as mime → text. */
function outputsOf(cell: vscode.NotebookCell): { mime: string; text: string }[] {
  return cell.outputs.flatMap((o) => o.items.map((i) => ({ mime: i.mime, text: decoder.decode(i.data) })));
}
const codeCells = () => nb.getCells().filter((c) => c.kind === vscode.NotebookCellKind.Code);
const cellWith = (needle: string) => {
  const c = nb.getCells().find((x) => x.kind === vscode.NotebookCellKind.Code && x.document.getText().includes(needle));
  assert.ok(c, `a cell containing ${needle}`);
  return c;
};

/** Appends a code cell and returns it. */
async function addCell(source: string): Promise<vscode.NotebookCell> {
  const edit = new vscode.WorkspaceEdit();
  edit.set(nb.uri, [
    vscode.NotebookEdit.insertCells(nb.cellCount, [new vscode.NotebookCellData(vscode.NotebookCellKind.Code, source, 'typescript')]),
  ]);
  assert.ok(await vscode.workspace.applyEdit(edit));
  return nb.cellAt(nb.cellCount - 1);
}
/** Starts a cell (the command itself resolves only when the cell has run: not awaited). */
async function start(cell: vscode.NotebookCell): Promise<void> {
  void vscode.commands
    .executeCommand('notebook.cell.execute', { ranges: [{ start: cell.index, end: cell.index + 1 }], document: nb.uri })
    .then(undefined, (e: Error) => console.log(`    notebook.cell.execute failed: ${e.message}`));
  await sleep(100);
}
/** Waits for a cell's run to end (success true/false), or its execution order to pass `after`. */
async function finished(cell: vscode.NotebookCell, timeoutMs = 120_000): Promise<boolean> {
  return waitFor(
    `cell ${cell.index + 1} to finish`,
    () => {
      const s = nb.cellAt(cell.index).executionSummary;
      return s?.success === undefined || s.timing?.endTime === undefined ? undefined : { ok: s.success };
    },
    timeoutMs,
  ).then((r) => r.ok);
}
async function runCell(source: string, timeoutMs?: number): Promise<{ cell: vscode.NotebookCell; ok: boolean; text: string }> {
  const cell = await addCell(source);
  await start(cell);
  const ok = await finished(cell, timeoutMs);
  return {
    cell,
    ok,
    text: outputsOf(nb.cellAt(cell.index))
      .map((o) => o.text)
      .join('\n'),
  };
}

suiteSetup(async function () {
  this.timeout(120_000);
  const ext = vscode.extensions.getExtension(EXTENSION_ID)!;
  api = (await ext.activate()) as Api;
  ws = vscode.workspace.workspaceFolders![0].uri.fsPath;
});

suite('notebook workflow', () => {
  // the suites share one workspace: leave it as it was (the Checkpoints view's tests start empty)
  suiteTeardown(async function () {
    this.timeout(60_000);
    for (const f of ['experiment.ipynb', 'checkpoints/experiment', 'headless'])
      fs.rmSync(path.join(ws, f), { recursive: true, force: true });
    await api.checkpoints.refresh();
  });

  test('New Experiment Notebook writes the template (nbformat 4.5, kernelspec linger) and opens it with the Linger kernel', async function () {
    this.timeout(60_000);
    const uri = (await vscode.commands.executeCommand('linger.newExperimentNotebook')) as vscode.Uri;
    assert.equal(uri.fsPath, path.join(ws, 'experiment.ipynb'));
    const json = JSON.parse(fs.readFileSync(uri.fsPath, 'utf8'));
    assert.equal(json.nbformat, 4);
    assert.equal(json.nbformat_minor, 5);
    assert.equal(json.metadata.kernelspec.name, 'linger');
    nb = await waitFor('the notebook editor', () =>
      vscode.window.activeNotebookEditor?.notebook.uri.fsPath === uri.fsPath ? vscode.window.activeNotebookEditor.notebook : undefined,
    );
    assert.ok(
      nb
        .getCells()
        .some(
          (c) => c.kind === vscode.NotebookCellKind.Markup && c.document.getText().includes('fused in forward and unfused in backward'),
        ),
    );
    assert.ok(
      codeCells().every((c) => c.document.languageId === 'typescript'),
      'code cells are TypeScript',
    );
    assert.match(cellWith('const QUICK').document.getText(), /const QUICK = true;/);
    // the load-order analyzer reads these cells too: the template loads nothing in the wrong place
    await sleep(1500);
    const lingerDiagnostics = nb
      .getCells()
      .flatMap((c) => vscode.languages.getDiagnostics(c.document.uri))
      .filter((d) => String(d.code).startsWith('LINGER'));
    assert.deepEqual(lingerDiagnostics, []);
  });

  test('Run All (QUICK): every cell succeeds; live fit progress updates in place; trees, charts, report and ONNX check appear; the views follow', async function () {
    this.timeout(420_000);
    const fitCell = cellWith('const model = new DemoCNN()');
    // the float training cell's progress line, as the user sees it change
    const seen = new Set<string>();
    const sub = vscode.workspace.onDidChangeNotebookDocument((e) => {
      for (const c of e.cellChanges) {
        if (c.cell.index !== fitCell.index || !c.outputs) continue;
        for (const o of outputsOf(c.cell)) {
          const m = /step (\d+)\/\d+/.exec(o.text);
          if (m) seen.add(m[1]);
        }
      }
    });
    const t0 = Date.now();
    void vscode.commands.executeCommand('notebook.execute', nb.uri);
    const last = codeCells()[codeCells().length - 1];
    const ok = await finished(last, 400_000);
    sub.dispose();
    console.log(
      `    the template ran in ${((Date.now() - t0) / 1000).toFixed(1)} s; the fit progress line showed ${seen.size} different steps`,
    );
    for (const c of codeCells()) {
      assert.equal(
        nb.cellAt(c.index).executionSummary?.success,
        true,
        `cell ${c.index + 1} succeeded: ${outputsOf(nb.cellAt(c.index))
          .map((o) => o.text)
          .join('\n')
          .slice(0, 2000)}`,
      );
    }
    assert.ok(ok);
    assert.ok(seen.size >= 2, `the progress output was updated in place during fit (saw steps ${[...seen].join(', ')})`);
    const fitOut = outputsOf(nb.cellAt(fitCell.index));
    assert.ok(
      fitOut.some((o) => /^fit: 1 epoch, 80 steps/.test(o.text)),
      'the final fit line',
    );
    assert.ok(
      fitOut.some((o) => o.mime === 'image/svg+xml' && o.text.startsWith('<svg')),
      'a loss chart',
    );
    assert.ok(
      fitOut.some((o) => /accuracy \d+\.\d\d%/.test(o.text)),
      'evaluate shows the accuracy',
    );
    assert.ok(
      fitOut.some((o) => /saved the float-stage checkpoint .*float\.safetensors/.test(o.text)),
      'the save prints the checkpoint',
    );
    const traceOut = outputsOf(nb.cellAt(cellWith('linger.traceLayers').index));
    const html = traceOut.filter((o) => o.mime === 'text/html');
    assert.equal(html.length, 2, 'the tree before (display) and after (result)');
    assert.doesNotMatch(html[0].text, /NormalizeConvBN2d/);
    assert.match(html[1].text, /NormalizeConvBN2d/);
    assert.ok(
      outputsOf(nb.cellAt(cellWith('linger.quantReport').index)).some(
        (o) => o.mime === 'text/html' && /<table>/.test(o.text) && /Conv2dInt/.test(o.text),
      ),
    );
    assert.match(
      outputsOf(nb.cellAt(cellWith('verifyOnnx').index))
        .map((o) => o.text)
        .join(''),
      /qdq: 100% of \d+ outputs bit-exact in onnxruntime/,
    );
    const chart = outputsOf(nb.cellAt(last.index));
    assert.ok(
      chart.some((o) => o.mime === 'image/svg+xml' && /fixed, before QAT/.test(o.text)),
      'the accuracy chart across stages',
    );
    // execution order as Jupyter counts it
    assert.deepEqual(
      codeCells().map((c) => nb.cellAt(c.index).executionSummary?.executionOrder),
      codeCells().map((_, i) => i + 1),
    );

    // the Checkpoints view: the new experiment with its three stages
    await api.checkpoints.refresh();
    const experiment = await waitFor(
      'the experiment in the Checkpoints view',
      async () =>
        (await api.checkpoints.getChildren()).find((n) => n.kind === 'experiment' && n.dir === path.join(ws, 'checkpoints', 'experiment')),
      30_000,
    );
    const stages = await api.checkpoints.getChildren(experiment);
    assert.deepEqual(
      stages.filter((s) => s.kind === 'stage').map((s) => s.stage),
      ['float', 'traced', 'fixed'],
    );
    // the Model view: the kernel's live model, before and after the last transform (init)
    const roots = api.models.roots;
    assert.equal(roots.length, 2);
    assert.equal(roots[0].kernel, 'experiment.ipynb');
    assert.equal(roots[1].tree.label, 'model after init');
    assert.equal(roots[1].tree.stage, 'fixed');
    assert.equal(roots[1].tree.modules.find((m) => m.path === 'conv1')?.type, 'Conv2dInt');
    assert.equal(roots[0].tree.modules.find((m) => m.path === 'conv1')?.type, 'NormalizeConvBN2d');

    // pictures: the top of the notebook, the trace cell, the training cell's live output and chart, the report and chart
    const editor = vscode.window.activeNotebookEditor!;
    await vscode.commands.executeCommand('workbench.action.closeSidebar');
    for (const [name, needle] of [
      ['notebook-float-training', 'const model = new DemoCNN()'],
      ['notebook-trace', 'linger.traceLayers'],
      ['notebook-report', 'linger.quantReport'],
      ['notebook-accuracy-chart', "title: 'test accuracy by stage'"],
    ] as const) {
      const c = cellWith(needle);
      editor.revealRange(new vscode.NotebookRange(c.index, c.index + 1), vscode.NotebookEditorRevealType.AtTop);
      await screenshot(name);
    }
    await vscode.commands.executeCommand('workbench.view.extension.linger');
    await screenshot('notebook-views');
  });

  test('interrupting a long fit stops it at the next step; a later cell still sees the model', async function () {
    this.timeout(120_000);
    const cell = await addCell(
      'fit(model, new data.DataLoader(trainSet, { batchSize: 64 }), new optim.SGD(model.parameters(), { lr: 0.001 }), { epochs: 100 })',
    );
    await start(cell);
    await waitFor(
      'the long fit to be training',
      () => outputsOf(nb.cellAt(cell.index)).some((o) => /step \d+\/\d+/.test(o.text)) || undefined,
      60_000,
    );
    // a cell started while the fit runs waits its turn; the interrupt cancels it, as Jupyter does
    const queued = await addCell('const ranAfterInterrupt = true;');
    await start(queued);
    const t0 = Date.now();
    void vscode.commands.executeCommand('notebook.cancelExecution', nb.uri);
    const ok = await finished(cell, 15_000);
    console.log(`    interrupt → cell ended in ${Date.now() - t0} ms`);
    assert.equal(ok, false);
    const text = outputsOf(nb.cellAt(cell.index))
      .map((o) => o.text)
      .join('\n');
    assert.match(text, /InterruptedError/);
    assert.match(text, /interrupted after \d+ steps/, 'the progress line says where it stopped');
    // (this cell queues behind the cancelled one)
    const after = await runCell('`${model.stage()} ${model.training} ${typeof ranAfterInterrupt}`');
    assert.match(after.text, /undefined/, 'the queued cell did not run');
    assert.equal(nb.cellAt(queued.index).executionSummary?.executionOrder, undefined, 'the queued cell has no execution count');
    assert.ok(after.ok);
    assert.match(after.text, /fixed/);
  });

  test('Restart Linger Kernel clears every variable', async function () {
    this.timeout(60_000);
    assert.equal(await vscode.commands.executeCommand('linger.restartKernel'), true);
    const r = await runCell('typeof model');
    assert.ok(r.ok);
    assert.match(r.text, /undefined/);
    assert.equal(nb.cellAt(r.cell.index).executionSummary?.executionOrder, 1, 'execution counts start again');
  });

  test('`while (true) {}` is ended by restarting the kernel, with a clear message', async function () {
    this.timeout(60_000);
    await runCell('const kept = 42;');
    const cell = await addCell('let spins = 0;\nwhile (true) { spins++; }');
    await start(cell);
    await sleep(1500);
    void vscode.commands.executeCommand('notebook.cancelExecution', nb.uri);
    assert.equal(await finished(cell, 20_000), false);
    const text = outputsOf(nb.cellAt(cell.index))
      .map((o) => o.text)
      .join('\n');
    assert.match(text, /KernelRestarted/);
    assert.match(text, /every variable was lost/);
    const r = await runCell('typeof kept');
    assert.match(r.text, /undefined/);
  });

  test('a crashed kernel process is reported in the cell; the next cell starts a fresh kernel', async function () {
    this.timeout(60_000);
    await runCell('const before = 1;');
    const cell = await addCell('await new Promise((r) => setTimeout(r, 30_000));');
    await start(cell);
    const kernel = api.notebooks.kernelOf(nb)!;
    await sleep(1500);
    assert.ok(kernel.pid, 'the kernel process runs');
    kernel.kill('SIGKILL');
    assert.equal(await finished(cell, 20_000), false);
    assert.match(
      outputsOf(nb.cellAt(cell.index))
        .map((o) => o.text)
        .join('\n'),
      /kernel process ended unexpectedly \(signal SIGKILL\)/,
    );
    const r = await runCell('typeof before + " " + (1 + 1)');
    assert.ok(r.ok);
    assert.match(r.text, /undefined 2/);
  });

  test('Load into Notebook Model: a fixed checkpoint into a float model is refused (nothing changes); a float one loads', async function () {
    this.timeout(60_000);
    const r = await runCell('const net = new DemoCNN();\nconst w0 = net.conv1.weight.sum().item();');
    assert.ok(r.ok, r.text);
    const dir = path.join(ws, 'checkpoints', 'experiment');
    const node = (stage: string): CheckpointNode => ({
      kind: 'checkpoint',
      uri: vscode.Uri.file(path.join(dir, `${stage}.safetensors`)),
      summary: { stage },
    });
    const refused = (await vscode.commands.executeCommand('linger.loadIntoNotebookModel', node('fixed'), 'net')) as { error?: string };
    assert.match(refused.error ?? '', /cannot load a fixed-stage state dict into a float-stage model/);
    const same = await runCell('net.conv1.weight.sum().item() === w0');
    assert.match(same.text, /true/);
    const loaded = (await vscode.commands.executeCommand('linger.loadIntoNotebookModel', node('float'), 'net')) as {
      stage?: string;
      missingKeys?: string[];
    };
    assert.equal(loaded.stage, 'float');
    assert.deepEqual(loaded.missingKeys, []);
    const changed = await runCell('net.conv1.weight.sum().item() === w0');
    assert.match(changed.text, /false/);
  });

  test('a .pt trained with the real linger, paired with its PyTorch model file: its tree (asked once per folder), export, Load into Notebook Model, compare', async function () {
    this.timeout(300_000);
    const python = '/usr/bin/python3';
    if (spawnSync(python, ['-c', 'import torch'], { stdio: 'ignore' }).status !== 0) {
      console.log(`# skipped: ${python} cannot import torch (apt install python3-torch)`);
      this.skip();
    }
    // test/fixtures/python/linger_net/*.pt: saved by linger 1.1.1 from linger_net.py (scripts/golden/make_linger_pt_fixtures.py)
    const fixtures = path.join(vscode.extensions.getExtension(EXTENSION_ID)!.extensionPath, 'test', 'fixtures', 'python');
    const golden = JSON.parse(fs.readFileSync(path.join(fixtures, 'linger_net.linger.json'), 'utf8')) as {
      traced_print: string;
      fixed_print: string;
      x_eval: { shape: number[]; data: number[] };
      eval: { scale: number; codes: number[] };
    };
    const dir = path.join(ws, 'checkpoints', 'linger-net');
    fs.mkdirSync(dir, { recursive: true });
    const py = path.join(ws, 'models', 'linger_net.py');
    fs.copyFileSync(path.join(fixtures, 'linger_net.py'), py);
    const pt = (stage: string) => path.join(dir, `${stage}.pt`);
    // float.pt: a plain torch.save of the PyTorch model's state dict; traced.pt, fixed.pt: from linger's stages
    for (const stage of ['float', 'traced', 'fixed']) fs.copyFileSync(path.join(fixtures, 'linger_net', `${stage}.pt`), pt(stage));
    const cfg = () => vscode.workspace.getConfiguration('linger');
    await cfg().update('pythonPath', python, vscode.ConfigurationTarget.Workspace);
    try {
      // the tree: the first time the model file is the dialog's answer (given here), then the folder remembers it
      const fixed = await vscode.commands.executeCommand<ModelRoot>('linger.showModelTreeOfCheckpoint', {
        file: pt('fixed'),
        modelFile: py,
      });
      assert.ok(fixed, 'the tree of fixed.pt');
      assert.equal(fixed.tree.stage, 'fixed');
      assert.equal(fixed.tree.text, golden.fixed_print, 'what linger printed of its fixed model');
      assert.equal(api.models.roots[0], fixed, 'shown in the Model view');
      assert.equal(fixed.file, py, 'Reveal in Editor goes to the Python file');
      assert.match(fs.readFileSync(py, 'utf8').split('\n')[fixed.definitions!.conv1], /self\.conv1 = nn\.Conv2d/);
      // Reveal in Editor: the Python line that defines conv1
      const conv1 = { kind: 'module', root: fixed, entry: fixed.tree.modules.find((m) => m.path === 'conv1') };
      await vscode.commands.executeCommand('linger.revealModule', conv1);
      const editor = vscode.window.activeTextEditor!;
      assert.equal(editor.document.uri.fsPath, py);
      assert.match(editor.document.lineAt(editor.selection.start.line).text, /self\.conv1 = nn\.Conv2d/);
      await vscode.commands.executeCommand('linger.model.focus');
      await screenshot('linger-pt-tree');
      const traced = await vscode.commands.executeCommand<ModelRoot>('linger.showModelTreeOfCheckpoint', { file: pt('traced') });
      assert.equal(traced?.tree.text, golden.traced_print, 'paired without asking again: the folder remembers linger_net.py');
      // the three stages, each from its keys
      const exp = await waitFor('the linger-net experiment', async () => (await api.checkpoints.getChildren()).find((n) => n.dir === dir));
      const stages = await waitFor('three stages', async () => {
        const k = await api.checkpoints.getChildren(exp);
        return k.length === 3 ? k : undefined;
      });
      assert.deepEqual(stages.map((n) => n.stage).sort(), ['fixed', 'float', 'traced']);
      // export: PyTorch's float .pt and linger's fixed one (qdq, checked in onnxruntime against the engine)
      const fl = await vscode.commands.executeCommand<{ stage: string; verification: { ok: boolean; summary: string } }>(
        'linger.exportCheckpointOnnx',
        { file: pt('float') },
      );
      assert.equal(fl?.stage, 'float');
      assert.ok(fl.verification.ok, fl.verification.summary);
      const ex = await vscode.commands.executeCommand<{ file: string; stage: string; verification: { ok: boolean; summary: string } }>(
        'linger.exportCheckpointOnnx',
        { file: pt('fixed'), dialect: 'qdq' },
      );
      assert.equal(ex?.stage, 'fixed');
      assert.ok(ex.verification.ok, ex.verification.summary);
      assert.equal(ex.file, path.join(dir, 'fixed.qdq.onnx'));
      // the notebook: the user's class through their Python, at the fixed stage; then linger's weights load into it
      const built = await runCell(
        [
          `const pnet = await linger.importPythonModel(${JSON.stringify(py)}, { python: ${JSON.stringify(python)} });`,
          'linger.traceLayers(pnet, pnet, randn([2, 1, 12, 12]));',
          'const qnet = linger.init(pnet);',
          'qnet.stage()',
        ].join('\n'),
        180_000,
      );
      assert.ok(built.ok, built.text);
      assert.match(built.text, /fixed/);
      const node = (stage: string): CheckpointNode => ({ kind: 'checkpoint', uri: vscode.Uri.file(pt(stage)), summary: { stage } });
      // PyTorch's float .pt into a float model of the same file
      assert.ok(
        (
          await runCell(
            `const fnet = await linger.importPythonModel(${JSON.stringify(py)}, { python: ${JSON.stringify(python)} });`,
            180_000,
          )
        ).ok,
      );
      const floatLoad = (await vscode.commands.executeCommand('linger.loadIntoNotebookModel', node('float'), 'fnet')) as {
        stage?: string;
        missingKeys?: string[];
      };
      assert.equal(floatLoad.stage, 'float');
      assert.deepEqual(floatLoad.missingKeys, []);
      const loaded = (await vscode.commands.executeCommand('linger.loadIntoNotebookModel', node('fixed'), 'qnet')) as {
        stage?: string;
        missingKeys?: string[];
        unexpectedKeys?: string[];
        error?: string;
      };
      assert.equal(loaded.error, undefined);
      assert.equal(loaded.stage, 'fixed');
      assert.deepEqual([loaded.missingKeys, loaded.unexpectedKeys], [[], []]);
      // its eval gives linger's int8 codes, and what the notebook saves compares equal to linger's file
      const mine = path.join(dir, 'from-notebook.safetensors');
      const ev = await runCell(
        [
          // saved before the eval: an eval forward records each layer's input scale (scale_x, running_x), as linger's does
          `await linger.save(qnet, ${JSON.stringify(mine)});`,
          'qnet.eval();',
          `const y = qnet(tensor(${JSON.stringify(golden.x_eval.data)}, ${JSON.stringify(golden.x_eval.shape)}));`,
          `JSON.stringify(Array.from(y.dataSync(), (v) => Math.round(v * ${golden.eval.scale})))`,
        ].join('\n'),
      );
      assert.ok(ev.ok, ev.text);
      assert.ok(ev.text.includes(JSON.stringify(golden.eval.codes)), `${ev.text} vs ${JSON.stringify(golden.eval.codes)}`);
      const cmp = await vscode.commands.executeCommand<{ changed: { maxAbs: number }[]; added: string[]; removed: string[] }>(
        'linger.compareCheckpoints',
        { file: pt('fixed'), with: mine },
      );
      assert.deepEqual([cmp?.added, cmp?.removed], [[], []]);
      assert.ok(
        cmp.changed.every((c) => c.maxAbs === 0),
        'the same values',
      );
    } finally {
      await cfg().update('pythonPath', undefined, vscode.ConfigurationTarget.Workspace);
      await vscode.commands.executeCommand('workbench.action.closeAllEditors');
      fs.rmSync(dir, { recursive: true, force: true });
      fs.rmSync(py, { force: true });
      await api.checkpoints.refresh();
    }
  });

  test('cells get completions and hovers for the preloaded API (signatures and docs from the engine)', async function () {
    this.timeout(30_000);
    const cell = await addCell('linger.tra\nfit\nDemo');
    const labels = async (line: number, character: number) => {
      const list = (await vscode.commands.executeCommand(
        'vscode.executeCompletionItemProvider',
        cell.document.uri,
        new vscode.Position(line, character),
      )) as vscode.CompletionList;
      return list.items;
    };
    const members = await labels(0, 10);
    const trace = members.find((i) => (typeof i.label === 'string' ? i.label : i.label.label) === 'traceLayers');
    assert.ok(trace, 'linger.traceLayers is offered after `linger.`');
    assert.match(String(trace.detail), /traceLayers\(root: Module, target: Module, dummyInput/);
    const globals = await labels(2, 4);
    assert.ok(
      globals.some((i) => (typeof i.label === 'string' ? i.label : i.label.label) === 'DemoCNN'),
      'DemoCNN is offered',
    );
    const hovers = (await vscode.commands.executeCommand(
      'vscode.executeHoverProvider',
      cell.document.uri,
      new vscode.Position(1, 1),
    )) as vscode.Hover[];
    const text = hovers.flatMap((h) => h.contents.map((c) => (typeof c === 'string' ? c : 'value' in c ? c.value : ''))).join('\n');
    assert.match(text, /fit\(model: Module, loader: DataLoader, opt: Optimizer/);
    assert.match(text, /Trains `model` on every batch/);
  });

  test('a notebook written by `linger run` opens in VS Code with its outputs', async function () {
    this.timeout(180_000);
    const dir = path.join(ws, 'headless');
    fs.mkdirSync(dir, { recursive: true });
    const cli = path.join(vscode.extensions.getExtension(EXTENSION_ID)!.extensionPath, 'dist', 'cli.js');
    const sh = (args: string[]) =>
      new Promise<string>((resolve, reject) =>
        execFile(process.execPath, [cli, ...args], { cwd: dir, timeout: 170_000 }, (e, out, err) =>
          e ? reject(new Error(`${e.message}\n${err}`)) : resolve(out),
        ),
      );
    await sh(['new-notebook', 'run.ipynb']);
    assert.match(await sh(['run', 'run.ipynb']), /wrote .*run\.out\.ipynb/);
    const out = await vscode.workspace.openNotebookDocument(vscode.Uri.file(path.join(dir, 'run.out.ipynb')));
    await vscode.window.showNotebookDocument(out);
    const code = out.getCells().filter((c) => c.kind === vscode.NotebookCellKind.Code);
    assert.ok(
      code.every((c) => typeof c.executionSummary?.executionOrder === 'number'),
      'execution counts were read back',
    );
    const mimes = new Set(code.flatMap((c) => c.outputs.flatMap((o) => o.items.map((i) => i.mime))));
    for (const m of ['image/svg+xml', 'text/html', 'text/plain', 'application/vnd.code.notebook.stdout'])
      assert.ok(mimes.has(m), `an output of type ${m}`);
    const last = code[code.length - 1];
    vscode.window.activeNotebookEditor!.revealRange(
      new vscode.NotebookRange(last.index, last.index + 1),
      vscode.NotebookEditorRevealType.AtTop,
    );
    await screenshot('notebook-headless-output');
  });
});
