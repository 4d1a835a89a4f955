// Completions and hovers for what the Linger kernel preloads in notebook cells (the engine's API,
// display, chart): VS Code's TypeScript service sees each cell as a loose file and knows none of
// them. The names, signatures and doc comments come from dist/notebook-api.json, which the build
// extracts from the engine's sources with the TypeScript compiler (scripts/api-index.mjs).
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { isLingerNotebook } from './controller';

interface ApiEntry {
  name: string;
  kind: string;
  signature: string;
  doc?: string;
}
interface ApiIndex {
  globals: ApiEntry[];
  members: Record<string, ApiEntry[]>;
}

const KIND: Record<string, vscode.CompletionItemKind> = {
  class: vscode.CompletionItemKind.Class,
  function: vscode.CompletionItemKind.Function,
  method: vscode.CompletionItemKind.Method,
  namespace: vscode.CompletionItemKind.Module,
  interface: vscode.CompletionItemKind.Interface,
  type: vscode.CompletionItemKind.TypeParameter,
  enum: vscode.CompletionItemKind.Enum,
  variable: vscode.CompletionItemKind.Variable,
  property: vscode.CompletionItemKind.Property,
};

function markdown(e: ApiEntry, qualifier?: string): vscode.MarkdownString {
  const md = new vscode.MarkdownString();
  if (e.signature) md.appendCodeblock(qualifier && e.kind !== 'class' ? `${qualifier}.${e.signature}` : e.signature, 'typescript');
  if (e.doc) md.appendMarkdown(e.doc.replace(/\n(?!\n)/g, ' '));
  md.appendMarkdown(`\n\n*Linger kernel${qualifier ? ` · ${qualifier}` : ''}*`);
  return md;
}

export class NotebookApiProvider implements vscode.CompletionItemProvider, vscode.HoverProvider {
  private index: ApiIndex | undefined;
  constructor(
    private readonly extensionPath: string,
    private readonly hasKernel: (nb: vscode.NotebookDocument) => boolean,
  ) {}

  private api(): ApiIndex {
    this.index ??= JSON.parse(fs.readFileSync(path.join(this.extensionPath, 'dist', 'notebook-api.json'), 'utf8')) as ApiIndex;
    return this.index;
  }

  /** Only cells of notebooks that run (or are made for) the Linger kernel. */
  private applies(doc: vscode.TextDocument): boolean {
    const nb = vscode.workspace.notebookDocuments.find((n) => n.uri.path === doc.uri.path && n.getCells().some((c) => c.document === doc));
    return !!nb && (isLingerNotebook(nb) || this.hasKernel(nb));
  }

  provideCompletionItems(doc: vscode.TextDocument, pos: vscode.Position): vscode.CompletionItem[] | undefined {
    if (!this.applies(doc)) return undefined;
    const before = doc.lineAt(pos.line).text.slice(0, pos.character);
    const member = /([A-Za-z_$][\w$]*)\.([\w$]*)$/.exec(before);
    const api = this.api();
    let entries: ApiEntry[];
    let qualifier: string | undefined;
    let typed: string;
    if (member) {
      if (!api.members[member[1]]) return undefined;
      qualifier = member[1];
      entries = api.members[qualifier];
      typed = member[2];
    } else {
      if (/[\w$]\s*\.\s*[\w$]*$/.test(before) || /\/\/.*$/.test(before)) return undefined;
      typed = /[\w$]*$/.exec(before)![0];
      entries = api.globals;
    }
    const range = new vscode.Range(pos.translate(0, -typed.length), pos);
    return entries.map((e) => {
      const item = new vscode.CompletionItem(
        { label: e.name, description: qualifier ? `linger-studio · ${qualifier}` : 'linger-studio' },
        KIND[e.kind] ?? vscode.CompletionItemKind.Variable,
      );
      item.detail = e.signature.split('\n')[0];
      item.documentation = markdown(e, qualifier);
      item.range = range;
      item.sortText = `0${e.name}`;
      return item;
    });
  }

  provideHover(doc: vscode.TextDocument, pos: vscode.Position): vscode.Hover | undefined {
    if (!this.applies(doc)) return undefined;
    const range = doc.getWordRangeAtPosition(pos, /[A-Za-z_$][\w$]*/);
    if (!range) return undefined;
    const word = doc.getText(range);
    const before = doc.lineAt(pos.line).text.slice(0, range.start.character);
    const q = /([A-Za-z_$][\w$]*)\s*\.\s*$/.exec(before);
    const api = this.api();
    if (q) {
      const e = api.members[q[1]]?.find((m) => m.name === word);
      return e && new vscode.Hover(markdown(e, q[1]), range);
    }
    const e = api.globals.find((g) => g.name === word);
    return e && new vscode.Hover(markdown(e), range);
  }
}

export function registerNotebookApi(
  context: vscode.ExtensionContext,
  hasKernel: (nb: vscode.NotebookDocument) => boolean,
): NotebookApiProvider {
  const provider = new NotebookApiProvider(context.extensionPath, hasKernel);
  const selector: vscode.DocumentSelector = [
    { notebookType: 'jupyter-notebook', language: 'typescript' },
    { notebookType: 'jupyter-notebook', language: 'javascript' },
  ];
  context.subscriptions.push(
    vscode.languages.registerCompletionItemProvider(selector, provider, '.'),
    vscode.languages.registerHoverProvider(selector, provider),
  );
  return provider;
}
