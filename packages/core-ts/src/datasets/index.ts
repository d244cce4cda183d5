// Public API of the dataset layer: IDX parsing (format reference: Y. LeCun's
// MNIST page, http://yann.lecun.com/exdb/mnist/) and MNIST-layout labelled
// image datasets.

export {
  IDX_TYPE_CODES,
  parseIdx,
  readIdx,
  readIdxHeader,
  readIdxSync,
  type IdxArray,
  type IdxArrayOf,
  type IdxDataTypes,
  type IdxDtype,
} from './idx.js';
export {
  MNIST_MEAN,
  MNIST_NUM_CLASSES,
  MNIST_STD,
  findMnistFiles,
  labelHistogram,
  loadImageDataset,
  loadImageDatasetSync,
  loadMnist,
  loadMnistSync,
  mnistDir,
  normalize,
  peekMnist,
  type LabeledImages,
  type LoadImageDatasetOptions,
  type LoadMnistOptions,
  type MnistData,
  type Split,
} from './mnist.js';
export { FINGERPRINT_CACHE_FILE, fingerprintFiles, type FingerprintOptions } from './fingerprint.js';
