// @bsx/core: datasets, the replicated-MLP engine, experiments, the run store, findings and
// reports. The public API is this explicit list; the raw native binding, the engine handles
// behind Ensemble and Dataset, the lock and atomic-write helpers of the run store and the
// findings' internal helpers are not part of it.

export const version = '0.1.0';

export { BsxError } from './errors.js';
export type { BsxErrorCode } from './errors.js';
export { IDX_TYPE_CODES, parseIdx, readIdx, readIdxHeader, readIdxSync } from './datasets/idx.js';
export type { IdxArray, IdxArrayOf, IdxDataTypes, IdxDtype } from './datasets/idx.js';
export { MNIST_MEAN, MNIST_NUM_CLASSES, MNIST_STD, findMnistFiles, labelHistogram, loadImageDataset, loadImageDatasetSync, loadMnist, loadMnistSync, mnistDir, normalize, peekMnist } from './datasets/mnist.js';
export type { LabeledImages, LoadImageDatasetOptions, LoadMnistOptions, MnistData, Split } from './datasets/mnist.js';
export { FINGERPRINT_CACHE_FILE, fingerprintFiles } from './datasets/fingerprint.js';
export type { FingerprintOptions } from './datasets/fingerprint.js';
export { Tensor } from './engine/tensor.js';
export { Dataset } from './engine/dataset.js';
export type { NormalizationOptions } from './engine/dataset.js';
export { DEFAULT_WIDTHS, Ensemble, stat } from './engine/ensemble.js';
export type { EnsembleOptimizer, EnsembleOptions, EvalResult, LayerStats, TrialHistograms, TrialStats } from './engine/ensemble.js';
export { formatOptimizer, normalizeOptimizer, optimizerDescriptor, optimizerName, optimizerStateSlots, optimizers, parseOptimizer, resolveOptimizer, sameOptimizer } from './engine/optimizers.js';
export type { HyperparameterValue, OptimizerDescriptor, OptimizerOptions, OptimizerSpec, ResolvedOptimizer } from './engine/optimizers.js';
export { engineInfo, resolveDevice, setThreads } from './engine/device.js';
export type { DeviceKind, DeviceRequest, EngineInfo, ResolvedDevice } from './engine/device.js';
export { epochPermutation, philox4x32, seedKey, uniformAt } from './rng/philox.js';
export { weightMetrics } from './experiments/metrics.js';
export type { WeightMetrics } from './experiments/metrics.js';
export { captureCheckpoint, ensembleOptimizer, normalizeSpec, restoreCheckpoint, train } from './experiments/train.js';
export type { EpochEndContext, EpochMetrics, InitialMetrics, Phase, ResumeState, SeedResult, TensorSlot, TrainCheckpoint, TrainEvent, TrainOptions, TrainResult, TrainSpec } from './experiments/train.js';
export { formatPhases, parsePhases } from './experiments/phases.js';
export { runTraining } from './experiments/run.js';
export type { RunStatus, StoredRunOptions, StoredRunResult } from './experiments/run.js';
export { checkMemory, estimateGradStudyMemory, estimateTrainingMemory, formatBytes, machineMemory, optimizerStateCopies } from './experiments/memory.js';
export type { GradStudyMemoryInput, MachineMemory, MemoryEstimate, MemoryPart, MemoryPlace, TrainingMemoryInput } from './experiments/memory.js';
export { DEFAULT_BATCH_SIZES, REGIME_EPOCHS, gradStudySettings, gradientStudy, regimeModel, trialSamples } from './experiments/grad-study.js';
export type { GradStudyEvent, GradStudyOptions, GradStudyPoint, GradStudyResult, GradStudySettings, GradStudySpec, NormStats, PowerLawFits, RegimeModel, RegimeName } from './experiments/grad-study.js';
export { CHECKPOINT_DIR, EXPORTS_DIR, METRICS_FILE, RunHandle, RunStore, SPEC_FILE, SUMMARY_FILE, describeRun, formatCsvNumber, formatMetricsCsv, metricsHeader, normalizeRunKey, parseCsvNumber, parseMetricsCsv, runHash } from './store/run-store.js';
export type { Checkpoint, CheckpointSlot, CheckpointTensor, MetricsRow, RunData, RunKey, RunOpenOptions, RunSpecFile } from './store/run-store.js';
export { canonicalJson, specHash } from './store/hash.js';
export { decodeNpy, encodeNpy } from './io/npy.js';
export type { NpyArray, NpyArrayOf, NpyData, NpyDataTypes, NpyDtype } from './io/npy.js';
export { histogram, linearEdges, mean, quantile, signedLogEdges, std, summarize } from './stats/descriptive.js';
export type { Histogram, Summary } from './stats/descriptive.js';
export { incompleteBeta, tCdf, tQuantile } from './stats/tdist.js';
export { fitLine, fitPowerLaw } from './stats/regression.js';
export type { LineFit, PowerLawFit } from './stats/regression.js';
export { estimateNoiseScale } from './stats/noise-scale.js';
export type { NoiseScaleEstimate, NoiseScaleGroup } from './stats/noise-scale.js';
export { crossoverBatch, expectedNorm2, localExponent, predictedStepNorm } from './stats/noise-model.js';
export type { NoiseModel, Reduction } from './stats/noise-model.js';
export { bestSteps, criticalBatchInterval, fitCriticalBatch, stepsToTarget } from './stats/critical-batch.js';
export type { BatchRuns, CriticalBatchFit, MetricCurve, SeedCrossing, TargetCrossing } from './stats/critical-batch.js';
export type { FigureSpec, FindingResult, GradStudyRequest, Measurement, ProfileName, RunRequest, SuiteResults, Verdict } from './findings/types.js';
export { PROFILES, resolveProfile, scaleEpochs } from './findings/profiles.js';
export type { Profile } from './findings/profiles.js';
export { catalog } from './findings/catalog.js';
export type { CatalogRun, SuiteRunKey } from './findings/catalog.js';
export type { Finding, RegimeKey } from './findings/finding.js';
export { FINDINGS, findingById } from './findings/index.js';
export { SUITE_FILE, checkSuiteMemory, defaultSuiteChunk, estimateSuiteMemory, measureSpeed, readGradPoint, readSuiteFile, runSuite, writeSuiteFile } from './findings/suite.js';
export type { PlanItem, PlanStatus, SpeedModel, SuiteData, SuiteEvent, SuiteFile, SuiteOptions, SuiteResult, SuiteSize } from './findings/suite.js';
export { tailShare } from './findings/f07-value-tails.js';
export { spearman, threshold } from './findings/util.js';
export type { NativeError } from '@bsx/core-native';
export * as report from './report/index.js';
export { writeReport, buildHtmlReport, buildMarkdownSummary, renderFigure, type ReportInput, type ReportMachine, type WrittenReport } from './report/index.js';
