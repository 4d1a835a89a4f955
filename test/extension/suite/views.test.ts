// The Linger views inside a real VS Code: the Model view (the seed's Model A and B traced from
// model files), the Checkpoints view (checkpoints the CLI demo writes while the view is open, a
// truncated file, a plain safetensors file), Inspect, the engine process (restart after a crash),
// with screenshots of what a user sees (test-results/*.png).
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { suite, suiteSetup, test } from 'mocha';
import * as vscode from 'vscode';
import { EXTENSION_ID, SCREENSHOT_MARKER, sleep, themedScreenshots as themed, waitFor } from './util';

// what the extension's activate() returns (src/extension/extension.ts), as far as the tests use it
interface ModuleEntry {
  path: string;
  type: string;
  aheadRelu?: boolean;
}
interface ModelRoot {
  kind: 'root';
  tree: { label: string; stage: string; modules: ModuleEntry[]; text?: string };
}
interface ModuleNode {
  kind: 'module';
  entry: ModuleEntry;
  replaced?: string;
}
interface CheckpointNode {
  kind: string;
  dir?: string;
  stage?: string;
  uri?: vscode.Uri;
  message?: string;
  summary?: { stage: string; linger: boolean; metrics: Record<string, number> };
}
interface Api {
  activationMs: number;
  engine: { pid: number | undefined; request(method: string, p: unknown, what: string): Promise<unknown> };
  models: { roots: ModelRoot[]; getChildren(n?: unknown): (ModelRoot | ModuleNode)[]; getTreeItem(n: unknown): vscode.TreeItem };
  checkpoints: {
    getChildren(n?: CheckpointNode): Promise<CheckpointNode[]>;
    getTreeItem(n: CheckpointNode): vscode.TreeItem;
    refresh(): Promise<void>;
  };
  views: { model: vscode.TreeView<unknown>; checkpoints: vscode.TreeView<CheckpointNode> };
}

let api: Api;
let ws: string;
let extensionPath: string;

let widened = false;
/** Asks the runner for a picture of the workbench, and gives it time to take it. */
async function screenshot(name: string): Promise<void> {
  if (!widened) {
    // a wider side bar, as someone reading module trees would set it (the command widens the
    // focused part)
    await vscode.commands.executeCommand('workbench.action.focusSideBar');
    for (let i = 0; i < 6; i++) await vscode.commands.executeCommand('workbench.action.increaseViewSize');
    widened = true;
  }
  await vscode.commands.executeCommand('notifications.clearAll');
  await sleep(1200); // let the views render
  console.log(SCREENSHOT_MARKER + name);
  await sleep(1500);
}
const themedScreenshots = (name: string) => themed(screenshot, name);
function run(file: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(process.execPath, [file, ...args], { timeout: 300_000 }, (e, out, err) =>
      e ? reject(new Error(`${e.message}\n${err}`)) : resolve(out),
    ),
  );
}
const children = (n?: unknown) => api.models.getChildren(n);
const moduleChildren = (root: ModelRoot) => children(root) as ModuleNode[];

suiteSetup(async function () {
  this.timeout(120_000);
  const ext = vscode.extensions.getExtension(EXTENSION_ID)!;
  api = (await ext.activate()) as Api;
  extensionPath = ext.extensionPath;
  ws = vscode.workspace.workspaceFolders![0].uri.fsPath;
});

/** The open editor tab with this label (any group). */
const tabNamed = (label: string) => vscode.window.tabGroups.all.flatMap((g) => g.tabs).find((t) => t.label === label);

/** The graph editor as the tests see it (the extension's API). */
type GraphProps = {
  activate(p: string): void;
  lastProps?: { title: string; subtitle: string; rows: [string, string][]; notes: string[] };
};

suite('engine process', () => {
  test('activation is light: no TensorFlow.js in the extension host', () => {
    console.log(`    activation took ${api.activationMs.toFixed(1)} ms`);
    assert.ok(api.activationMs < 100, `activation took ${api.activationMs} ms (target < 100)`);
    const tfLoaded = Object.keys(require.cache).filter((k) => k.includes('@tensorflow'));
    assert.deepEqual(tfLoaded, [], 'the extension host never loads TF.js');
  });

  test('a crashed engine process is replaced on the next request', async function () {
    this.timeout(60_000);
    const backend = await vscode.commands.executeCommand<string>('linger.showBackend');
    assert.ok(backend === 'wasm' || backend === 'cpu');
    const pid = api.engine.pid!;
    process.kill(pid, 'SIGKILL');
    await waitFor('the engine to be noticed gone', () => api.engine.pid === undefined || undefined, 10_000);
    assert.equal(await vscode.commands.executeCommand<string>('linger.showBackend'), backend);
    assert.ok(api.engine.pid && api.engine.pid !== pid, 'a new process serves');
  });
});

