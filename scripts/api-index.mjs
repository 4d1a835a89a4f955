// Writes dist/notebook-api.json: the names notebook cells see preloaded (the engine's public API,
// src/engine/index.ts, plus the kernel's display/chart), each with its kind, signature and doc
// comment, and the members of the namespaces (nn, F, linger, optim, data). The extension's
// completion and hover providers for notebook cells read it (src/extension/notebook/completions.ts).
// Run by build.mjs; uses the TypeScript compiler API on the sources.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const entry = path.join(root, 'src/engine/index.ts');
const extra = path.join(root, 'src/engine/notebook/display.ts');
const program = ts.createProgram([entry, extra], {
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.CommonJS,
  strict: true,
  skipLibCheck: true,
  types: ['node'],
});
const checker = program.getTypeChecker();

const KINDS = [
  [ts.SymbolFlags.Class, 'class'],
  [ts.SymbolFlags.Function, 'function'],
  [ts.SymbolFlags.Method, 'method'],
  [ts.SymbolFlags.Module, 'namespace'],
  [ts.SymbolFlags.Interface, 'interface'],
  [ts.SymbolFlags.TypeAlias, 'type'],
  [ts.SymbolFlags.Enum, 'enum'],
  [ts.SymbolFlags.Variable, 'variable'],
  [ts.SymbolFlags.Property, 'property'],
];

function describe(sym, name = sym.getName()) {
  const s = sym.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(sym) : sym;
  const kind = KINDS.find(([f]) => s.flags & f)?.[1] ?? 'variable';
  const decl = s.valueDeclaration ?? s.declarations?.[0];
  let signature = '';
  if (decl && kind !== 'namespace') {
    const type = checker.getTypeOfSymbolAtLocation(s, decl);
    if (kind === 'class') {
      const ctor = type.getConstructSignatures()[0];
      signature = ctor
        ? `class ${name}(${ctor.parameters.map((p) => `${p.getName()}: ${checker.typeToString(checker.getTypeOfSymbolAtLocation(p, decl))}`).join(', ')})`
        : `class ${name}`;
    } else if (kind === 'function' || kind === 'method') {
      signature = type
        .getCallSignatures()
        .map((sig) => `${name}${checker.signatureToString(sig)}`)
        .join('\n');
    } else if (kind === 'interface' || kind === 'type') {
      signature = `${kind} ${name}`;
    } else {
      signature = `${name}: ${checker.typeToString(type)}`;
    }
  } else if (kind === 'namespace') {
    signature = `namespace ${name}`;
  }
  const doc = ts.displayPartsToString(s.getDocumentationComment(checker)).trim();
  return { name, kind, signature: signature.slice(0, 600), ...(doc ? { doc } : {}) };
}

function exportsOf(sym) {
  const s = sym.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(sym) : sym;
  return checker.getExportsOfModule(s).filter((e) => !e.getName().startsWith('_'));
}

const mod = checker.getSymbolAtLocation(program.getSourceFile(entry));
const globals = [];
const members = {};
for (const e of exportsOf(mod)) {
  const d = describe(e);
  globals.push(d);
  if (d.kind === 'namespace')
    members[d.name] = exportsOf(e)
      .map((m) => describe(m))
      .sort((a, b) => a.name.localeCompare(b.name));
}
// the kernel adds these (src/engine/notebook/runtime.ts)
const displayModule = checker.getSymbolAtLocation(program.getSourceFile(extra));
const chart = exportsOf(displayModule).find((e) => e.getName() === 'chart');
globals.push(
  {
    name: 'display',
    kind: 'function',
    signature: 'display(value: unknown): DisplayHandle',
    doc: "Shows a value below the cell: a module as its tree, a tensor as a summary, quantReport rows as a table, { name: number[] } series as a line chart, chart(spec) as SVG. The handle's update(value) replaces the output in place.",
  },
  describe(chart),
);
const out = { generated: 'scripts/api-index.mjs', globals: globals.sort((a, b) => a.name.localeCompare(b.name)), members };
fs.mkdirSync(path.join(root, 'dist'), { recursive: true });
fs.writeFileSync(path.join(root, 'dist', 'notebook-api.json'), JSON.stringify(out));
console.log(`notebook API index: ${globals.length} globals, ${Object.values(members).reduce((a, m) => a + m.length, 0)} namespace members`);
