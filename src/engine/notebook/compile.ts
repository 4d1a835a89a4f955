// A notebook cell's TypeScript → JavaScript the kernel runs like a REPL line:
//  - esbuild strips the types (its errors carry the cell's own line and column);
//  - the cell's top-level declarations (const/let/var/class/function/import) become globals of the
//    kernel's thread, so later cells see them and re-running a cell replaces them (no "already
//    declared");
//  - the cell body runs in an async function, so top-level `await` works;
//  - a last expression statement is returned: the cell's result (Jupyter's execute_result).
// The rewrite only replaces declaration keywords and wraps; every other character is copied, and
// `mapPosition` takes a position in the code run back to the cell's TypeScript.
import { SourceMap } from 'node:module';
import * as acorn from 'acorn';
import { transformSync, TransformFailure } from 'esbuild';

/** A cell that does not compile: the message and where, in the cell's own lines (1-based). */
export class CellSyntaxError extends Error {
  constructor(
    message: string,
    readonly line: number,
    readonly column: number,
    readonly lineText: string,
  ) {
    super(message);
    this.name = 'SyntaxError';
  }
}

export interface CompiledCell {
  /** a script for vm.runInThisContext: evaluates to the promise of the cell's result */
  code: string;
  /** the names the cell declares at top level */
  declared: string[];
  /** a 1-based line and column of `code` → the cell's own (1-based), when it maps */
  mapPosition(line: number, column: number): { line: number; column: number } | undefined;
}

/** A chunk of the output: copied from the transpiled code at `from`, or inserted (from = -1). */
interface Chunk {
  text: string;
  from: number;
}

type Node = acorn.Node & Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const IMPORT = '__lingerImport';

export function compileCell(source: string, filename: string): CompiledCell {
  let js: string, map: string;
  try {
    const r = transformSync(source, {
      loader: 'ts',
      format: 'esm',
      target: 'es2022',
      sourcemap: 'external',
      sourcefile: filename,
      // keep every import that is not `import type` (a later cell may use what this one imports)
      tsconfigRaw: { compilerOptions: { verbatimModuleSyntax: true, useDefineForClassFields: true } },
      logLevel: 'silent',
    });
    js = r.code;
    map = r.map;
  } catch (e) {
    const f = (e as TransformFailure).errors?.[0];
    if (!f) throw e;
    throw new CellSyntaxError(f.text, f.location?.line ?? 1, (f.location?.column ?? 0) + 1, f.location?.lineText ?? '');
  }
  let program: Node;
  try {
    program = acorn.parse(js, { ecmaVersion: 'latest', sourceType: 'module', allowAwaitOutsideFunction: true }) as Node;
  } catch (e) {
    // esbuild accepted it, so this is rare (e.g. syntax esbuild passes through): report it in cell terms
    const pos = (e as { pos?: number }).pos ?? 0;
    const mapped = originalOf(map, js, pos);
    throw new CellSyntaxError(
      (e as Error).message.replace(/ \(\d+:\d+\)$/, ''),
      mapped?.line ?? 1,
      mapped?.column ?? 1,
      source.split('\n')[(mapped?.line ?? 1) - 1] ?? '',
    );
  }

  const chunks: Chunk[] = [];
  let at = 0;
  const copy = (to: number) => {
    if (to > at) chunks.push({ text: js.slice(at, to), from: at });
    at = Math.max(at, to);
  };
  const insert = (text: string) => chunks.push({ text, from: -1 });
  const skipTo = (to: number) => {
    at = to;
  };
  const declared = new Set<string>();
  const hoisted: string[] = [];

  const body = program.body as Node[];
  body.forEach((stmt, i) => {
    const last = i === body.length - 1;
    switch (stmt.type) {
      case 'VariableDeclaration': {
        copy(stmt.start);
        const decls = stmt.declarations as Node[];
        decls.forEach((d, k) => {
          for (const n of patternNames(d.id)) declared.add(n);
          const isObjectPattern = d.id.type === 'ObjectPattern';
          if (k === 0) skipTo(d.start);
          else {
            copy(decls[k - 1].end);
            skipTo(d.start);
            insert('; ');
          }
          if (d.init) {
            if (isObjectPattern) insert('(');
            copy(d.end);
            if (isObjectPattern) insert(')');
          } else {
            // `let x;` is x = undefined; `var x;` keeps a value x already has, as JavaScript does
            if (stmt.kind !== 'var') {
              copy(d.end);
              insert(' = undefined');
            } else {
              insert('void 0');
              skipTo(d.end);
            }
          }
        });
        copy(stmt.end);
        break;
      }
      case 'FunctionDeclaration':
        // hoisted inside the cell's function as written; published as a global on entry
        declared.add(stmt.id.name);
        hoisted.push(stmt.id.name);
        break;
      case 'ClassDeclaration':
        declared.add(stmt.id.name);
        copy(stmt.start);
        insert(`${stmt.id.name} = `);
        copy(stmt.end);
        insert(';');
        break;
      case 'ImportDeclaration': {
        copy(stmt.start);
        skipTo(stmt.end);
        const spec = JSON.stringify(stmt.source.value);
        const specs = stmt.specifiers as Node[];
        if (specs.length === 0) {
          insert(`await ${IMPORT}(${spec});`);
          break;
        }
        const parts = [`const __m = await ${IMPORT}(${spec});`];
        for (const s of specs) {
          declared.add(s.local.name);
          if (s.type === 'ImportNamespaceSpecifier') parts.push(`${s.local.name} = __m;`);
          else if (s.type === 'ImportDefaultSpecifier') parts.push(`${s.local.name} = __m.default ?? __m;`);
          else parts.push(`${s.local.name} = __m[${JSON.stringify(s.imported.name ?? s.imported.value)}];`);
        }
        insert(`{ ${parts.join(' ')} }`);
        break;
      }
      case 'ExportNamedDeclaration':
      case 'ExportDefaultDeclaration':
      case 'ExportAllDeclaration': {
        const p = firstExport(source, filename) ?? originalOf(map, js, stmt.start);
        throw new CellSyntaxError(
          'a notebook cell cannot export: its declarations are already visible to later cells',
          p?.line ?? 1,
          p?.column ?? 1,
          source.split('\n')[(p?.line ?? 1) - 1] ?? '',
        );
      }
      case 'ExpressionStatement':
        if (last && !stmt.directive) {
          copy(stmt.start);
          insert('return (');
          copy(stmt.expression.end);
          insert(');');
          skipTo(stmt.end);
        }
        break;
      default:
        break;
    }
  });
  copy(js.length);

  // Globals first exist as undefined (strict mode cannot assign an undeclared name); functions are
  // published on entry, as their hoisting makes them callable from the cell's first line.
  const names = [...declared];
  const prelude =
    `'use strict'; (async () => { ${names.map((n) => `if (!Object.prototype.hasOwnProperty.call(globalThis, ${JSON.stringify(n)})) globalThis[${JSON.stringify(n)}] = undefined;`).join(' ')}` +
    `${hoisted.map((n) => ` globalThis[${JSON.stringify(n)}] = ${n};`).join('')} `;
  const all: Chunk[] = [{ text: prelude, from: -1 }, ...chunks, { text: '\n})()', from: -1 }];
  const code = all.map((c) => c.text).join('');
  // where each chunk starts in `code`
  const starts: number[] = [];
  let off = 0;
  for (const c of all) {
    starts.push(off);
    off += c.text.length;
  }
  const lineStarts = [0];
  for (let i = 0; i < code.length; i++) if (code[i] === '\n') lineStarts.push(i + 1);

  return {
    code,
    declared: names,
    mapPosition(line, column) {
      const pos = (lineStarts[line - 1] ?? 0) + column - 1;
      // the chunk holding pos; an inserted one maps to the next copied character
      let k = all.length - 1;
      while (k > 0 && starts[k] > pos) k--;
      let jsPos: number | undefined;
      for (let j = k; j < all.length; j++) {
        if (all[j].from < 0) continue;
        jsPos = j === k ? all[j].from + (pos - starts[j]) : all[j].from;
        break;
      }
      return jsPos === undefined ? undefined : originalOf(map, js, jsPos);
    },
  };
}

