// Loads tree-sitter (WASM) and the grammars the analyzer needs, once per process.
// @vscode/tree-sitter-wasm ships the runtime and prebuilt grammars, so nothing is compiled or
// downloaded at install time.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Language, Parser } from '@vscode/tree-sitter-wasm';
import type { SourceLanguage } from './diagnostic';

const GRAMMAR_FILE: Record<SourceLanguage, string> = {
  python: 'tree-sitter-python.wasm',
  typescript: 'tree-sitter-typescript.wasm',
  tsx: 'tree-sitter-tsx.wasm',
  javascript: 'tree-sitter-javascript.wasm',
};

/** The WASM files a bundle that ships without node_modules (the VSIX) must copy beside it. */
export const WASM_FILES: readonly string[] = ['tree-sitter.wasm', ...Object.values(GRAMMAR_FILE)];

/**
 * Where the WASM files are: `LINGER_TREE_SITTER_DIR` when set, else `tree-sitter-wasm/` beside
 * this file (the bundled dist/ layout), else the installed @vscode/tree-sitter-wasm package.
 */
export function defaultWasmDir(): string {
  const candidates: string[] = [];
  if (process.env.LINGER_TREE_SITTER_DIR) candidates.push(process.env.LINGER_TREE_SITTER_DIR);
  candidates.push(path.join(__dirname, 'tree-sitter-wasm'));
  try {
    candidates.push(path.dirname(require.resolve('@vscode/tree-sitter-wasm')));
  } catch {
    // not installed beside us: only the copied files can serve
  }
  const found = candidates.find((d) => fs.existsSync(path.join(d, 'tree-sitter.wasm')));
  if (!found) {
    throw new Error(
      `linger analysis: tree-sitter.wasm not found (looked in ${candidates.join(', ')}); ` +
        'install @vscode/tree-sitter-wasm or set LINGER_TREE_SITTER_DIR to a folder holding ' +
        WASM_FILES.join(', '),
    );
  }
  return found;
}

export interface Grammars {
  parsers: Record<SourceLanguage, Parser>;
}

let runtime: Promise<void> | undefined;
const grammarCache = new Map<string, Promise<Grammars>>();

/** Initializes the runtime (once) and loads the four grammars from `wasmDir` (cached per folder). */
export function loadGrammars(wasmDir: string = defaultWasmDir()): Promise<Grammars> {
  const dir = path.resolve(wasmDir);
  let g = grammarCache.get(dir);
  if (!g) {
    g = (async () => {
      if (!runtime) {
        const wasm = path.join(dir, 'tree-sitter.wasm');
        if (!fs.existsSync(wasm)) throw new Error(`linger analysis: ${wasm} not found`);
        runtime = Parser.init({ locateFile: (file: string) => path.join(dir, file) });
        runtime.catch(() => {
          runtime = undefined;
        });
      }
      await runtime;
      const parsers = {} as Record<SourceLanguage, Parser>;
      for (const lang of Object.keys(GRAMMAR_FILE) as SourceLanguage[]) {
        const file = path.join(dir, GRAMMAR_FILE[lang]);
        if (!fs.existsSync(file)) throw new Error(`linger analysis: grammar ${file} not found`);
        const language = await Language.load(fs.readFileSync(file));
        const parser = new Parser();
        parser.setLanguage(language);
        parsers[lang] = parser;
      }
      return { parsers };
    })();
    g.catch(() => grammarCache.delete(dir));
    grammarCache.set(dir, g);
  }
  return g;
}

const EXTENSION_LANGUAGE: Record<string, SourceLanguage> = {
  '.py': 'python',
  '.pyw': 'python',
  '.pyi': 'python',
  '.ts': 'typescript',
  '.mts': 'typescript',
  '.cts': 'typescript',
  '.tsx': 'tsx',
  '.js': 'javascript',
  '.mjs': 'javascript',
  '.cjs': 'javascript',
  '.jsx': 'javascript',
};

/** The language of a source file by its extension (`.ipynb` is not a source language: see analyzeNotebook). */
export function languageForPath(file: string): SourceLanguage | undefined {
  return EXTENSION_LANGUAGE[path.extname(file).toLowerCase()];
}

/** The language of a VS Code language id (`python`, `typescript`, `typescriptreact`, `javascript`, `javascriptreact`). */
export function languageForId(languageId: string): SourceLanguage | undefined {
  switch (languageId.toLowerCase()) {
    case 'python':
      return 'python';
    case 'typescript':
    case 'ts':
      return 'typescript';
    case 'typescriptreact':
    case 'tsx':
      return 'tsx';
    case 'javascript':
    case 'js':
    case 'javascriptreact':
    case 'jsx':
      return 'javascript';
    default:
      return undefined;
  }
}
