// An experiment as a whole (the extension's experiment view, `linger experiment`): its checkpoints
// linked by their parents into runs (float → traced → fixed chains), each stage's metrics charted
// across runs, and one-line explanations where a number would surprise — a fixed model that beats
// its float parent after a short schedule, a quick run on a fraction of the data, a BatchNorm folded
// into a conv, a parent that changed after the child was made (docs/experiments.md).
import * as path from 'node:path';
import type { CheckpointSummary } from '../host/protocol';
import { foldedBns } from '../state/compare';
import { renderChartSvg } from '../charts';
import { checkpointSummary } from './checkpointSummary';

export const STAGE_ORDER = ['float', 'traced', 'fixed'] as const;
const STAGE_LABEL: Record<string, string> = { float: 'float', traced: 'traced', fixed: 'fixed' };

export interface ExperimentCheckpoint {
  file: string;
  /** the file's name in its experiment folder */
  name: string;
  /** how notes name it: the file name, prefixed by its folder when several folders are shown */
  label: string;
  /** its experiment folder */
  dir: string;
  stage: CheckpointSummary['stage'];
  metrics: Record<string, number>;
  recipe?: CheckpointSummary['recipe'];
  created?: string;
  /** the parent file among the checkpoints shown, when found */
  parent?: string;
  /** the recorded parent when it is not among them */
  missingParent?: string;
  parentProblem?: string;
  /** BatchNorms folded into a conv at this stage */
  folded: { conv: string; bn: string }[];
}

export interface ExperimentRun {
  /** a short name: the last checkpoint's, prefixed by its folder when several folders are shown */
  label: string;
  /** the chain, root (float) first */
  files: string[];
}

export interface ExperimentNote {
  /** the checkpoint (file) or run (label) the note is about */
  about: string;
  text: string;
  kind: 'info' | 'warning';
}

export interface ExperimentReport {
  title: string;
  /** the experiment folders shown (several: overlaid) */
  folders: string[];
  checkpoints: ExperimentCheckpoint[];
  runs: ExperimentRun[];
  /** files that could not be read, with the reason */
  unreadable: { file: string; error: string }[];
  notes: ExperimentNote[];
  /** the metrics recorded, in the order charted */
  metrics: string[];
  /** one Vega-Lite spec per metric (data inline) */
  charts: { metric: string; spec: Record<string, unknown> }[];
}

/** Whether `recorded` (a parent as saved: a path relative to the run's cwd, or absolute) names `file`. */
function namesFile(recorded: string, file: string, childDir: string): boolean {
  const r = recorded.split(path.sep).join('/');
  const f = file.split(path.sep).join('/');
  if (f === r || f.endsWith(`/${r}`)) return true;
  // a relative parent was recorded from the training run's working folder: the same name beside the child
  return !path.isAbsolute(recorded) && path.dirname(file) === childDir && path.basename(file) === path.basename(recorded);
}

const pct = (v: number) => `${(v * 100).toFixed(1)}%`;
const isFraction = (vs: number[]) => vs.length > 0 && vs.every((v) => v >= 0 && v <= 1);

/**
 * The report of a set of checkpoints (one experiment folder, or several to overlay): runs, notes and
 * chart specs. Pure: summaries in, data out (rendering is `renderExperimentCharts`).
 */
