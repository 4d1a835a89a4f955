// Model files (docs/contract.md#model-files): a .ts or .js module exporting `createModel(): nn.Module` and
// `inputShape: number[]`, for the CLI and the extension. TypeScript (and ES modules) go through
// esbuild; `import ... from 'linger-studio'` resolves to the engine that is running, so the
// user's classes extend the very nn.Module the engine checks against.
import * as fs from 'node:fs';
import NodeModule from 'node:module';
import * as path from 'node:path';
import { Module } from './nn/module';
import { randn, Tensor } from './tensor';
import { registerRecipeBuilder, setRecipe } from './parallel/recipe';
import { regularFileProblem } from './state/files';

/** A model file that cannot be used, naming the file (and the line, for syntax errors). */
export class ModelFileError extends Error {
  constructor(
    readonly file: string,
    readonly problem: string,
    readonly line?: number,
    readonly column?: number,
  ) {
    super(`${file}${line !== undefined ? `:${line}${column !== undefined ? `:${column}` : ''}` : ''}: ${problem}`);
    this.name = 'ModelFileError';
  }
}

export interface ModelFile {
  /** a fresh model each call (checked to be an nn.Module) */
  createModel: () => Module;
  /** batch first (NCHW for images); the example input's shape when only that is exported */
  inputShape: number[];
  /**
   * An input to trace, export and verify with: the file's `exampleInput()` when it exports one
   * (any rank, int32 indices for an Embedding), else standard-normal values of `inputShape`.
   */
  example?: () => Tensor;
  /** the absolute path loaded */
  file: string;
}

export const ENGINE_SPECIFIER = 'linger-studio';
const EXTENSIONS = /\.(ts|mts|cts|tsx|js|mjs|cjs|jsx)$/i;

interface EsbuildMessage {
  text: string;
  location: { file: string; line: number; column: number } | null;
}
interface Esbuild {
  build(o: Record<string, unknown>): Promise<{ outputFiles?: { text: string }[] }>;
}

function loadEsbuild(): Esbuild | null {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('esbuild') as Esbuild;
  } catch {
    return null;
  }
}

// The hand-over of the engine (docs/architecture.md): a user's `import … from 'linger-studio'`
// must get the running engine's public API (index.ts), but this loader is part of that API
// (linger.loadModelFile), so it cannot import index.ts without an import cycle. Instead index.ts
// hands its exports over when it loads, through provideEngine; whatever loads model files without
// going through the API (the CLI's export, the engine process, a training worker) imports index.ts
// first. Until then only the 'linger-studio' specifier fails, saying so; the nn.Module and Tensor
// checks below need no hand-over (they are the classes index.ts exports).
let engine: object | null = null;

/** Gives model files the engine's public API as 'linger-studio' (index.ts calls this when it loads). */
export function provideEngine(api: object): void {
  engine = api;
}

/** The engine's public API as a model file sees it. */
function engineModule(): object {
  if (!engine)
    throw new Error(
      `'${ENGINE_SPECIFIER}' is not available: the engine's entry point (src/engine/index.ts) was not loaded, so it has not handed itself to the model-file loader`,
    );
  return engine;
}

/** One CommonJS bundle of the model file and its relative imports; packages stay `require`s. */
async function bundle(esbuild: Esbuild, file: string): Promise<string> {
  try {
    const r = await esbuild.build({
      entryPoints: [file],
      bundle: true,
      write: false,
      platform: 'node',
      format: 'cjs',
      target: 'node20',
      packages: 'external',
      keepNames: true,
      sourcemap: 'inline',
      logLevel: 'silent',
      absWorkingDir: path.dirname(file),
    });
    return r.outputFiles![0].text;
  } catch (e) {
    const errors = (e as { errors?: EsbuildMessage[] }).errors;
    if (!errors?.length) throw new ModelFileError(file, `cannot compile: ${(e as Error).message}`);
    const first = errors[0];
    const loc = first.location;
    const where = loc ? path.resolve(path.dirname(file), loc.file) : file;
    const more = errors.length > 1 ? ` (and ${errors.length - 1} more error${errors.length > 2 ? 's' : ''})` : '';
    throw new ModelFileError(where, `${first.text}${more}`, loc?.line, loc ? loc.column + 1 : undefined);
  }
}

/** Runs CommonJS code as the module `file`, with 'linger-studio' mapped to the running engine. */
function evaluate(code: string, file: string): Record<string, unknown> {
  type NodeModuleInternals = NodeModule & { _compile(code: string, file: string): void; paths: string[] };
  const Ctor = NodeModule as unknown as {
    new (id: string, parent?: NodeModule): NodeModuleInternals;
    _nodeModulePaths(dir: string): string[];
  };
  const m = new Ctor(file);
  m.filename = file;
  m.paths = Ctor._nodeModulePaths(path.dirname(file));
  const plain = NodeModule.prototype.require;
  // Node's require() inside a module calls module.require, so this maps the specifier everywhere in the file
  (m as unknown as { require: (id: string) => unknown }).require = (id: string) =>
    id === ENGINE_SPECIFIER ? engineModule() : plain.call(m, id);
  m._compile(code, file);
  return m.exports as Record<string, unknown>;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return `[${v.map((x) => JSON.stringify(x) ?? String(x)).join(', ')}]`.slice(0, 80);
  if (typeof v === 'function') return `a function (${v.name || 'anonymous'})`;
  if (typeof v === 'object') return `an object (${(v as object).constructor?.name ?? 'Object'})`;
  return `${typeof v} ${JSON.stringify(v)}`;
}

