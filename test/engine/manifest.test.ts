// The extension's manifest (package.json `contributes`) and what the package ships for model files
// (issue 20): every `when` clause names only context keys VS Code 1.100 or the extension defines,
// and a model file as *Linger: New Model File* writes it type-checks against the shipped declarations.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'node:test';
import ts from 'typescript';
import { compilerOptionsFor, modelFileText, tsconfigText } from '../../src/extension/newModelFile';

const root = path.resolve(__dirname, '..', '..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
/** VS Code 1.100.3's context keys, extracted from its workbench bundle (the fixture says how). */
const vscodeKeys = new Set<string>(JSON.parse(fs.readFileSync(path.join(__dirname, 'manifest.contextKeys.json'), 'utf8')).keys);

/** The `linger.*` context keys the extension sets (setContext in src/extension). */
function ourKeys(): Set<string> {
  const keys = new Set<string>();
  const walk = (dir: string): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts')) {
        for (const m of fs.readFileSync(p, 'utf8').matchAll(/'setContext',\s*'([^']+)'/g)) keys.add(m[1]);
      }
    }
  };
  walk(path.join(root, 'src', 'extension'));
  return keys;
}

/** Every `when` in `contributes`, with where it is. */
function whenClauses(): { where: string; when: string }[] {
  const out: { where: string; when: string }[] = [];
  const visit = (v: unknown, where: string): void => {
    if (Array.isArray(v)) v.forEach((x, i) => visit(x, `${where}[${i}]`));
    else if (v && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) {
        if ((k === 'when' || k === 'enablement') && typeof x === 'string') out.push({ where: `${where}.${k}`, when: x });
        else visit(x, `${where}.${k}`);
      }
    }
  };
  visit(pkg.contributes, 'contributes');
  return out;
}

/**
 * The context keys a when clause reads (VS Code's grammar, docs: code.visualstudio.com/api/references/when-clause-contexts):
 * terms joined by && and ||, each `!`-negated or parenthesised, `key`, `key OP value` (==, !=, ===, !==, =~, <, <=, >, >=),
 * `key in key2`, `key not in key2`. Values after ==/=~/... are literals, not keys.
 */
function keysOf(when: string): string[] {
  // regex literals (after =~) and quoted strings may contain anything; drop them first
  const text = when.replace(/=~\s*\/(?:\\.|[^/\\])*\/[a-z]*/g, '=~ REGEX').replace(/'(?:\\.|[^'\\])*'|"(?:\\.|[^"\\])*"/g, 'STRING');
  const keys: string[] = [];
  for (const raw of text.split(/&&|\|\|/)) {
    const term = raw.replace(/[()!]/g, (c, i, s) => (c === '!' && s[i + 1] === '=' ? c : ' ')).trim();
    if (!term) continue;
    const inOp = term.match(/^(\S+)\s+(?:not\s+)?in\s+(\S+)$/);
    if (inOp) {
      keys.push(inOp[1], inOp[2]);
      continue;
    }
    const cmp = term.match(/^([^\s=!<>~]+)\s*(?:===|!==|==|!=|=~|<=|>=|<|>)\s*(.+)$/);
    if (cmp) {
      keys.push(cmp[1]);
      continue;
    }
    assert.match(term, /^[^\s=!<>~]+$/, `cannot read the term '${raw}' of '${when}'`);
    keys.push(term);
  }
  return keys.filter((k) => k !== 'true' && k !== 'false');
}

test('keysOf reads when clauses as VS Code does', () => {
  assert.deepEqual(keysOf('linger.isModelFile && isWorkspaceTrusted'), ['linger.isModelFile', 'isWorkspaceTrusted']);
  assert.deepEqual(keysOf('!isWorkspaceTrusted'), ['isWorkspaceTrusted']);
  assert.deepEqual(keysOf('view == linger.checkpoints && viewItem =~ /^linger\\.checkpoint/ && viewItem != linger.checkpoint.error'), [
    'view',
    'viewItem',
    'viewItem',
  ]);
  assert.deepEqual(keysOf('!(editorReadonly || inDebugMode) && resourceFilename in supportedFolders'), [
    'editorReadonly',
    'inDebugMode',
    'resourceFilename',
    'supportedFolders',
  ]);
  assert.deepEqual(keysOf('false'), []);
  assert.deepEqual(keysOf('resourceScheme =~ /^untitled$|^file$/ && config.editor.tabSize >= 4'), [
    'resourceScheme',
    'config.editor.tabSize',
  ]);
});