export function experimentReport(
  summaries: CheckpointSummary[],
  opts: { title?: string; unreadable?: { file: string; error: string }[] } = {},
): ExperimentReport {
  const dirs = [...new Set(summaries.map((s) => path.dirname(s.file)))].sort();
  const checkpoints: ExperimentCheckpoint[] = summaries
    .map((s) => {
      const dir = path.dirname(s.file);
      const parent = s.parent ? summaries.find((o) => o.file !== s.file && namesFile(s.parent!, o.file, dir))?.file : undefined;
      return {
        file: s.file,
        name: path.basename(s.file),
        label: dirs.length > 1 ? `${path.basename(dir)}/${path.basename(s.file)}` : path.basename(s.file),
        dir,
        stage: s.stage,
        metrics: s.metrics,
        ...(s.recipe ? { recipe: s.recipe } : {}),
        ...(s.created ? { created: s.created } : {}),
        ...(parent ? { parent } : s.parent ? { missingParent: s.parent } : {}),
        ...(s.parentProblem ? { parentProblem: s.parentProblem } : {}),
        folded: s.moduleTree ? foldedBns({ moduleTree: s.moduleTree, graph: s.graph }) : [],
      };
    })
    .sort(
      (a, b) =>
        a.dir.localeCompare(b.dir) ||
        STAGE_ORDER.indexOf(a.stage) - STAGE_ORDER.indexOf(b.stage) ||
        (a.created ?? '').localeCompare(b.created ?? '') ||
        a.name.localeCompare(b.name),
    );
  const ck = new Map(checkpoints.map((c) => [c.file, c]));

  // runs: every checkpoint no other one names as its parent, followed up its parents
  const parents = new Set(checkpoints.flatMap((c) => (c.parent ? [c.parent] : [])));
  const leaves = checkpoints.filter((c) => !parents.has(c.file));
  const runs: ExperimentRun[] = leaves.map((leaf) => {
    const chain: string[] = [];
    for (let c: ExperimentCheckpoint | undefined = leaf; c && !chain.includes(c.file); c = c.parent ? ck.get(c.parent) : undefined)
      chain.unshift(c.file);
    const inDir = leaves.filter((l) => l.dir === leaf.dir).length;
    const stem = leaf.name.replace(/\.(safetensors|pt|pth)$/, '');
    const folder = path.basename(leaf.dir);
    const label = dirs.length > 1 ? (inDir > 1 ? `${folder}/${stem}` : folder) : inDir > 1 ? stem : 'run';
    return { label, files: chain };
  });

  const metrics = [...new Set(checkpoints.flatMap((c) => Object.keys(c.metrics)))].sort((a, b) =>
    a === 'accuracy' ? -1 : b === 'accuracy' ? 1 : a.localeCompare(b),
  );
  const notes = explain(checkpoints, runs, ck, dirs.length > 1);
  const title = opts.title ?? (dirs.length === 1 ? path.basename(dirs[0]) : `${dirs.length} experiments`);
  const charts = metrics.map((metric) => ({ metric, spec: stageChart(metric, runs, ck) }));
  return { title, folders: dirs, checkpoints, runs, unreadable: opts.unreadable ?? [], notes, metrics, charts };
}

/** A metric along the stages, one line per run. */
function stageChart(metric: string, runs: ExperimentRun[], ck: Map<string, ExperimentCheckpoint>): Record<string, unknown> {
  const values = runs.flatMap((r) =>
    r.files.flatMap((f) => {
      const c = ck.get(f)!;
      const v = c.metrics[metric];
      return typeof v === 'number' ? [{ stage: STAGE_LABEL[c.stage], [metric]: v, run: r.label, checkpoint: c.name }] : [];
    }),
  );
  const fraction = isFraction(values.map((v) => v[metric] as number));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: metric,
    width: 320,
    height: 200,
    data: { values },
    mark: { type: 'line', point: { size: 60, filled: true } },
    encoding: {
      x: { field: 'stage', type: 'ordinal', sort: STAGE_ORDER.map((s) => STAGE_LABEL[s]), title: null, axis: { labelAngle: 0 } },
      y: { field: metric, type: 'quantitative', scale: { zero: false }, title: null, ...(fraction ? { axis: { format: '.1%' } } : {}) },
      color: { field: 'run', type: 'nominal', title: null, ...(runs.length === 1 ? { legend: null } : {}) },
      tooltip: [{ field: 'run' }, { field: 'checkpoint' }, { field: metric, ...(fraction ? { format: '.2%' } : {}) }],
    },
  };
}

