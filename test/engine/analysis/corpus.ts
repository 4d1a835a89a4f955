// The load-order fixture corpus: every file under test/fixtures/loadorder/ with its inline
// `# expect: LINGER001` / `// expect: LINGER001` annotations (on the line a diagnostic starts).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LoadOrderAnalyzer, languageForPath, notebookCells } from '../../../src/engine/analysis';

export const FIXTURES = path.join(__dirname, '..', '..', 'fixtures', 'loadorder');
const EXPECT = /expect:\s*(LINGER\d{3}(?:\s*,\s*LINGER\d{3})*)/;

export interface CorpusFile {
  name: string;
  file: string;
  text: string;
  notebook: boolean;
}

export function corpusFiles(dir = FIXTURES): CorpusFile[] {
  return fs
    .readdirSync(dir)
    .filter((n) => n.endsWith('.ipynb') || languageForPath(n) !== undefined)
    .sort()
    .map((name) => {
      const file = path.join(dir, name);
      return { name, file, text: fs.readFileSync(file, 'utf8'), notebook: name.endsWith('.ipynb') };
    });
}

/** `line:code` (1-based line) for each annotation of a text, prefixed by `cellN:` in a notebook. */
function annotations(text: string, prefix = ''): string[] {
  const out: string[] = [];
  text.split('\n').forEach((line, i) => {
    const m = EXPECT.exec(line);
    if (m) for (const code of m[1].split(/\s*,\s*/)) out.push(`${prefix}${i + 1}:${code}`);
  });
  return out;
}

export function expected(f: CorpusFile): string[] {
  if (!f.notebook) return annotations(f.text).sort();
  return notebookCells(JSON.parse(f.text))
    .flatMap((c, i) => annotations(c.text, `cell${i}:`))
    .sort();
}

export function actual(analyzer: LoadOrderAnalyzer, f: CorpusFile, opts: { prefilter?: boolean } = {}): string[] {
  if (f.notebook) {
    return analyzer
      .analyzeNotebook(f.text, opts)
      .map((d) => `cell${d.cell}:${d.range.start.line + 1}:${d.code}`)
      .sort();
  }
  return analyzer
    .analyze(f.text, languageForPath(f.name)!, opts)
    .map((d) => `${d.range.start.line + 1}:${d.code}`)
    .sort();
}
