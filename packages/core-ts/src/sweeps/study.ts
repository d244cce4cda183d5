// Study files: a batch-size study as data (YAML or JSON), checked against the JSON Schema shipped
// with @bsx/core (schema/study.schema.json, validated with Ajv) and then against itself (a
// gradient study from a run that is not in the grid, an epoch past a run's end, ...). Every
// mistake is refused before any work starts, naming the file, the field, the value and, in YAML,
// the line. The result is the grid expanded into runs (one per batch size or schedule x learning
// rate x optimiser, each trained with every seed) and the gradient studies resolved to a run of
// the grid (or to stored weights) and to layer numbers.
// Reference: JSON Schema draft-07 (json-schema.org); the yaml package's Document API.

import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import { LineCounter, parseDocument } from 'yaml';
import { DEFAULT_WIDTHS } from '../engine/ensemble.js';
import { formatOptimizer, normalizeOptimizer, parseOptimizer, type OptimizerSpec } from '../engine/optimizers.js';
import { BsxError } from '../errors.js';
import type { Phase, TrainSpec } from '../experiments/train.js';
import { canonicalJson, specHash } from '../store/hash.js';
import { shown } from '../store/validate.js';

/** The statistics per epoch a study may keep (runs.csv and the report). */
export const STUDY_METRICS = ['trainLoss', 'trainAcc', 'testLoss', 'testAcc', 'weightDistance', 'biasDistance', 'weightNorm', 'biasNorm', 'cosine'] as const;
export type StudyMetric = (typeof STUDY_METRICS)[number];

/** Where Debian's dataset-fashion-mnist puts the IDX files. */
export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

export interface StudyData {
  set?: 'mnist' | 'fashion-mnist';
  /** An IDX folder (absolute). */
  idx?: string;
  trainLimit?: number;
  testLimit?: number;
}

export type LrScalingRule = 'none' | 'linear' | 'sqrt';

/** One run of the grid (a configuration, trained with every seed of the study). */
export interface StudyRun {
  /** Stable and readable, e.g. `b64-lr0.01-sgd`. */
  id: string;
  /** For people, e.g. `b256 lr 0.04 (0.01 linear from b64), sgd(momentum=0.9)`. */
  label: string;
  /** The grid's batch size (a batchSizes grid). */
  batchSize?: number;
  /** The schedule's number in train.schedules, from 1 (a schedules grid). */
  schedule?: number;
  /** The learning rate as train.lrs gives it (before scaling). */
  baseLr: number;
  /** The learning rate of each phase (after scaling). */
  lrs: number[];
  optimizer: OptimizerSpec;
  /** The run's spec: every seed of the study, phases with their scaled learning rates. */
  spec: Required<TrainSpec>;
}

export type GradSource = { kind: 'run'; run: string; epoch: number; seed: number } | { kind: 'weights'; dir: string };

export interface StudyGrad {
  name: string;
  from: GradSource;
  /** Layer numbers from 1. */
  layers: number[];
  batchSizes: number[];
  trials: number;
  samplesPerTrial: number;
  lr: number;
  seed: number;
}

export interface Study {
  name: string;
  description?: string;
  /** The file it was read from, when it was. */
  file?: string;
  data: StudyData;
  widths: number[];
  seeds: number[];
  lrScaling: { rule: LrScalingRule; baseBatchSize?: number };
  runs: StudyRun[];
  grad: StudyGrad[];
  keep: StudyMetric[];
  packReplicas: number;
  /** The study as data, its relative paths made absolute: what sweep.json keeps. */
  content: Record<string, unknown>;
  /** specHash of the content. */
  hash: string;
}

// ---------------------------------------------------------------------------
// Schema

let validator: ReturnType<Ajv['compile']> | undefined;
let schemaCache: Record<string, unknown> | undefined;

/** The JSON Schema of study files (schema/study.schema.json of @bsx/core). */
export function studySchema(): Record<string, unknown> {
  schemaCache ??= JSON.parse(readFileSync(new URL('../../schema/study.schema.json', import.meta.url), 'utf8')) as Record<string, unknown>;
  return schemaCache;
}