/**
 * linger.loadModelFile: loads a model file (.ts/.mts/.tsx through esbuild, .js/.mjs/.cjs too so
 * that ES-module syntax and 'linger-studio' imports work). Errors name the file: a syntax error
 * with its line and column, a missing or wrong export with what is expected.
 */
export async function loadModelFile(file: string): Promise<ModelFile> {
  const abs = path.resolve(file);
  if (!EXTENSIONS.test(abs)) throw new ModelFileError(abs, 'a model file is a .ts or .js module (also .mts, .cts, .tsx, .mjs, .cjs, .jsx)');
  // lstat first: a FIFO, a directory or a symlink loop gets its own message (state/files.ts)
  const problem = regularFileProblem(abs, 'model');
  if (problem) throw new ModelFileError(abs, problem);

  const esbuild = loadEsbuild();
  let code: string;
  if (esbuild) code = await bundle(esbuild, abs);
  else if (/\.(js|cjs)$/i.test(abs)) code = fs.readFileSync(abs, 'utf8');
  else throw new ModelFileError(abs, 'loading a TypeScript model file needs the esbuild package (npm install esbuild)');

  let exports: Record<string, unknown>;
  try {
    exports = evaluate(code, abs);
  } catch (e) {
    if (e instanceof SyntaxError) throw new ModelFileError(abs, `syntax error: ${e.message}`);
    throw new ModelFileError(abs, `failed while loading: ${e instanceof Error ? e.message : String(e)}`);
  }
  // `export default { createModel, inputShape }` works too
  const dflt = exports.default;
  const ns = exports.createModel === undefined && dflt && typeof dflt === 'object' ? (dflt as Record<string, unknown>) : exports;

  const create = ns.createModel;
  if (create === undefined) {
    throw new ModelFileError(
      abs,
      'does not export createModel (add `export function createModel() { return new MyModel(); }`, returning an nn.Module)',
    );
  }
  if (typeof create !== 'function')
    throw new ModelFileError(abs, `createModel must be a function returning an nn.Module, got ${describe(create)}`);
  const exampleFn = ns.exampleInput;
  if (exampleFn !== undefined && typeof exampleFn !== 'function') {
    throw new ModelFileError(abs, `exampleInput must be a function returning a Tensor, got ${describe(exampleFn)}`);
  }
  const example =
    exampleFn === undefined
      ? undefined
      : () => {
          let t: unknown;
          try {
            t = (exampleFn as () => unknown)();
          } catch (e) {
            throw new ModelFileError(abs, `exampleInput() failed: ${e instanceof Error ? e.message : String(e)}`);
          }
          if (!(t instanceof Tensor))
            throw new ModelFileError(abs, `exampleInput() returned ${describe(t)}, not a Tensor (e.g. tensor(values, shape, 'int32'))`);
          return t;
        };
  const shape = ns.inputShape ?? (example ? example().shape : undefined);
  if (shape === undefined) {
    throw new ModelFileError(
      abs,
      'does not export inputShape (add e.g. `export const inputShape = [1, 1, 28, 28];`: NCHW, batch first) or exampleInput()',
    );
  }
  if (!Array.isArray(shape) || shape.length < 2 || shape.length > 8 || !shape.every((d) => Number.isSafeInteger(d) && d > 0)) {
    throw new ModelFileError(abs, `inputShape must be a list of 2 to 8 positive whole numbers (NCHW, batch first), got ${describe(shape)}`);
  }
  return {
    file: abs,
    inputShape: [...shape] as number[],
    ...(example ? { example } : {}),
    createModel: () => {
      let m: unknown;
      try {
        m = (create as () => unknown)();
      } catch (e) {
        throw new ModelFileError(abs, `createModel() failed: ${e instanceof Error ? e.message : String(e)}`);
      }
      if (!(m instanceof Module)) {
        throw new ModelFileError(abs, `createModel() returned ${describe(m)}, not an nn.Module (extend nn.Module from 'linger-studio')`);
      }
      setRecipe(m, { kind: 'file', file: abs }); // data-parallel workers build theirs from this file
      return m;
    },
  };
}

/** The input a model file's model is traced, exported and verified with. */
export function exampleOf(mf: Pick<ModelFile, 'example' | 'inputShape'>): Tensor {
  if (mf.example) return mf.example();
  return randn(mf.inputShape);
}

// a data-parallel worker rebuilds a model file's model from the file (parallel/recipe.ts)
registerRecipeBuilder('file', async (r) => (await loadModelFile(r.file)).createModel());