/** The one-line explanations. */
function explain(
  checkpoints: ExperimentCheckpoint[],
  runs: ExperimentRun[],
  ck: Map<string, ExperimentCheckpoint>,
  severalFolders: boolean,
): ExperimentNote[] {
  const notes: ExperimentNote[] = [];
  const runPrefix = (r: ExperimentRun) => (runs.length > 1 ? `${r.label}: ` : '');
  const epochs = (c: ExperimentCheckpoint) => (typeof c.recipe?.epochs === 'number' ? c.recipe.epochs : undefined);
  for (const r of runs) {
    const chain = r.files.map((f) => ck.get(f)!);
    const float = chain.find((c) => c.stage === 'float');
    const fixed = [...chain].reverse().find((c) => c.stage === 'fixed');
    const traced = chain.find((c) => c.stage === 'traced');
    const accF = float?.metrics.accuracy;
    const accQ = fixed?.metrics.accuracy;
    const accT = traced?.metrics.accuracy;
    if (float && fixed && typeof accF === 'number' && typeof accQ === 'number' && accQ > accF + 0.002) {
      const later = chain.filter((c) => c !== float && STAGE_ORDER.indexOf(c.stage) > 0);
      const more = later.map(epochs);
      const ef = epochs(float);
      const extra = more.every((e) => e !== undefined) ? (more as number[]).reduce((a, b) => a + b, 0) : undefined;
      notes.push({
        about: r.label,
        kind: 'info',
        text:
          runPrefix(r) +
          (extra === 0
            ? `fixed (${pct(accQ)}) beats float (${pct(accF)}) with no further training (calibration only): a difference this small is the test set's noise, not a gain from quantization.`
            : `fixed (${pct(accQ)}) beats float (${pct(accF)}) because the later stages kept training` +
              (extra !== undefined && ef !== undefined
                ? `: ${extra} more epoch${extra === 1 ? '' : 's'} on top of float's ${ef}`
                : ' after the float checkpoint') +
              '. After a short schedule the float model is still learning, so the gain is training, not quantization; a float model trained to convergence shows what fixed point costs.'),
      });
    }
    if (traced && fixed && typeof accT === 'number' && typeof accQ === 'number' && accT - accQ > 0.01)
      notes.push({
        about: r.label,
        kind: 'warning',
        text: `${runPrefix(r)}fixed point costs ${((accT - accQ) * 100).toFixed(1)} points against the float stage (${pct(accT)} → ${pct(accQ)}): Inspect the fixed checkpoint for layers whose codes saturate, or give QAT more epochs.`,
      });
  }
  // a quick run, once per folder
  for (const dir of [...new Set(checkpoints.map((c) => c.dir))]) {
    const limited = checkpoints.find(
      (c) => c.dir === dir && typeof c.recipe?.limitPerClass === 'number' && typeof c.recipe?.trainImages === 'number',
    );
    if (!limited) continue;
    const rc = limited.recipe!;
    notes.push({
      about: dir,
      kind: 'info',
      text: `${severalFolders ? `${path.basename(dir)}: ` : ''}a quick run: trained on ${(rc.trainImages as number).toLocaleString('en-US')} images (${String(rc.limitPerClass)} per class) and tested on ${typeof rc.testImages === 'number' ? rc.testImages.toLocaleString('en-US') : 'a subset'}, so its accuracies are noisy and low; run without --limit for the model's.`,
    });
  }
  for (const c of checkpoints) {
    if (c.stage !== 'float' && c.folded.length && !(c.parent && ck.get(c.parent)?.folded.length))
      notes.push({
        about: c.file,
        kind: 'info',
        text: `${c.label}: ${c.folded.map((f) => `${f.bn} is folded into ${f.conv}`).join(', ')} — the conv's weight and bias hold the BatchNorm's scale and shift from here on, so Compare shows them changed by the fold, not by training.`,
      });
    if (c.parentProblem) notes.push({ about: c.file, kind: 'warning', text: `${c.label}: ${c.parentProblem}.` });
    else if (c.missingParent)
      notes.push({
        about: c.file,
        kind: 'info',
        text: `${c.label}: its parent ${c.missingParent} is not among these checkpoints (another folder, or outside linger.checkpointsGlob).`,
      });
    if (!Object.keys(c.metrics).length)
      notes.push({ about: c.file, kind: 'info', text: `${c.label} records no metrics, so it is not on the charts.` });
  }
  return notes;
}

/** The report of these files (headers only); a file that cannot be read is listed with the reason, never dropped. */
export function experimentOfFiles(files: string[], title?: string): ExperimentReport {
  const summaries: CheckpointSummary[] = [];
  const unreadable: { file: string; error: string }[] = [];
  for (const file of files) {
    try {
      summaries.push(checkpointSummary(file));
    } catch (e) {
      unreadable.push({ file, error: (e as Error).message });
    }
  }
  return experimentReport(summaries, { title, unreadable });
}

/** Every chart of a report as SVG. */
export async function renderExperimentCharts(r: ExperimentReport): Promise<{ metric: string; svg: string }[]> {
  return Promise.all(r.charts.map(async (c) => ({ metric: c.metric, svg: await renderChartSvg(c.spec) })));
}

/** The report as text (`linger experiment`): runs with their metrics, then the notes. */
export function formatExperiment(r: ExperimentReport): string {
  const ck = new Map(r.checkpoints.map((c) => [c.file, c]));
  const fmt = (k: string, v: number) => (k === 'accuracy' && v >= 0 && v <= 1 ? pct(v) : Number.isInteger(v) ? String(v) : v.toFixed(4));
  const lines = [`experiment ${r.title}: ${r.checkpoints.length} checkpoint(s), ${r.runs.length} run(s)`];
  for (const run of r.runs) {
    lines.push(`  ${run.label}:`);
    for (const f of run.files) {
      const c = ck.get(f)!;
      const m = Object.entries(c.metrics).map(([k, v]) => `${k} ${fmt(k, v)}`);
      const epochs = typeof c.recipe?.epochs === 'number' ? `, ${c.recipe.epochs} epoch(s)` : '';
      lines.push(`    ${c.stage.padEnd(7)} ${c.name}${m.length ? `  ${m.join(', ')}` : ''}${epochs}`);
    }
  }
  for (const u of r.unreadable) lines.push(`  cannot read ${path.basename(u.file)}: ${u.error}`);
  if (r.notes.length) lines.push('notes:', ...r.notes.map((n) => `  ${n.kind === 'warning' ? 'warning: ' : ''}${n.text}`));
  return lines.join('\n');
}