test('every when clause in package.json names a context key of VS Code 1.100 or of the extension', () => {
  const ours = ourKeys();
  assert.ok(ours.has('linger.isModelFile'), 'the extension sets linger.isModelFile');
  assert.ok(vscodeKeys.has('isWorkspaceTrusted') && !vscodeKeys.has('workspaceTrusted'), "the fixture is VS Code's list");
  const clauses = whenClauses();
  assert.ok(clauses.length > 20, `${clauses.length} when clauses found`);
  const unknown = clauses.flatMap(({ where, when }) =>
    keysOf(when)
      .filter((k) => !vscodeKeys.has(k) && !ours.has(k) && !k.startsWith('config.'))
      .map((k) => `${where}: '${k}' in '${when}'`),
  );
  assert.deepEqual(unknown, [], 'context keys neither VS Code nor the extension defines');
  // the trust case of issue 20: the Model view's welcome and the editor-title Trace follow VS Code's key
  assert.ok(clauses.some((c) => c.where.startsWith('contributes.viewsWelcome') && c.when === 'isWorkspaceTrusted'));
  assert.ok(clauses.some((c) => c.where.startsWith('contributes.menus.editor/title') && /\bisWorkspaceTrusted\b/.test(c.when)));
});

test('the package names its declarations, and New Model File is in the palette and the Model view title', () => {
  assert.equal(pkg.types, './dist/types/index.d.ts');
  const commands = (pkg.contributes.commands as { command: string }[]).map((c) => c.command);
  assert.ok(commands.includes('linger.newModelFile'));
  const palette = (pkg.contributes.menus.commandPalette as { command: string; when?: string }[]).find(
    (m) => m.command === 'linger.newModelFile',
  );
  assert.ok(!palette || palette.when !== 'false', 'in the command palette');
  assert.ok(
    (pkg.contributes.menus['view/title'] as { command: string; when: string }[]).some(
      (m) => m.command === 'linger.newModelFile' && m.when === 'view == linger.model',
    ),
  );
});

test('a model file as New Model File writes it type-checks against the declarations the build ships', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'linger-model-file-'));
  try {
    // the same declarations `npm run build` writes to dist/types (scripts/build.mjs), emitted here
    const build = (await import(pathToFileURL(path.join(root, 'scripts', 'build.mjs')).href)) as {
      emitDeclarations(outDir: string): Promise<string[]>;
    };
    const types = path.join(dir, 'ext', 'dist', 'types');
    assert.deepEqual(await build.emitDeclarations(types), []);
    const declarations = path.join(types, 'index.d.ts');
    assert.ok(fs.existsSync(declarations));

    const ws = path.join(dir, 'ws');
    fs.mkdirSync(ws);
    fs.writeFileSync(path.join(ws, 'model.ts'), modelFileText());
    fs.writeFileSync(path.join(ws, 'tsconfig.json'), tsconfigText(declarations));
    assert.deepEqual(JSON.parse(fs.readFileSync(path.join(ws, 'tsconfig.json'), 'utf8')).compilerOptions, compilerOptionsFor(declarations));
    // as the editor's TypeScript reads it: the workspace's tsconfig.json
    const config = ts.getParsedCommandLineOfConfigFile(
      path.join(ws, 'tsconfig.json'),
      {},
      { ...ts.sys, onUnRecoverableConfigFileDiagnostic: (d) => assert.fail(String(d.messageText)) },
    );
    assert.ok(config);
    assert.deepEqual(config.errors, []);
    assert.deepEqual(
      config.fileNames.map((f) => path.basename(f)),
      ['model.ts'],
    );
    const program = ts.createProgram(config.fileNames, config.options);
    const diagnostics = ts
      .getPreEmitDiagnostics(program)
      .map((d) => `${d.file ? path.basename(d.file.fileName) : ''}: TS${d.code} ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`);
    assert.deepEqual(diagnostics, []);

    // `linger-studio` resolves to the declarations, and nn has the layers completions offer
    const model = program.getSourceFile(path.join(ws, 'model.ts'));
    assert.ok(model);
    const resolved = ts.resolveModuleName('linger-studio', model.fileName, config.options, ts.sys).resolvedModule;
    assert.equal(resolved?.resolvedFileName, declarations);
    const checker = program.getTypeChecker();
    const nnSymbol = checker.getSymbolsInScope(model, ts.SymbolFlags.Alias).find((s) => s.name === 'nn');
    assert.ok(nnSymbol);
    const members = checker.getExportsOfModule(checker.getAliasedSymbol(nnSymbol)).map((s) => s.name);
    for (const name of ['Module', 'Conv2d', 'BatchNorm2d', 'Linear', 'GRU']) assert.ok(members.includes(name), `nn.${name}`);

    // and an error in it is one (the check is not vacuous)
    fs.writeFileSync(path.join(ws, 'model.ts'), modelFileText().replace('new nn.Linear(16 * 7 * 7, 10)', 'new nn.Linear("16", 10)'));
    const bad = ts.getPreEmitDiagnostics(ts.createProgram(config.fileNames, config.options));
    assert.equal(bad.length, 1);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
