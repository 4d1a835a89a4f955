// The architecture rules of issue 19, checked on the source text (no engine code is loaded):
// no import cycle among src/engine files, no 'vscode' below src/engine, no file in src/ over
// 600 lines, and comments cite only documents that are in this repository. Each failure lists
// exactly what to change.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import ts from 'typescript';

const ROOT = path.resolve(__dirname, '../..');
const SRC = path.join(ROOT, 'src');
const ENGINE = path.join(SRC, 'engine');
const MAX_LINES = 600;

/** Fails with the heading and one offender per line (no actual/expected dump: the list is the message). */
function none(offenders: string[], heading: string): void {
  if (offenders.length > 0) assert.fail(`${heading}\n${offenders.map((o) => `  ${o}`).join('\n')}`);
}

const rel = (p: string): string => path.relative(ROOT, p).split(path.sep).join('/');

function walk(dir: string, keep: (p: string) => boolean): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => {
      const p = path.join(dir, e.name);
      return e.isDirectory() ? walk(p, keep) : keep(p) ? [p] : [];
    })
    .sort();
}

const isTs = (p: string): boolean => /\.(ts|tsx|mts|cts)$/.test(p) && !p.endsWith('.d.ts');

const parsed = new Map<string, ts.SourceFile>();
function sourceOf(file: string): ts.SourceFile {
  let sf = parsed.get(file);
  if (!sf) {
    sf = ts.createSourceFile(file, fs.readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
    parsed.set(file, sf);
  }
  return sf;
}

// ---- imports ---------------------------------------------------------------------------------

type ImportKind = 'import' | 'export-from' | 'dynamic-import' | 'require' | 'import-equals' | 'type';
interface ImportRef {
  specifier: string;
  kind: ImportKind;
  line: number;
}

/** `import { type A, type B } from …` is erased like `import type`: no runtime edge. */
function onlyTypes(clause: ts.ImportClause): boolean {
  if (clause.isTypeOnly) return true;
  if (clause.name) return false;
  const b = clause.namedBindings;
  return b !== undefined && ts.isNamedImports(b) && b.elements.length > 0 && b.elements.every((e) => e.isTypeOnly);
}

/**
 * Every module a file refers to: static imports, `export … from`, `import x = require()`, dynamic
 * `import()` and `require('…')` calls anywhere in the file (a lazy require inside a function is
 * still a dependency; it was used to hide cycles), and type-only references marked `type`.
 */
function importsOf(file: string): ImportRef[] {
  const sf = sourceOf(file);
  const out: ImportRef[] = [];
  const line = (n: ts.Node): number => sf.getLineAndCharacterOfPosition(n.getStart(sf)).line + 1;
  const visit = (n: ts.Node): void => {
    if (ts.isImportDeclaration(n) && ts.isStringLiteral(n.moduleSpecifier)) {
      const type = n.importClause !== undefined && onlyTypes(n.importClause);
      out.push({ specifier: n.moduleSpecifier.text, kind: type ? 'type' : 'import', line: line(n) });
    } else if (ts.isExportDeclaration(n) && n.moduleSpecifier && ts.isStringLiteral(n.moduleSpecifier)) {
      const c = n.exportClause;
      const type =
        n.isTypeOnly || (c !== undefined && ts.isNamedExports(c) && c.elements.length > 0 && c.elements.every((e) => e.isTypeOnly));
      out.push({ specifier: n.moduleSpecifier.text, kind: type ? 'type' : 'export-from', line: line(n) });
    } else if (ts.isImportEqualsDeclaration(n) && ts.isExternalModuleReference(n.moduleReference)) {
      const e = n.moduleReference.expression;
      if (ts.isStringLiteral(e)) out.push({ specifier: e.text, kind: n.isTypeOnly ? 'type' : 'import-equals', line: line(n) });
    } else if (ts.isCallExpression(n) && n.arguments.length >= 1 && ts.isStringLiteralLike(n.arguments[0])) {
      const spec = n.arguments[0].text;
      if (n.expression.kind === ts.SyntaxKind.ImportKeyword) out.push({ specifier: spec, kind: 'dynamic-import', line: line(n) });
      else if (ts.isIdentifier(n.expression) && n.expression.text === 'require')
        out.push({ specifier: spec, kind: 'require', line: line(n) });
    } else if (ts.isImportTypeNode(n) && ts.isLiteralTypeNode(n.argument) && ts.isStringLiteral(n.argument.literal)) {
      out.push({ specifier: n.argument.literal.text, kind: 'type', line: line(n) });
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return out;
}

/** A relative specifier as the file it loads (x.ts, x/index.ts, …); undefined for packages. */
function resolveRelative(from: string, specifier: string): string | undefined {
  if (!specifier.startsWith('.')) return undefined;
  const base = path.resolve(path.dirname(from), specifier);
  const candidates = [
    base,
    ...['.ts', '.tsx', '.mts', '.cts'].map((x) => base + x),
    ...['index.ts', 'index.tsx'].map((x) => path.join(base, x)),
  ];
  if (/\.[cm]?js$/.test(base)) candidates.push(base.replace(/\.([cm]?)js$/, '.$1ts'));
  return candidates.find((c) => fs.existsSync(c) && fs.statSync(c).isFile());
}

interface Edge {
  from: string;
  to: string;
  kind: ImportKind;
  line: number;
  specifier: string;
}

/** Tarjan's strongly connected components; returns the components with a cycle in them. */
function cycles(nodes: string[], out: Map<string, Edge[]>): string[][] {
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const strong = (v: string): void => {
    idx.set(v, index);
    low.set(v, index);
    index++;
    stack.push(v);
    onStack.add(v);
    for (const e of out.get(v) ?? []) {
      if (!idx.has(e.to)) {
        strong(e.to);
        low.set(v, Math.min(low.get(v)!, low.get(e.to)!));
      } else if (onStack.has(e.to)) low.set(v, Math.min(low.get(v)!, idx.get(e.to)!));
    }
    if (low.get(v) === idx.get(v)) {
      const comp: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        comp.push(w);
      } while (w !== v);
      const selfLoop = (out.get(v) ?? []).some((e) => e.to === v);
      if (comp.length > 1 || selfLoop) found.push(comp.sort());
    }
  };
  for (const v of nodes) if (!idx.has(v)) strong(v);
  return found.sort((a, b) => a[0].localeCompare(b[0]));
}

/** One shortest cycle through `start` inside a component, as a readable chain of files. */
function shortestCycle(start: string, comp: Set<string>, out: Map<string, Edge[]>): string[] {
  const prev = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const v = queue.shift()!;
    for (const e of out.get(v) ?? []) {
      if (!comp.has(e.to)) continue;
      if (e.to === start) {
        const chain = [v];
        while (chain[0] !== start) chain.unshift(prev.get(chain[0])!);
        return [...chain, start];
      }
      if (!prev.has(e.to) && e.to !== start) {
        prev.set(e.to, v);
        queue.push(e.to);
      }
    }
  }
  return [start];
}

// ---- comments --------------------------------------------------------------------------------

interface Comment {
  text: string;
  line: number;
}

/** Every comment of a file (leading and trailing trivia of every token, each once). */
function commentsOf(file: string): Comment[] {
  const sf = sourceOf(file);
  const text = sf.getFullText();
  const seen = new Set<number>();
  const out: Comment[] = [];
  const take = (ranges: ts.CommentRange[] | undefined): void => {
    for (const r of ranges ?? []) {
      if (seen.has(r.pos)) continue;
      seen.add(r.pos);
      out.push({ text: text.slice(r.pos, r.end), line: sf.getLineAndCharacterOfPosition(r.pos).line + 1 });
    }
  };
  const visit = (n: ts.Node): void => {
    take(ts.getLeadingCommentRanges(text, n.getFullStart()));
    take(ts.getTrailingCommentRanges(text, n.getEnd()));
    for (const c of n.getChildren(sf)) visit(c);
  };
  visit(sf);
  return out.sort((a, b) => a.line - b.line);
}

/**
 * Citations of documents outside this repository: the design repository's SPEC.md,
 * LINGER-OPS.md, NOTES-MACHINE.md (anything under ../shared), and bare `§N` section numbers,
 * which only those documents have (docs/ uses headings, cited as docs/<name>.md#<anchor>).
 */
const OUTSIDE =
  /SPEC(\.md)? ?§[\d.–§, -]*\d|SPEC\.md|LINGER-OPS(\.md)?( ?§[\d.–§, -]*\d)?|NOTES-MACHINE(\.md)?|\.\.\/shared\/?[\w./-]*|§\s?\d[\d.–§, -]*/g;
const DOC = /\bdocs\/([\w.-]+\.md)(#[\w-]+)?/g;

// ---- the rules -------------------------------------------------------------------------------

const srcFiles = walk(SRC, () => true);
const srcTs = srcFiles.filter(isTs);
const engineTs = walk(ENGINE, isTs);

describe('architecture (issue 19)', () => {
  test('no import cycle among src/engine files (type-only imports excepted; lazy require() and import() count)', () => {
    const engine = new Set(engineTs);
    const out = new Map<string, Edge[]>();
    for (const f of engineTs) {
      const edges: Edge[] = [];
      for (const r of importsOf(f)) {
        if (r.kind === 'type') continue;
        const to = resolveRelative(f, r.specifier);
        if (to && engine.has(to)) edges.push({ from: f, to, kind: r.kind, line: r.line, specifier: r.specifier });
      }
      out.set(f, edges);
    }
    const found = cycles(engineTs, out);
    const report = found.map((comp, i) => {
      const inComp = new Set(comp);
      const chain = shortestCycle(comp[0], inComp, out).map(rel);
      const edges = comp.flatMap((f) => (out.get(f) ?? []).filter((e) => inComp.has(e.to)));
      return [
        `cycle ${i + 1}: ${comp.length} files: ${comp.map(rel).join(', ')}`,
        `    e.g. ${chain.join(' -> ')}`,
        '    the imports inside it (remove or invert one per loop; an import used only for types can be `import type`):',
        ...edges.map((e) => `      ${rel(e.from)}:${e.line} ${e.kind} '${e.specifier}' -> ${rel(e.to)}`),
      ].join('\n');
    });
    none(report, `${found.length} import cycle(s) in src/engine:`);
  });

  test("no file under src/engine imports 'vscode' (the engine runs without VS Code)", () => {
    const bad = engineTs.flatMap((f) =>
      importsOf(f)
        .filter((r) => r.specifier === 'vscode' || r.specifier.startsWith('vscode/'))
        .map((r) => `${rel(f)}:${r.line} ${r.kind} '${r.specifier}'`),
    );
    none(bad, 'files under src/engine that import vscode (move the code to src/extension):');
  });

  test(`no file in src/ over ${MAX_LINES} lines`, () => {
    const over = srcFiles
      .map((f) => {
        const text = fs.readFileSync(f, 'utf8');
        return { f, n: text === '' ? 0 : text.replace(/\n$/, '').split('\n').length };
      })
      .filter((x) => x.n > MAX_LINES)
      .map((x) => `${rel(x.f)}: ${x.n} lines (${x.n - MAX_LINES} over)`);
    none(over, `files in src/ over ${MAX_LINES} lines (split them by responsibility):`);
  });

  test('no comment in src/ cites a document outside the repository (SPEC §, LINGER-OPS, NOTES-MACHINE, ../shared)', () => {
    const bad = srcTs.flatMap((f) =>
      commentsOf(f).flatMap((c) =>
        c.text
          .split('\n')
          .flatMap((lineText, k) => [...lineText.matchAll(OUTSIDE)].map((m) => `${rel(f)}:${c.line + k}: '${m[0].trim()}'`)),
      ),
    );
    none(
      bad,
      'comments citing documents outside the repository (SPEC §N is restated in docs/contract.md, LINGER-OPS §N in ' +
        'docs/linger-ops.md, the machine notes in docs/benchmarks.md: cite docs/<name>.md#<heading> instead):',
    );
  });

  test('every docs/<name>.md (and #anchor) a comment in src/ cites exists', () => {
    const anchors = new Map<string, Set<string> | null>();
    const anchorsOf = (name: string): Set<string> | null => {
      if (!anchors.has(name)) {
        const p = path.join(ROOT, 'docs', name);
        anchors.set(name, fs.existsSync(p) ? headingAnchors(fs.readFileSync(p, 'utf8')) : null);
      }
      return anchors.get(name)!;
    };
    const bad = srcTs.flatMap((f) =>
      commentsOf(f).flatMap((c) =>
        c.text.split('\n').flatMap((lineText, k) =>
          [...lineText.matchAll(DOC)].flatMap((m) => {
            const have = anchorsOf(m[1]);
            const where = `${rel(f)}:${c.line + k}`;
            if (have === null) return [`${where}: docs/${m[1]} does not exist`];
            if (m[2] && !have.has(m[2].slice(1))) return [`${where}: docs/${m[1]} has no heading for ${m[2]}`];
            return [];
          }),
        ),
      ),
    );
    none(bad, 'comments citing docs that are not there (write the doc or fix the citation):');
  });
});

/** GitHub's anchors for a Markdown file's headings: lower case, punctuation dropped, spaces to '-'. */
function headingAnchors(md: string): Set<string> {
  const out = new Set<string>();
  const count = new Map<string, number>();
  let fenced = false;
  for (const l of md.split('\n')) {
    if (/^\s*```/.test(l)) fenced = !fenced;
    const m = fenced ? null : /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(l);
    if (!m) continue;
    const slug = m[1]
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const n = count.get(slug) ?? 0;
    count.set(slug, n + 1);
    out.add(n === 0 ? slug : `${slug}-${n}`);
  }
  return out;
}