function validate(): ReturnType<Ajv['compile']> {
  if (!validator) {
    const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true, verbose: true, allowMatchingProperties: true });
    validator = ajv.compile(studySchema());
  }
  return validator;
}

/** A path like `train.batchSizes[0]` from a JSON pointer's segments. */
function fieldOf(segments: readonly (string | number)[]): string {
  let out = '';
  for (const s of segments) {
    if (typeof s === 'number' || /^\d+$/.test(String(s))) out += `[${s}]`;
    else out += out === '' ? String(s) : `.${String(s)}`;
  }
  return out === '' ? '(the study)' : out;
}

function segmentsOf(pointer: string): string[] {
  return pointer === '' ? [] : pointer.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function valueAt(root: unknown, segments: readonly string[]): unknown {
  let v = root;
  for (const s of segments) v = v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[s] : undefined;
  return v;
}

/** Turns Ajv's errors into one message per mistake: the field, what it must be, what it is. */
function schemaMessages(errors: readonly ErrorObject[], root: unknown): { segments: string[]; message: string }[] {
  // a failed anyOf says it all for its field: the errors of its branches are left out
  const anyOf = errors.filter((e) => e.keyword === 'anyOf').map((e) => e.instancePath);
  const kept = errors.filter((e) => e.keyword === 'anyOf' || !anyOf.some((p) => e.instancePath === p || e.instancePath.startsWith(`${p}/`)));
  const seen = new Set<string>();
  const out: { segments: string[]; message: string }[] = [];
  for (const e of kept) {
    const segments = segmentsOf(e.instancePath);
    const field = fieldOf(segments);
    const value = valueAt(root, segments);
    let message: string;
    switch (e.keyword) {
      case 'additionalProperties': {
        const extra = (e.params as { additionalProperty: string }).additionalProperty;
        const known = Object.keys(((e.parentSchema as { properties?: Record<string, unknown> })?.properties) ?? {});
        segments.push(extra);
        message = `${fieldOf(segments)}: unknown field${known.length > 0 ? ` (${field === '(the study)' ? 'the study' : field} has: ${known.join(', ')})` : ''}`;
        break;
      }
      case 'required': {
        const missing = (e.params as { missingProperty: string }).missingProperty;
        message = `${fieldOf([...segments, missing])} is missing`;
        break;
      }
      case 'anyOf':
        // the node's $comment says what it takes in a few words (its description says more, for editors)
        message = `${field} must be ${(e.parentSchema as { $comment?: string })?.$comment ?? 'of another form'}, got ${shown(value)}`;
        break;
      case 'enum':
        message = `${field} must be one of ${((e.params as { allowedValues: unknown[] }).allowedValues).map((x) => JSON.stringify(x)).join(', ')}, got ${shown(value)}`;
        break;
      default:
        message = `${field} ${e.message ?? 'is invalid'}, got ${shown(value)}`;
    }
    if (!seen.has(message)) {
      seen.add(message);
      out.push({ segments, message });
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// Reading

/** Where a field is in a YAML text: its line, or undefined. */
type Locate = (segments: readonly (string | number)[]) => number | undefined;

function refuse(file: string | undefined, field: string, problem: string, line?: number): never {
  const where = file !== undefined ? `${file}: ` : 'study: ';
  throw new BsxError('BSX_INVALID_ARGUMENT', `${where}${field} ${problem}${line !== undefined ? ` (line ${line})` : ''}`, file !== undefined ? { path: file } : undefined);
}

/** Parses a study's text (YAML or JSON) into plain data, with a function that finds a field's line. */
function parseText(text: string, file: string | undefined): { value: unknown; locate: Locate } {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const line = e.linePos?.[0]?.line;
    throw new BsxError('BSX_INVALID_ARGUMENT', `${file ?? 'study'}: not valid YAML or JSON: ${e.message.split('\n')[0]}${line !== undefined ? ` (line ${line})` : ''}`, file !== undefined ? { path: file } : undefined);
  }
  const locate: Locate = (segments) => {
    for (let n = segments.length; n >= 0; n--) {
      const node = doc.getIn(segments.slice(0, n).map((s) => (typeof s === 'string' && /^\d+$/.test(s) ? Number(s) : s)), true) as { range?: [number, number, number] } | undefined;
      if (node && Array.isArray(node.range)) return lc.linePos(node.range[0]).line;
    }
    return undefined;
  };
  return { value: doc.toJS({ maxAliasCount: 100 }) as unknown, locate };
}

/** Reads and checks a study file (YAML or JSON). */
export async function loadStudy(file: string): Promise<Study> {
  const path = resolve(file);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new BsxError('BSX_DATA_NOT_FOUND', `${path}: no such study file`, { path });
    if (code === 'EISDIR') throw new BsxError('BSX_INVALID_ARGUMENT', `${path} is a folder, not a study file`, { path });
    throw e;
  }
  return parseStudy(text, { file: path });
}

/**
 * Checks a study given as text (YAML or JSON) or as data. Relative paths in it (data.idx,
 * grad[].from.weights) are taken from `baseDir`, by default the file's folder.
 */
export function parseStudy(input: string | Record<string, unknown>, opts: { file?: string; baseDir?: string } = {}): Study {
  const file = opts.file;
  let value: unknown;
  let locate: Locate = () => undefined;
  if (typeof input === 'string') ({ value, locate } = parseText(input, file));
  else value = structuredClone(input);
  const bad = (segments: readonly (string | number)[], problem: string): never => refuse(file, fieldOf(segments), problem, locate(segments));
  const v = validate();
  if (!v(value)) {
    const msgs = schemaMessages(v.errors ?? [], value);
    const first = msgs[0]!;
    const line = locate(first.segments);
    const more = msgs.length > 1 ? `; and ${msgs.length - 1} more: ${msgs.slice(1, 4).map((m) => m.message).join('; ')}` : '';
    throw new BsxError('BSX_INVALID_ARGUMENT', `${file ?? 'study'}: ${first.message}${line !== undefined ? ` (line ${line})` : ''}${more}`, file !== undefined ? { path: file } : undefined);
  }
  const raw = value as RawStudy;
  const baseDir = opts.baseDir ?? (file !== undefined ? dirname(file) : process.cwd());
  const abs = (p: string): string => (isAbsolute(p) ? p : resolve(baseDir, p));

  // data
  if ((raw.data.set === undefined) === (raw.data.idx === undefined)) bad(['data'], 'must give either set (mnist or fashion-mnist) or idx (a folder of IDX files), not both or neither');
  const data: StudyData = { ...raw.data };
  if (data.idx !== undefined) data.idx = abs(data.idx);
  const widths = raw.model?.widths ?? [...DEFAULT_WIDTHS];

  // the grid
  const t = raw.train;
  if ((t.batchSizes === undefined) === (t.schedules === undefined)) bad(['train'], 'must give either batchSizes (with epochs) or schedules, not both or neither');
  if (t.batchSizes !== undefined && t.epochs === undefined) bad(['train', 'epochs'], 'is missing (the epochs of each run of train.batchSizes)');
  if (t.schedules !== undefined && t.epochs !== undefined) bad(['train', 'epochs'], 'must not be given with schedules (each phase gives its epochs)');
  const seeds = typeof t.seeds === 'number' ? Array.from({ length: t.seeds }, (_, i) => i) : [...(t.seeds ?? [0])];
  const lrs = [...(t.lrs ?? [0.01])];
  const scaling = t.lrScaling ?? { rule: 'none' as const };
  if (scaling.rule !== 'none' && scaling.baseBatchSize === undefined) bad(['train', 'lrScaling', 'baseBatchSize'], `is missing (the batch size the learning rates of train.lrs are for, scaled ${scaling.rule}ly from it)`);
  if (scaling.rule === 'none' && scaling.baseBatchSize !== undefined) bad(['train', 'lrScaling', 'baseBatchSize'], 'is given but rule is none');
  const optimizers = (t.optimizers ?? ['sgd']).map((o, i) => {
    try {
      return typeof o === 'string' ? parseOptimizer(o, 'optimizer') : normalizeOptimizer(o as OptimizerSpec, 'optimizer');
    } catch (e) {
      return bad(['train', 'optimizers', i], `is not an optimiser of the engine: ${(e as Error).message.replace(/^optimizer: /, '')}`);
    }
  });
  optimizers.forEach((o, i) => {
    const j = optimizers.findIndex((x) => canonicalJson(x) === canonicalJson(o));
    if (j < i) bad(['train', 'optimizers', i], `is the same optimiser as train.optimizers[${j}] (${formatOptimizer(o)})`);
  });
  const factor = (b: number): number => {
    if (scaling.rule === 'linear') return b / scaling.baseBatchSize!;
    if (scaling.rule === 'sqrt') return Math.sqrt(b / scaling.baseBatchSize!);
    return 1;
  };
  const schedules: { phases: { batchSize: number; epochs: number }[]; batchSize?: number; schedule?: number }[] =
    t.batchSizes !== undefined
      ? t.batchSizes.map((b) => ({ phases: [{ batchSize: b, epochs: t.epochs! }], batchSize: b }))
      : t.schedules!.map((phases, i) => ({ phases, schedule: i + 1 }));
  const showOptimizer = optimizers.length > 1 || formatOptimizer(optimizers[0]!) !== 'sgd';
  const runs: StudyRun[] = [];
  for (const sch of schedules) {
    for (const lr of lrs) {
      for (const opt of optimizers) {
        const phases: Phase[] = sch.phases.map((p) => ({ batchSize: p.batchSize, epochs: p.epochs, lr: lr * factor(p.batchSize), optimizer: opt }));
        const sched = sch.batchSize !== undefined ? `b${sch.batchSize}` : sch.phases.map((p) => `b${p.batchSize}x${p.epochs}`).join(',');
        const scaled = scaling.rule !== 'none' ? ` (${lr} ${scaling.rule} from b${scaling.baseBatchSize})` : '';
        const lrText = scaling.rule !== 'none' && sch.batchSize !== undefined ? `lr ${phases[0]!.lr}${scaled}` : `lr ${lr}${scaled}`;
        const optText = formatOptimizer(opt);
        const id = `${sched.replace(/,/g, '-')}-lr${lr}-${optText.replace(/[^A-Za-z0-9.=]+/g, '_').replace(/_+$/, '')}`;
        runs.push({
          id,
          label: `${sched} ${lrText}${showOptimizer ? `, ${optText}` : ''}`,
          ...(sch.batchSize !== undefined ? { batchSize: sch.batchSize } : { schedule: sch.schedule! }),
          baseLr: lr,
          lrs: phases.map((p) => p.lr),
          optimizer: opt,
          spec: { widths: [...widths], seeds: [...seeds], phases },
        });
      }
    }
  }

  // the gradient studies
  const names = new Set<string>();
  const grad: StudyGrad[] = (raw.grad ?? []).map((g, i) => {
    const at = (...rest: (string | number)[]): (string | number)[] => ['grad', i, ...rest];
    const name = g.name ?? `grad-${i + 1}`;
    if (names.has(name)) bad(at('name'), `'${name}' names two gradient studies`);
    names.add(name);
    const f = g.from;
    let from: GradSource;
    if (f.run !== undefined && f.weights !== undefined) bad(at('from'), 'must give either run (a run of the grid) or weights (a folder of stored weights), not both');
    if (f.weights !== undefined) {
      if (f.epoch !== undefined || f.seed !== undefined) bad(at('from'), 'takes epoch and seed only with run, not with weights');
      from = { kind: 'weights', dir: abs(f.weights) };
    } else {
      const run = matchRun(runs, f.run ?? {}, lrs, (field, problem) => bad(at('from', 'run', ...field), problem));
      const total = run.spec.phases.reduce((a, p) => a + p.epochs, 0);
      const epoch = f.epoch ?? total;
      if (epoch > total) bad(at('from', 'epoch'), `is ${epoch}, past the end of the run ${run.label} (${total} epoch${total === 1 ? '' : 's'})`);
      const seed = f.seed ?? seeds[0]!;
      if (!seeds.includes(seed)) bad(at('from', 'seed'), `is ${seed}, not a seed of the grid (train.seeds: ${seeds.join(', ')})`);
      from = { kind: 'run', run: run.id, epoch, seed };
    }
    const L = widths.length - 1;
    const layers = g.layers === undefined || g.layers === 'last' ? [L] : g.layers === 'all' ? Array.from({ length: L }, (_, k) => k + 1) : [...g.layers];
    layers.forEach((l, k) => {
      if (l > L) bad(at('layers', k), `is ${l}, not a layer of the model ${widths.join('-')} (layers 1 to ${L})`);
    });
    const measurable = gradTrialLayers(widths);
    const not = layers.filter((l) => !measurable.includes(l));
    if (not.length > 0) bad(at('layers'), `asks for layer${not.length > 1 ? 's' : ''} ${not.join(', ')} of ${widths.join('-')}, which the engine's gradient trials cannot measure`);
    const samplesPerTrial = g.samplesPerTrial ?? 1024;
    g.batchSizes.forEach((b, k) => {
      if (b > samplesPerTrial) bad(at('batchSizes', k), `is ${b}, more than the samples per trial (${samplesPerTrial})`);
    });
    return { name, from, layers: layers.sort((a, b) => a - b), batchSizes: [...g.batchSizes], trials: g.trials ?? 100, samplesPerTrial, lr: g.lr ?? 0.01, seed: g.seed ?? 0 };
  });

  const content = structuredClone(value) as Record<string, unknown>;
  delete content.$schema;
  if (data.idx !== undefined) (content.data as Record<string, unknown>).idx = data.idx;
  (content.grad as Record<string, unknown>[] | undefined)?.forEach((g, i) => {
    const s = grad[i]!.from;
    if (s.kind === 'weights') (g.from as Record<string, unknown>).weights = s.dir;
  });
  return {
    name: raw.name,
    ...(raw.description !== undefined ? { description: raw.description } : {}),
    ...(file !== undefined ? { file } : {}),
    data,
    widths: [...widths],
    seeds,
    lrScaling: { ...scaling },
    runs,
    grad,
    keep: [...(raw.keep ?? STUDY_METRICS)],
    packReplicas: t.packReplicas ?? 64,
    content,
    hash: specHash(content),
  };
}

interface RawStudy {
  name: string;
  description?: string;
  data: { set?: 'mnist' | 'fashion-mnist'; idx?: string; trainLimit?: number; testLimit?: number };
  model?: { widths?: number[] };
  train: {
    batchSizes?: number[];
    epochs?: number;
    schedules?: { batchSize: number; epochs: number }[][];
    lrs?: number[];
    lrScaling?: { rule: LrScalingRule; baseBatchSize?: number };
    optimizers?: (string | Record<string, unknown>)[];
    seeds?: number | number[];
    packReplicas?: number;
  };
  grad?: {
    name?: string;
    from: { run?: { batchSize?: number; schedule?: number; lr?: number; optimizer?: string | Record<string, unknown> }; epoch?: number; seed?: number; weights?: string };
    layers?: 'all' | 'last' | number[];
    batchSizes: number[];
    trials?: number;
    samplesPerTrial?: number;
    lr?: number;
    seed?: number;
  }[];
  keep?: StudyMetric[];
}

/** The one run of the grid a gradient study's `from.run` names; an axis with one value may be left out. */
function matchRun(
  runs: readonly StudyRun[],
  sel: { batchSize?: number; schedule?: number; lr?: number; optimizer?: string | Record<string, unknown> },
  lrs: readonly number[],
  bad: (field: string[], problem: string) => never,
): StudyRun {
  let pool = [...runs];
  const grid = runs[0]!.batchSize !== undefined ? 'batchSizes' : 'schedules';
  if (grid === 'batchSizes' && sel.schedule !== undefined) bad(['schedule'], 'is given, but the grid has train.batchSizes, not schedules');
  if (grid === 'schedules' && sel.batchSize !== undefined) bad(['batchSize'], 'is given, but the grid has train.schedules: name one by its number (schedule: 1, 2, ...)');
  const axis = <T>(field: string, given: T | undefined, of: (r: StudyRun) => T, same: (a: T, b: T) => boolean, show: (x: T) => string): void => {
    const values: T[] = [];
    for (const r of pool) if (!values.some((x) => same(x, of(r)))) values.push(of(r));
    if (given === undefined) {
      if (values.length > 1) bad([field], `is missing: the grid has ${values.length} (${values.map(show).join(', ')})`);
      return;
    }
    if (!values.some((x) => same(x, given))) bad([field], `is ${show(given)}, not in the grid (${values.map(show).join(', ')})`);
    pool = pool.filter((r) => same(of(r), given));
  };
  if (grid === 'batchSizes') axis('batchSize', sel.batchSize, (r) => r.batchSize!, (a, b) => a === b, String);
  else axis('schedule', sel.schedule, (r) => r.schedule!, (a, b) => a === b, String);
  if (sel.lr !== undefined && !lrs.includes(sel.lr)) bad(['lr'], `is ${sel.lr}, not in the grid (train.lrs: ${lrs.join(', ')})`);
  axis('lr', sel.lr, (r) => r.baseLr, (a, b) => a === b, String);
  let opt: OptimizerSpec | undefined;
  if (sel.optimizer !== undefined) {
    try {
      opt = typeof sel.optimizer === 'string' ? parseOptimizer(sel.optimizer, 'optimizer') : normalizeOptimizer(sel.optimizer as OptimizerSpec, 'optimizer');
    } catch (e) {
      bad(['optimizer'], `is not an optimiser of the engine: ${(e as Error).message.replace(/^optimizer: /, '')}`);
    }
  }
  axis('optimizer', opt, (r) => r.optimizer, (a, b) => canonicalJson(a) === canonicalJson(b), formatOptimizer);
  return pool[0]!;
}

/** The layers (numbers from 1) whose weight gradient the engine's gradient trials measure (Ensemble.gradTrials): every one. */
export function gradTrialLayers(widths: readonly number[]): number[] {
  return Array.from({ length: widths.length - 1 }, (_, i) => i + 1);
}

/** The sizes of the data a study runs on, for checkStudyData. */
export interface StudyDataSizes {
  trainCount: number;
  testCount: number;
  dim: number;
  classes: number;
}

/**
 * Checks a study against the size of its data (before any work): the model's input and output
 * widths, batch sizes within the training set, samples per trial within it.
 */
export function checkStudyData(study: Study, sizes: StudyDataSizes): void {
  const bad = (field: string, problem: string): never => refuse(study.file, field, problem);
  const w = study.widths;
  if (w[0] !== sizes.dim) bad('model.widths[0]', `is ${w[0]}, but the data's images have ${sizes.dim} pixels`);
  if (w[w.length - 1] !== sizes.classes) bad(`model.widths[${w.length - 1}]`, `is ${w[w.length - 1]}, but the data has ${sizes.classes} classes`);
  study.runs.forEach((r) =>
    r.spec.phases.forEach((p) => {
      if (p.batchSize > sizes.trainCount) bad(r.schedule !== undefined ? `train.schedules[${r.schedule - 1}]` : 'train.batchSizes', `holds batch size ${p.batchSize}, more than the ${sizes.trainCount} training images`);
    }),
  );
  study.grad.forEach((g, i) => {
    if (g.samplesPerTrial > sizes.trainCount) bad(`grad[${i}].samplesPerTrial`, `is ${g.samplesPerTrial}, more than the ${sizes.trainCount} training images`);
  });
}

/** The run of the study with this id. */
export function studyRun(study: Study, id: string): StudyRun {
  const r = study.runs.find((x) => x.id === id);
  if (!r) throw new BsxError('BSX_INVALID_ARGUMENT', `study ${study.name}: no run ${id}`);
  return r;
}