/**
 * Where a cell's first export is, in its own lines. The ESM output above gathers every export into
 * one `export { … }` at the end (which maps nowhere), so this transpiles again keeping the module
 * syntax where it was written.
 */
function firstExport(source: string, filename: string): { line: number; column: number } | undefined {
  try {
    const r = transformSync(source, {
      loader: 'ts',
      target: 'es2022',
      sourcemap: 'external',
      sourcefile: filename,
      logLevel: 'silent',
      tsconfigRaw: { compilerOptions: { verbatimModuleSyntax: true, useDefineForClassFields: true } },
    });
    const program = acorn.parse(r.code, { ecmaVersion: 'latest', sourceType: 'module', allowAwaitOutsideFunction: true }) as Node;
    const stmt = (program.body as Node[]).find((n) => n.type.startsWith('Export'));
    const p = stmt ? originalOf(r.map, r.code, stmt.start) : undefined;
    if (!p) return undefined;
    // `export const …` maps to its declaration: point at the `export` before it
    const text = source.split('\n')[p.line - 1] ?? '';
    const k = text.lastIndexOf('export', p.column - 1);
    return k >= 0 && /^export\b[\s\w]*$/.test(text.slice(k, p.column - 1)) ? { line: p.line, column: k + 1 } : p;
  } catch {
    return undefined;
  }
}

/** The names a binding pattern declares. */
function patternNames(p: Node): string[] {
  switch (p.type) {
    case 'Identifier':
      return [p.name];
    case 'ObjectPattern':
      return (p.properties as Node[]).flatMap((q) => patternNames(q.type === 'RestElement' ? q.argument : q.value));
    case 'ArrayPattern':
      return (p.elements as (Node | null)[]).flatMap((q) => (q ? patternNames(q) : []));
    case 'RestElement':
      return patternNames(p.argument);
    case 'AssignmentPattern':
      return patternNames(p.left);
    default:
      return [];
  }
}

/** An offset of the transpiled code → the cell's 1-based line and column (through esbuild's map). */
function originalOf(map: string, js: string, pos: number): { line: number; column: number } | undefined {
  let line = 0,
    lineStart = 0;
  for (let i = 0; i < pos && i < js.length; i++)
    if (js[i] === '\n') {
      line++;
      lineStart = i + 1;
    }
  const e = new SourceMap(JSON.parse(map)).findEntry(line, pos - lineStart) as { originalLine?: number; originalColumn?: number };
  if (e?.originalLine === undefined) return undefined;
  return {
    line: e.originalLine + 1,
    column: (e.originalColumn ?? 0) + 1 + (pos - lineStart - ((e as { generatedColumn?: number }).generatedColumn ?? pos - lineStart)),
  };
}
