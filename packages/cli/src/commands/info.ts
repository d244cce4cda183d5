// bsx info: the version, the backends compiled in, the CPU and CUDA as the engine sees them.

import { engineInfo, version } from '@bsx/core';

export function infoCommand(opts: { json?: boolean }): void {
  const info = engineInfo();
  if (opts.json) {
    process.stdout.write(`${JSON.stringify({ bsx: version, ...info }, null, 2)}\n`);
    return;
  }
  const cuda = info.cuda.available
    ? `${info.cuda.name} (sm_${(info.cuda.computeCapability ?? '').replace('.', '')}, ${(
        (info.cuda.totalMemoryBytes ?? 0) / 2 ** 30
      ).toFixed(1)} GiB, ${info.cuda.multiprocessors} SMs)`
    : `unavailable (${info.cuda.reason})`;
  const lines = [
    `bsx ${version} (engine ${info.version}, N-API ${info.napiVersion}, node ${process.version})`,
    `backends compiled: ${info.backendsCompiled.join(', ')}`,
    `cpu: ${info.cpu.brand || info.cpu.vendor}`,
    `cpu features: ${info.cpu.features.join(' ') || '(none detected)'}`,
    `cpu kernels: ${info.cpu.simdPath} (gemm: ${info.cpu.gemmKernel})`,
    `threads: ${info.cpu.threads}${process.env.BSX_THREADS ? ' (BSX_THREADS)' : ''}`,
    `subnormals: ${info.cpu.flushDenormals ? 'flushed to zero (FTZ/DAZ; BSX_FTZ=0 keeps them)' : 'kept (IEEE)'}`,
    `cuda: ${cuda}`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}