suite('Model view', () => {
  test("Model A: before and after traceLayers; Copy as Text is exactly the seed's printout", async function () {
    this.timeout(120_000);
    const file = path.join(ws, 'models', 'modelA.ts');
    const r = await vscode.commands.executeCommand<{ after: { text: string } }>('linger.traceModelFile', {
      file,
      traceOptions: { fuseBn: true },
    });
    assert.ok(r, 'the trace returned its result');
    const [before, after] = api.models.roots;
    assert.deepEqual([before.tree.label, after.tree.label], ['Before traceLayers', 'After traceLayers']);
    assert.deepEqual(
      moduleChildren(before).map((n) => `${n.entry.path}:${n.entry.type}`),
      ['transpose:ConvTranspose2d', 'conv:Conv2d', 'bn:BatchNorm2d', 'fc:Linear'],
    );
    const afterNodes = moduleChildren(after);
    assert.deepEqual(
      afterNodes.map((n) => `${n.entry.path}:${n.entry.type}${n.replaced ? ` (was ${n.replaced})` : ''}`),
      ['transpose:ConvTranspose2d', 'conv:NormalizeConvBN2d (was Conv2d)', 'bn:EmptyBatchNorm (was BatchNorm2d)', 'fc:Linear'],
    );
    const convItem = api.models.getTreeItem(afterNodes[1]);
    assert.match(String(convItem.description), /^NormalizeConvBN2d · was Conv2d/);
    assert.deepEqual(
      (children(afterNodes[1]) as ModuleNode[]).map((n) => n.entry.path),
      ['conv.conv', 'conv.bn'],
    );
    const text = await vscode.commands.executeCommand<string>('linger.copyModelText', after);
    // SPEC §3.3's printout (the same fixture as the engine's test)
    assert.equal(text, fs.readFileSync(path.join(extensionPath, 'test', 'fixtures', 'seed', 'modelA-traced.txt'), 'utf8').trimEnd());
    assert.equal(await vscode.env.clipboard.readText(), text);
    // "Reveal in editor" opens the model file at the module's definition
    await vscode.commands.executeCommand('linger.revealModule', afterNodes[1]);
    const editor = vscode.window.activeTextEditor!;
    assert.equal(editor.document.uri.fsPath, file);
    assert.match(editor.document.lineAt(editor.selection.start.line).text, /conv = new nn\.Conv2d/);
    await screenshot('model-a-reveal');
  });

  const table: [Record<string, boolean>, string[]][] = [
    [{}, ['conv', 'conv1', 'conv2']],
    [{ fuseBn: false }, ['bn', 'conv1', 'bn1']],
  ];
  for (const [traceOptions, flagged] of table) {
    test(`Model B with ${JSON.stringify(traceOptions)}: ahead-ReLU marks on ${flagged.join(', ')} (SPEC §3)`, async function () {
      this.timeout(60_000);
      await vscode.commands.executeCommand('linger.traceModelFile', { file: path.join(ws, 'models', 'modelB.ts'), traceOptions });
      const after = api.models.roots[1];
      assert.deepEqual(
        after.tree.modules.filter((e) => e.aheadRelu).map((e) => e.path),
        flagged,
      );
      const item = api.models.getTreeItem(moduleChildren(after).find((n) => n.entry.path === flagged[1])!);
      assert.match(String(item.description), /ahead ReLU/);
    });
  }

  test('a 300-module model: its whole tree is built in under 300 ms', async function () {
    this.timeout(60_000);
    await vscode.commands.executeCommand('linger.traceModelFile', { file: path.join(ws, 'models', 'deep.ts'), traceOptions: {} });
    const t0 = performance.now();
    let count = 0;
    const walk = (n?: unknown) => {
      for (const c of children(n)) {
        api.models.getTreeItem(c);
        count++;
        walk(c);
      }
    };
    walk();
    const ms = performance.now() - t0;
    console.log(`    tree of ${count} nodes (two roots) built in ${ms.toFixed(1)} ms`);
    assert.equal(count, 2 * (1 + 15 + 300), 'both roots with every module');
    assert.ok(ms < 300, `${ms} ms`);
  });

  test('screenshot: the Model view before and after traceLayers', async function () {
    this.timeout(30_000);
    await vscode.commands.executeCommand('linger.traceModelFile', { file: path.join(ws, 'models', 'modelB.ts'), traceOptions: {} });
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    await vscode.commands.executeCommand('linger.model.focus');
    await api.views.model.reveal(api.models.roots[0], { expand: true });
    await screenshot('model-view');
  });

  test("Graph editor: Model B's traced graph drawn by dagre in the editor area, fused pairs and ahead-ReLU edges marked; a click selects the module and fills the node panel; Save as SVG", async function () {
    this.timeout(60_000);
    await vscode.commands.executeCommand('linger.traceModelFile', { file: path.join(ws, 'models', 'modelB.ts'), traceOptions: {} });
    const stats = await vscode.commands.executeCommand<{ nodes: number; edges: number; fused: number; ahead: number }>('linger.showGraph');
    // input, 9 module calls, the sub op, the view (reshape), output; conv→bn fused twice; the ReLUs
    // after conv (fused), conv1 and conv2 (fused) get the highlighted ahead-ReLU edge
    assert.deepEqual(stats, { nodes: 13, edges: 12, fused: 2, ahead: 3 });
    // the graph is an editor (a webview panel), not a side-bar view
    const tab = vscode.window.tabGroups.activeTabGroup.activeTab;
    assert.ok(tab?.input instanceof vscode.TabInputWebview && /linger\.graphEditor/.test(tab.input.viewType), String(tab?.label));
    assert.match(tab.label, /^Graph: models\/modelB\.ts/);
    // a click on conv1's node selects conv1 in the Model view and shows it in the node panel
    const graph = (api as unknown as { graph: GraphProps }).graph;
    graph.activate('conv1');
    const picked = await waitFor(
      'the Model view selection',
      () => {
        const sel = api.views.model.selection[0] as ModuleNode | undefined;
        return sel?.kind === 'module' ? sel : undefined;
      },
      10_000,
    );
    assert.equal(picked.entry.path, 'conv1');
    const first = await waitFor('the node panel', () => (graph.lastProps?.title === 'conv1' ? graph.lastProps : undefined), 10_000);
    assert.equal(first.subtitle, 'Conv2d');
    assert.deepEqual(first.rows.slice(0, 3), [
      ['input', '[1, 10, 5, 5]'],
      ['output', '[1, 10, 5, 5]'],
      ['parameters', '910'],
    ]);
    assert.ok(
      first.notes.some((n) => /ahead ReLU/.test(n)),
      first.notes.join(' | '),
    );
    graph.activate('conv2');
    const props = await waitFor('the node panel', () => (graph.lastProps?.title === 'conv2' ? graph.lastProps : undefined), 10_000);
    assert.equal(props.subtitle, 'Conv2d → NormalizeConvBN2d');
    assert.ok(
      props.notes.some((n) => /BatchNorm 'bn1' is folded into this conv/.test(n)),
      props.notes.join(' | '),
    );
    await screenshot('graph-editor-modelB');
    const svgFile = path.join(ws, 'graph-modelB.svg');
    assert.equal(await vscode.commands.executeCommand('linger.saveGraphSvg', { file: svgFile }), svgFile);
    const svg = fs.readFileSync(svgFile, 'utf8');
    assert.match(svg, /^<svg[^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    for (const label of ['conv1', 'relu2', 'NormalizeConvBN2d (fused)', 'fc']) assert.ok(svg.includes(`>${label}<`), `${label} in the SVG`);
    assert.ok(!/var\(--/.test(svg), 'theme colours are resolved in the saved file');
  });

  test('Import ONNX…: a PyTorch export, imported and traced, with its graph', async function () {
    this.timeout(60_000);
    const file = path.join(extensionPath, 'test', 'fixtures', 'onnx', 'demo_cnn.preserve.onnx');
    const r = await vscode.commands.executeCommand<{ after?: unknown }>('linger.importOnnx', { file, trace: true });
    assert.ok(r?.after, 'imported and traced');
    const [before, after] = api.models.roots;
    assert.ok(moduleChildren(before).some((n) => n.entry.path === 'bn1' && n.entry.type === 'BatchNorm2d'));
    const conv1 = moduleChildren(after).find((n) => n.entry.path === 'conv1')!;
    assert.deepEqual([conv1.entry.type, conv1.replaced], ['NormalizeConvBN2d', 'Conv2d']);
  });

  test('Export ONNX… (Model File): the float model, verified in onnxruntime', async function () {
    this.timeout(60_000);
    const file = path.join(ws, 'models', 'modelB.ts');
    const r = await vscode.commands.executeCommand<{ file: string; stage: string; verification: { ok: boolean; summary: string } }>(
      'linger.exportModelFileOnnx',
      { file },
    );
    assert.equal(r.file, path.join(ws, 'models', 'modelB.onnx'));
    assert.equal(r.stage, 'float');
    assert.ok(r.verification.ok, r.verification.summary);
    assert.ok(fs.statSync(r.file).size > 1000);
  });

  test('a model file that does not compile is an error naming the file and line; the engine serves on', async function () {
    this.timeout(30_000);
    await assert.rejects(
      api.engine.request('linger/traceModelFile', { file: path.join(ws, 'models', 'broken.ts') }, 'trace broken.ts'),
      /broken\.ts:5/,
    );
    assert.equal(
      await vscode.commands.executeCommand('linger.traceModelFile', { file: path.join(ws, 'models', 'broken.ts'), traceOptions: {} }),
      undefined,
    );
    assert.ok(await vscode.commands.executeCommand<string>('linger.showBackend'));
  });
});

suite('Python model files', () => {
  test("Trace PyTorch Model…: the seed's Model B, built by the user's Python, shows the tree real linger prints", async function () {
    this.timeout(180_000);
    const python = '/usr/bin/python3';
    if (!fs.existsSync(python)) this.skip();
    const fixtures = path.join(extensionPath, 'test', 'fixtures', 'python');
    const golden = JSON.parse(fs.readFileSync(path.join(fixtures, 'seed_models.linger.json'), 'utf8')) as {
      models: Record<string, { before: string; after: string }>;
    };
    const file = path.join(ws, 'models', 'seed_models.py');
    fs.copyFileSync(path.join(fixtures, 'seed_models.py'), file);
    try {
      await vscode.window.showTextDocument(vscode.Uri.file(file), { preview: false });
      const keys = (api as unknown as { contextKeys: Record<string, unknown> }).contextKeys;
      await waitFor('linger.isPythonModelFile', () => keys['linger.isPythonModelFile'] === true, 20_000);
      const r = await vscode.commands.executeCommand<{ className: string; after: { text: string }; definitions: Record<string, number> }>(
        'linger.tracePythonModel',
        {
          file,
          className: 'ModelB',
          inputShape: [1, 10, 5, 5],
          python,
          traceOptions: { fuseBn: true, aheadConvRelu: true, aheadBnRelu: true, aheadLinearRelu: false },
        },
      );
      assert.equal(r.className, 'ModelB');
      assert.equal(r.after.text, golden.models.ModelB.after);
      assert.equal(api.models.roots[1].tree.text, golden.models.ModelB.after, 'the Model view shows the traced tree');
      assert.equal(api.models.roots[0].tree.text, golden.models.ModelB.before);
      assert.equal(r.definitions.conv, 30, 'self.conv = … in ModelB (0-based line)');
      await screenshot('python-model');
    } finally {
      await vscode.commands.executeCommand('workbench.action.closeAllEditors');
      fs.rmSync(file, { force: true });
    }
  });
});

suite('Checkpoints view', () => {
  const dir = () => path.join(ws, 'checkpoints');

  test("empty at first; the demo's three checkpoints appear under their experiment and stages as they are written", async function () {
    this.timeout(300_000);
    assert.deepEqual(await api.checkpoints.getChildren(), [], 'no checkpoints yet: the welcome content shows');
    await vscode.commands.executeCommand('linger.checkpoints.focus');
    await run(path.join(extensionPath, 'dist', 'cli.js'), [
      'demo',
      '--limit',
      '6',
      '--epochs',
      '1,1,1',
      '--checkpoints',
      dir(),
      '--experiment',
      'smoke',
    ]);
    const experiment = await waitFor('the experiment', async () =>
      (await api.checkpoints.getChildren()).find((n) => n.dir?.endsWith('smoke')),
    );
    const stages = await waitFor('three stages', async () => {
      const s = await api.checkpoints.getChildren(experiment);
      return s.length === 3 ? s : undefined;
    });
    assert.deepEqual(
      stages.map((s) => s.stage),
      ['float', 'traced', 'fixed'],
    );
    for (const s of stages) {
      const [c] = await api.checkpoints.getChildren(s);
      assert.equal(c.summary!.stage, s.stage, 'the stage comes from the metadata');
      const item = api.checkpoints.getTreeItem(c);
      assert.match(String(item.description), /accuracy=0\.\d+ loss=[\d.]+ · [\d.]+ (KB|MB)/);
      assert.equal(item.contextValue, 'linger.checkpoint.tree');
    }
  });

  test("a truncated file is an error item with the engine's message; a plain safetensors file has no linger metadata", async function () {
    this.timeout(60_000);
    const good = path.join(dir(), 'smoke', 'fixed.safetensors');
    const broken = path.join(dir(), 'broken');
    fs.mkdirSync(broken, { recursive: true });
    const bytes = fs.readFileSync(good);
    fs.writeFileSync(path.join(broken, 'truncated.safetensors'), bytes.subarray(0, bytes.length - 1000));
    // a plain safetensors file as PyTorch's safetensors writes it: one F32 tensor, no metadata
    const header = Buffer.from(JSON.stringify({ weight: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }));
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(header.length));
    fs.writeFileSync(path.join(broken, 'plain.safetensors'), Buffer.concat([len, header, Buffer.from(new Float32Array([1, 2]).buffer)]));
    const exp = await waitFor('the broken experiment', async () =>
      (await api.checkpoints.getChildren()).find((n) => n.dir?.endsWith('broken')),
    );
    const kids = await waitFor('both files', async () => {
      const k = await api.checkpoints.getChildren(exp);
      return k.length === 2 ? k : undefined;
    });
    const error = kids.find((k) => k.kind === 'error')!;
    assert.match(error.message!, /truncated\.safetensors/);
    assert.match(error.message!, /file|size|bytes|truncated|end/i);
    assert.equal(api.checkpoints.getTreeItem(error).description, 'cannot be read');
    const stage = kids.find((k) => k.kind === 'stage')!;
    const [plain] = await api.checkpoints.getChildren(stage);
    assert.equal(plain.summary!.linger, false);
    assert.match(String(api.checkpoints.getTreeItem(plain).description), /^no linger metadata/);
  });

  test(".pt files beside safetensors: PyTorch's and real linger's, each under the stage linger's key names give it; Inspect reads them", async function () {
    this.timeout(60_000);
    // state_dict.pt: written by Debian's PyTorch; linger_traced.pt / linger_fixed.pt: by the real linger 1.1.1
    // (test/fixtures/pt, scripts/make_pt_fixtures.py)
    const pt = path.join(dir(), 'pytorch');
    fs.mkdirSync(pt, { recursive: true });
    for (const [from, to] of [
      ['state_dict.pt', 'model.pt'],
      ['linger_traced.pt', 'traced.pth'],
      ['linger_fixed.pt', 'fixed.pt'],
    ])
      fs.copyFileSync(path.join(extensionPath, 'test', 'fixtures', 'pt', from), path.join(pt, to));
    const exp = await waitFor('the pytorch experiment', async () => (await api.checkpoints.getChildren()).find((n) => n.dir === pt));
    const stages = await waitFor('three stages', async () => {
      const k = await api.checkpoints.getChildren(exp);
      return k.length === 3 ? k : undefined;
    });
    const byStage: Record<string, string[]> = {};
    for (const st of stages) byStage[st.stage!] = (await api.checkpoints.getChildren(st)).map((n) => path.basename(n.uri!.fsPath));
    assert.deepEqual(byStage, { float: ['model.pt'], traced: ['traced.pth'], fixed: ['fixed.pt'] });
    const [fixed] = await api.checkpoints.getChildren(stages.find((s) => s.stage === 'fixed'));
    const tip = api.checkpoints.getTreeItem(fixed).tooltip as vscode.MarkdownString;
    assert.match(tip.value, /a PyTorch \.pt file \(no linger metadata\): fixed stage, from linger's key names/);
    const text = await vscode.commands.executeCommand<string>('linger.inspectCheckpoint', { file: path.join(pt, 'fixed.pt') });
    assert.match(text, /running_x/);
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
  });

  test('Export as PyTorch Project…: the smoke run’s float checkpoint as model.py, weights, recipe.json, train.py, README; PyTorch loads the weights strict', async function () {
    this.timeout(120_000);
    const outDir = path.join(ws, 'pytorch-smoke');
    try {
      const r = await vscode.commands.executeCommand<{ dir: string; model: string; stage: string; files: string[] }>(
        'linger.exportPytorchProject',
        { file: path.join(dir(), 'smoke', 'float.safetensors'), outDir, data: false },
      );
      assert.ok(r, 'exported');
      assert.deepEqual([r.model, r.stage], ['DemoCNN', 'float']);
      for (const f of ['model.py', 'train.py', 'recipe.json', 'README.md', 'weights.safetensors', path.join('pt', 'weights.pt')])
        assert.ok(fs.existsSync(path.join(outDir, f)), f);
      assert.match(fs.readFileSync(path.join(outDir, 'model.py'), 'utf8'), /^class DemoCNN\(nn\.Module\):/m);
      const python = '/usr/bin/python3';
      if (spawnSync(python, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0) {
        const p = spawnSync(
          python,
          [
            '-c',
            `import sys, torch; sys.path.insert(0, ${JSON.stringify(outDir)}); import model; m = model.create_model(); m.load_state_dict(torch.load(${JSON.stringify(path.join(outDir, 'pt', 'weights.pt'))}), strict=True); print('loaded')`,
          ],
          { encoding: 'utf8' },
        );
        assert.match(p.stdout, /loaded/, p.stderr);
      } else console.log(`# skipped the PyTorch load: ${python} cannot import torch`);
      // a second export into the same folder asks first; given force, it replaces
      const again = await vscode.commands.executeCommand<{ files: string[] }>('linger.exportPytorchProject', {
        file: path.join(dir(), 'smoke', 'float.safetensors'),
        outDir,
        data: false,
        force: true,
      });
      assert.ok(again?.files.length);
    } finally {
      fs.rmSync(outDir, { recursive: true, force: true });
    }
  });

  test('Inspect shows the metadata and the tensor table; Show Model Tree shows the stored tree', async function () {
    this.timeout(60_000);
    const file = path.join(dir(), 'smoke', 'fixed.safetensors');
    const text = await vscode.commands.executeCommand<string>('linger.inspectCheckpoint', { file });
    assert.match(text, /stage {10}fixed/);
    assert.match(text, /^ {2}name +dtype +shape +min +max +mean$/m);
    assert.match(text, /conv1\.weight +F32 +\[16, 1, 3, 3\]/);
    // it opens as a read-only editor (a webview: nothing to save), a histogram per tensor, the Int
    // layers' scales as 2^n
    const tab = await waitFor('the Inspect editor', () => tabNamed('Inspect: fixed.safetensors'), 10_000);
    assert.ok(tab.input instanceof vscode.TabInputWebview && /linger\.inspect/.test(tab.input.viewType), String(tab.label));
    const page = (api as unknown as { reports: { html: Map<string, string> } }).reports.html.get(file) ?? '';
    assert.equal(
      (page.match(/<svg class="hist"/g) ?? []).length,
      8,
      'a histogram per weight and bias (the quantizer buffers hold one value)',
    );
    assert.match(page, /<td>conv1<\/td><td>Conv2dInt<\/td><td>8\/8\/8<\/td><td>2\^\d+ · /);
    await themedScreenshots('inspect');
    const root = await vscode.commands.executeCommand<ModelRoot>('linger.showModelTreeOfCheckpoint', { file });
    assert.equal(root.tree.stage, 'fixed');
    assert.deepEqual(
      moduleChildren(root)
        .map((n) => `${n.entry.path}:${n.entry.type}`)
        .slice(0, 2),
      ['conv1:Conv2dInt', 'bn1:EmptyBatchNorm'],
    );
    // its graph in the editor: an Int layer's bits and scales (2^n, Q-format) in the node panel,
    // a quantized input's scale carried from the layer that made it
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    assert.ok(await vscode.commands.executeCommand('linger.showGraph', { file }));
    const graph = (api as unknown as { graph: GraphProps }).graph;
    graph.activate('conv2');
    const props = await waitFor('the node panel', () => (graph.lastProps?.title === 'conv2' ? graph.lastProps : undefined), 10_000);
    const row = (k: string) => props.rows.find(([r]) => r === k)?.[1] ?? '';
    assert.equal(row('bits (data, parameter, out)'), '8, 8, 8');
    assert.match(row('scale x'), /^2\^\d+ · (Q\d+\.\d+|-?\d+ fractional bits) .*, carried from conv1$/);
    assert.match(row('scale w'), /^2\^\d+/);
    assert.match(row('scale o'), /^2\^\d+/);
    await themedScreenshots('graph-editor-democnn');
  });

  test('Export ONNX: float and qdq verified in onnxruntime, thinker by its structure; the built-in DemoCNN needs no model file', async function () {
    this.timeout(120_000);
    type Exported = { file: string; stage: string; verification: { ok: boolean; summary: string; method: string } };
    const q = await vscode.commands.executeCommand<Exported>('linger.exportCheckpointOnnx', {
      file: path.join(dir(), 'smoke', 'fixed.safetensors'),
      dialect: 'qdq',
    });
    assert.equal(q.verification.summary, 'qdq: 100% of 40 outputs bit-exact in onnxruntime');
    assert.ok(fs.statSync(path.join(dir(), 'smoke', 'fixed.qdq.onnx')).size > 10_000);
    const t = await vscode.commands.executeCommand<Exported>('linger.exportCheckpointOnnx', {
      file: path.join(dir(), 'smoke', 'fixed.safetensors'),
      dialect: 'thinker',
    });
    assert.equal(t.verification.method, 'structure');
    assert.ok(t.verification.ok, t.verification.summary);
    const f = await vscode.commands.executeCommand<Exported>('linger.exportCheckpointOnnx', {
      file: path.join(dir(), 'smoke', 'traced.safetensors'),
    });
    assert.equal(f.stage, 'traced');
    assert.match(f.verification.summary, /^traced: 40 outputs within [\d.e-]+ of the engine in onnxruntime \(≤ 1e-4\)$/);
    assert.ok(f.verification.ok);
  });

  test('the sequence demo (GRU): its model file traces, its fixed checkpoint shows GRUInt, and exports bit-exact (qdq) and as thinker without a model file', async function () {
    this.timeout(300_000);
    const r = await vscode.commands.executeCommand<unknown>('linger.traceModelFile', {
      file: path.join(extensionPath, 'examples', 'sequence_gru.ts'),
      traceOptions: {},
    });
    assert.ok(r, 'the trace returned its result');
    assert.deepEqual(
      moduleChildren(api.models.roots[1]).map((n) => `${n.entry.path}:${n.entry.type}`),
      ['conv:NormalizeConvBN1d', 'bn:EmptyBatchNorm', 'relu:ReLU', 'gru:GRU', 'fc:Linear'],
    );
    await run(path.join(extensionPath, 'dist', 'cli.js'), [
      'demo',
      '--model',
      'gru',
      '--limit',
      '6',
      '--epochs',
      '1,1,1',
      '--checkpoints',
      dir(),
      '--experiment',
      'gru',
    ]);
    const fixed = path.join(dir(), 'gru', 'fixed.safetensors');
    const root = await vscode.commands.executeCommand<ModelRoot>('linger.showModelTreeOfCheckpoint', { file: fixed });
    assert.equal(root.tree.stage, 'fixed');
    assert.deepEqual(
      moduleChildren(root).map((n) => `${n.entry.path}:${n.entry.type}`),
      ['conv:Conv1dInt', 'bn:EmptyBatchNorm', 'relu:ReLU', 'gru:GRUInt', 'fc:LinearInt'],
    );
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    await vscode.commands.executeCommand('linger.model.focus');
    await api.views.model.reveal(root, { expand: true });
    await screenshot('model-view-gru');
    // its graph in the editor, the GRUInt's panel open
    assert.ok(await vscode.commands.executeCommand('linger.showGraph', { file: fixed }));
    const graph = (api as unknown as { graph: GraphProps }).graph;
    graph.activate('gru');
    const props = await waitFor('the node panel', () => (graph.lastProps?.title === 'gru' ? graph.lastProps : undefined), 10_000);
    assert.equal(props.subtitle, 'GRU → GRUInt');
    await themedScreenshots('graph-editor-demogru');
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    type Exported = { file: string; stage: string; verification: { ok: boolean; summary: string; method: string } };
    const q = await vscode.commands.executeCommand<Exported>('linger.exportCheckpointOnnx', { file: fixed, dialect: 'qdq' });
    assert.match(q.verification.summary, /^qdq: 100% of \d+ outputs bit-exact in onnxruntime$/);
    const t = await vscode.commands.executeCommand<Exported>('linger.exportCheckpointOnnx', { file: fixed, dialect: 'thinker' });
    assert.equal(t.verification.method, 'structure');
    assert.ok(t.verification.ok, t.verification.summary);
  });

  test('Compare with…: keys moved across stages, per-tensor max |Δ|, metric deltas', async function () {
    this.timeout(60_000);
    type Compared = {
      a: string;
      b: string;
      moved: { from: string; to: string; maxAbs: number }[];
      added: string[];
      changed: { key: string; maxAbs: number }[];
      metrics: { name: string }[];
      text: string;
    };
    const r = await vscode.commands.executeCommand<Compared>('linger.compareCheckpoints', {
      file: path.join(dir(), 'smoke', 'float.safetensors'),
      with: path.join(dir(), 'smoke', 'traced.safetensors'),
    });
    const w = r.moved.find((m) => m.from === 'conv1.weight');
    assert.equal(w?.to, 'conv1.conv.weight', JSON.stringify(r.moved));
    assert.ok(w!.maxAbs > 0, 'the float-stage epoch trained it');
    assert.ok(r.changed.length > 0);
    assert.deepEqual(
      r.metrics.map((m) => m.name),
      ['accuracy', 'loss'],
    );
    // a read-only editor, never an untitled buffer
    const tab = await waitFor('the Compare editor', () => tabNamed('Compare: float.safetensors ↔ traced.safetensors'), 10_000);
    assert.ok(tab.input instanceof vscode.TabInputWebview && /linger\.compare/.test(tab.input.viewType), String(tab.label));
    assert.equal(vscode.workspace.textDocuments.filter((d) => d.isUntitled).length, 0);
    await screenshot('compare');
    // float → fixed: the folded BNs are named where conv1's weight moved
    const f = await vscode.commands.executeCommand<Compared & { folded: { conv: string; bn: string }[] }>('linger.compareCheckpoints', {
      file: path.join(dir(), 'smoke', 'float.safetensors'),
      with: path.join(dir(), 'smoke', 'fixed.safetensors'),
    });
    assert.deepEqual(
      f.folded.map((x) => `${x.bn}→${x.conv}`),
      ['bn1→conv1', 'bn2→conv2'],
    );
    const page = (api as unknown as { reports: { html: Map<string, string> } }).reports.html.get(`${f.a}\n${f.b}`) ?? '';
    assert.match(page, /bn1 folded into conv1 in fixed\.safetensors: moved by the fold/);
    await themedScreenshots('compare-float-fixed');
  });

  test('Show Experiment: the runs, a chart per metric across the stages, lineage and notes, in a read-only editor', async function () {
    this.timeout(60_000);
    type Report = {
      runs: { label: string; files: string[] }[];
      metrics: string[];
      notes: { text: string }[];
      checkpoints: { name: string; recipe?: Record<string, unknown> }[];
    };
    const pages = () => (api as unknown as { reports: { html: Map<string, string> } }).reports.html;
    const smoke = path.join(dir(), 'smoke');
    // the inline action of the experiment's row in the Checkpoints view
    const item = api.checkpoints.getTreeItem((await api.checkpoints.getChildren()).find((n) => n.dir === smoke)!);
    assert.equal(item.contextValue, 'linger.experiment');
    const r = await vscode.commands.executeCommand<Report>('linger.showExperiment', { kind: 'experiment', dir: smoke });
    assert.deepEqual(
      r.runs.map((x) => x.files.map((f) => path.basename(f))),
      [['float.safetensors', 'traced.safetensors', 'fixed.safetensors']],
    );
    assert.deepEqual(r.metrics, ['accuracy', 'loss']);
    // the demo records its recipe; the notes explain the quick run and the fold
    assert.equal(r.checkpoints[0].recipe?.limitPerClass, 6);
    assert.ok(
      r.notes.some((n) => /a quick run: trained on 60 images \(6 per class\)/.test(n.text)),
      r.notes.map((n) => n.text).join('\n'),
    );
    assert.ok(r.notes.some((n) => /traced\.safetensors: bn1 is folded into conv1/.test(n.text)));
    const tab = await waitFor('the experiment editor', () => tabNamed('Experiment: smoke'), 10_000);
    assert.ok(tab.input instanceof vscode.TabInputWebview && /linger\.experiment/.test(tab.input.viewType), String(tab.label));
    const page = pages().get(`experiment:${smoke}`) ?? '';
    assert.equal((page.match(/<figure class="chart"><svg /g) ?? []).length, 2, 'accuracy and loss charts');
    assert.match(page, /<h2>Lineage<\/h2>/);
    assert.match(page, /<h2>Recipes<\/h2>.*<td>limitPerClass<\/td><td>6<\/td>/s);
    await themedScreenshots('experiment');
    // every experiment overlaid: the CNN and the GRU demo, a line each
    const all = await vscode.commands.executeCommand<Report>('linger.showAllExperiments');
    const labels = all.runs.map((x) => x.label);
    assert.ok(labels.includes('smoke') && labels.includes('gru'), labels.join(', '));
    await waitFor('the overlay editor', () => tabNamed('Experiment: all experiments'), 10_000);
    await themedScreenshots('experiment-all');
  });

  test('screenshot: the Checkpoints view', async function () {
    this.timeout(30_000);
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    await vscode.commands.executeCommand('linger.checkpoints.focus');
    const [smoke] = (await api.checkpoints.getChildren()).filter((n) => n.dir?.endsWith('smoke'));
    for (const s of await api.checkpoints.getChildren(smoke)) await api.views.checkpoints.reveal(s, { expand: true });
    await screenshot('checkpoints-view');
  });

  test('Delete removes the file and its item', async function () {
    this.timeout(30_000);
    const file = path.join(dir(), 'broken', 'truncated.safetensors');
    assert.equal(await vscode.commands.executeCommand('linger.deleteCheckpoint', { file, confirmed: true }), true);
    assert.ok(!fs.existsSync(file));
    const exp = (await api.checkpoints.getChildren()).find((n) => n.dir?.endsWith('broken'))!;
    assert.ok((await api.checkpoints.getChildren(exp)).every((k) => k.kind !== 'error'));
  });
});

suite('jobs', () => {
  test('Run Two-Stage Demo runs in the engine process with progress; its checkpoints appear', async function () {
    this.timeout(300_000);
    const phases = new Set<string>();
    const sub = (api.engine as unknown as { onProgress: vscode.Event<{ phase: string }> }).onProgress((p) => phases.add(p.phase));
    const r = await vscode.commands.executeCommand<{ stages: { stage: string; checkpoint: string }[] }>('linger.runDemo', {
      epochs: [1, 0, 1],
      limit: 6,
      experiment: 'ext-demo',
    });
    sub.dispose();
    assert.deepEqual(
      r.stages.map((s) => s.stage),
      ['float', 'traced', 'fixed'],
    );
    assert.ok(phases.has('float epoch 1/1') && phases.has('QAT epoch 1/1'), [...phases].join(', '));
    const exp = await waitFor("the demo's experiment", async () =>
      (await api.checkpoints.getChildren()).find((n) => n.dir?.endsWith('ext-demo')),
    );
    assert.equal((await api.checkpoints.getChildren(exp)).length, 3);
  });

  test('cancelling the demo stops it at the next step; the engine process stays', async function () {
    this.timeout(300_000);
    const pid = api.engine.pid;
    let started!: () => void;
    const running = new Promise<void>((r) => {
      started = r;
    });
    const sub = (api.engine as unknown as { onProgress: vscode.Event<{ phase: string }> }).onProgress(() => started());
    const job = vscode.commands.executeCommand('linger.runDemo', { epochs: [2, 1, 1], limit: 300, experiment: 'ext-cancelled' });
    await running;
    sub.dispose();
    const t0 = Date.now();
    assert.equal(await vscode.commands.executeCommand('linger.cancelJob'), 'two-stage demo');
    assert.equal(await job, undefined);
    assert.ok(Date.now() - t0 < 5000, `stopped in ${Date.now() - t0} ms`);
    assert.equal(api.engine.pid, pid, 'no restart was needed');
  });

  test('a model whose forward never returns: Cancel ends the engine process, and the next command starts a new one', async function () {
    this.timeout(60_000);
    const pid = api.engine.pid;
    const job = vscode.commands.executeCommand('linger.traceModelFile', { file: path.join(ws, 'models', 'hang.ts'), traceOptions: {} });
    await sleep(3000); // the engine is inside forward by now
    assert.match(String(await vscode.commands.executeCommand('linger.cancelJob')), /^trace hang\.ts$/);
    assert.equal(await job, undefined);
    await waitFor('the old process to end', () => api.engine.pid === undefined || api.engine.pid !== pid || undefined, 15_000);
    assert.ok(await vscode.commands.executeCommand<string>('linger.showBackend'));
    assert.notEqual(api.engine.pid, pid);
  });
});

suite('getting started', () => {
  test('the walkthrough opens with its four steps', async function () {
    this.timeout(30_000);
    const ext = vscode.extensions.getExtension(EXTENSION_ID)!;
    const walkthroughs = (
      ext.packageJSON as { contributes: { walkthroughs: { id: string; steps: { id: string; media: { markdown: string } }[] }[] } }
    ).contributes.walkthroughs;
    assert.deepEqual(
      walkthroughs[0].steps.map((s) => s.id),
      ['demo', 'trace', 'checkpoints', 'loadorder'],
    );
    for (const s of walkthroughs[0].steps) assert.ok(fs.existsSync(path.join(extensionPath, s.media.markdown)), s.media.markdown);
    await vscode.commands.executeCommand('workbench.action.openWalkthrough', `${EXTENSION_ID}#linger.gettingStarted`, false);
    await screenshot('walkthrough');
  });
});
