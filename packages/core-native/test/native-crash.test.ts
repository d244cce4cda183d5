// Regression tests for the ways JavaScript once crashed the native engine: a method called on
// the wrong object, user code re-entering train() while a call checked its arguments, a worker
// thread stopped in the middle of a call, bad BSX_* environment variables, and allocations that
// fail. Each scenario (fixtures/crash-scenarios.cjs) runs in a child process, so that a crash
// fails the test instead of ending the test runner; the child must exit normally, and the
// error the addon threw (class, `code`, message naming the function) is checked here.
// Needs the addon built first (pnpm --filter @bsx/core-native run build); a build elsewhere is
// tested with BSX_NATIVE_PATH.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const scenarios = fileURLToPath(new URL('./fixtures/crash-scenarios.cjs', import.meta.url));

interface Call {
  label: string;
  threw: boolean;
  name?: string;
  code?: string;
  message?: string;
  value?: unknown;
}
interface Result {
  calls: Call[];
  [key: string]: unknown;
}

const ENGINE_VARIABLES = ['BSX_THREADS', 'BSX_SIMD', 'BSX_SMALL_BATCH_MAX'];

/**
 * Runs one scenario in a child process (under `ulimit -v limitKb` when given) and returns what
 * its calls did; fails unless the child exited normally.
 */
function run(scenario: string, opts: object = {}, vars: Record<string, string> = {}, limitKb?: number): Result {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of ENGINE_VARIABLES) delete env[name];
  Object.assign(env, vars);
  const args = [scenarios, scenario, JSON.stringify(opts)];
  const child =
    limitKb === undefined
      ? spawnSync(process.execPath, args, { env, encoding: 'utf8', timeout: 90_000 })
      : spawnSync('bash', ['-c', `ulimit -v ${limitKb} && exec "$0" "$@"`, process.execPath, ...args], {
          env,
          encoding: 'utf8',
          timeout: 90_000,
        });
  const tail = `${scenario}: status ${child.status}, signal ${child.signal}\n${child.stderr.slice(-3000)}`;
  expect(child.signal, tail).toBeNull();
  expect(child.status, tail).toBe(0);
  const line = child.stdout.split('\n').find((l) => l.startsWith('RESULT '));
  expect(line, tail).toBeDefined();
  return JSON.parse(line!.slice('RESULT '.length)) as Result;
}

function callsLabelled(result: Result, label: string): Call[] {
  const found = result.calls.filter((c) => c.label === label);
  expect(found.length, `no call '${label}' in ${JSON.stringify(result.calls)}`).toBeGreaterThan(0);
  return found;
}

/** Every call with this label threw an error of this class, code and message. */
function expectThrew(result: Result, label: string, name: string, code: string, message: string | RegExp): void {
  for (const c of callsLabelled(result, label)) {
    expect(c, label).toMatchObject({ threw: true, name, code });
    if (typeof message === 'string') expect(c.message).toBe(message);
    else expect(c.message).toMatch(message);
  }
}

function expectReturned(result: Result, label: string): Call {
  const [c] = callsLabelled(result, label);
  expect(c, `${label}: ${c!.message}`).toMatchObject({ threw: false });
  return c!;
}

const finite = (xs: unknown): boolean => Array.isArray(xs) && xs.length > 0 && xs.every((x) => Number.isFinite(x));

describe('1. a method or accessor called on the wrong object', () => {
  it('the Ensemble.backend getter on a Dataset', () => {
    const r = run('receiver-backend-on-dataset');
    expectThrew(r, 'Ensemble.backend on a Dataset', 'TypeError', 'BSX_INVALID_ARGUMENT',
      'Ensemble.backend: called on an object, not on a native Ensemble');
  });

  it('the Dataset.dim getter on an Ensemble', () => {
    const r = run('receiver-dim-on-ensemble');
    expectThrew(r, 'Dataset.dim on an Ensemble', 'TypeError', 'BSX_INVALID_ARGUMENT',
      'Dataset.dim: called on an object, not on a native Dataset');
  });

  const fakes = ['Object.create(Dataset.prototype)', 'Object.setPrototypeOf({}, Dataset.prototype)', 'an Ensemble with Dataset.prototype'];
  it('train() and forward() given an object with Dataset.prototype that is no native Dataset', () => {
    const t = run('receiver-train-fake-dataset');
    const f = run('receiver-forward-fake-dataset');
    for (const fake of fakes) {
      expectThrew(t, `train(${fake})`, 'TypeError', 'BSX_INVALID_ARGUMENT',
        'Ensemble.train: dataset must be a native Dataset, got an object');
      expectThrew(f, `forward(${fake})`, 'TypeError', 'BSX_INVALID_ARGUMENT',
        'Ensemble.forward: dataset must be a native Dataset, got an object');
    }
  });
});

describe('2. user code run while train() checks its arguments', () => {
  it('Symbol.hasInstance on Dataset never runs; a second train() is refused; the losses are those of trains run one by one', () => {
    const r = run('reentry-has-instance');
    expect(r.hookCalls).toBe(0);
    expectThrew(r, 'train while busy', 'Error', 'BSX_BUSY', /^Ensemble\.train: the ensemble is busy/);
    expect(callsLabelled(r, 'train while busy')).toHaveLength(5);
    expect(finite(r.losses)).toBe(true);
    expect(r.losses).toHaveLength(10);
    // bit for bit: two trains racing on one ensemble give other losses
    expect(r.losses).toEqual(r.reference);
  });

  it('a Proxy of a Dataset (its getPrototypeOf trap starts a train()) is refused without running the trap', () => {
    const r = run('reentry-proxy-trap');
    expect(r.trapCalls).toBe(0);
    expectThrew(r, 'train(proxy)', 'TypeError', 'BSX_INVALID_ARGUMENT',
      'Ensemble.train: dataset must be a native Dataset, got an object');
    expect(finite(r.losses)).toBe(true);
  });
});

describe('3. a worker thread stopped while its train() runs', () => {
  it('terminate(), process.exit() and an uncaught throw in the worker, three times each; the process goes on', () => {
    const r = run('workers', { rounds: 3 });
    const workers = r.workers as { mode: string; round: number; busy: boolean; finished: boolean; error: string | null; exitCode: number }[];
    expect(workers).toHaveLength(9);
    for (const w of workers) {
      expect(w.busy, `${w.mode} #${w.round}`).toBe(true); // train() was running
      expect(w.finished, `${w.mode} #${w.round}: train() ended before the worker was stopped`).toBe(false);
      expect(w.exitCode).toBe(w.mode === 'exit' ? 0 : 1);
      expect(w.error).toBe(w.mode === 'throw' ? 'the worker fails while train() runs' : null);
    }
    expectReturned(r, 'train after the workers');
    expect(finite(r.losses)).toBe(true);
  });

  it('a worker terminated in a loop of synchronous calls (getTensor, a getter run by setOptimizer, quick or slow, new Ensemble, a failing call)', () => {
    const r = run('worker-sync-calls', { rounds: 2 });
    const workers = r.workers as { loop: string; exitCode: number }[];
    expect(workers).toHaveLength(10);
    for (const w of workers) expect(w.exitCode, w.loop).toBe(1);
    expect(finite(r.losses)).toBe(true);
  });
});

describe('4. bad BSX_* environment variables', () => {
  // the calls that read each variable, by the name their message starts with
  const readers: Record<string, Record<string, string>> = {
    BSX_THREADS: { info: 'info', setThreads: 'setThreads', 'gemm.threads': 'threads', 'gemm.sgemm': 'sgemm',
      'await train': 'Ensemble.train', 'await train (batch 4)': 'Ensemble.train', forward: 'Ensemble.forward' },
    BSX_SIMD: { info: 'info', 'gemm.simdPath': 'simdPath', 'gemm.sgemm': 'sgemm', 'await train': 'Ensemble.train',
      forward: 'Ensemble.forward' },
    BSX_SMALL_BATCH_MAX: { 'gemm.smallBatchMax': 'smallBatchMax', 'await train': 'Ensemble.train',
      stepPath: 'Ensemble.stepPath' },
  };
  it.each([
    ['BSX_THREADS', 'abc'],
    ['BSX_THREADS', '0'],
    ['BSX_THREADS', '-3'],
    ['BSX_THREADS', '100000'],
    ['BSX_SIMD', 'bogus'],
    ['BSX_SMALL_BATCH_MAX', 'x'],
  ])('%s=%s: the calls that read it throw BSX_INVALID_ENV naming the call and the variable', (name, value) => {
    const r = run('env', {}, { [name]: value });
    const setting = `${name}=${value}`;
    for (const [label, fn] of Object.entries(readers[name]!)) {
      const escaped = `${fn}: ${setting}:`.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      expectThrew(r, label, 'Error', 'BSX_INVALID_ENV', new RegExp(`^${escaped} `));
    }
    // whatever else failed, failed the same way; the ensemble itself is made
    for (const c of r.calls.filter((x) => x.threw)) {
      expect(c, c.label).toMatchObject({ name: 'Error', code: 'BSX_INVALID_ENV' });
      expect(c.message).toContain(setting);
    }
    expectReturned(r, 'new Ensemble');
    expectReturned(r, 'init');
  });
});

describe('5. allocations that fail', () => {
  // [784, 4096, 4096, 10]: 20,037,642 parameters per replica; 4 replicas: 320 MB per copy of
  // the parameters (the ensemble holds two, parameters and gradients). The limit on the address
  // space is the child's own virtual size once the ensemble is built and has trained (measured
  // by a first run without a limit: node's and V8's reservations differ between versions and
  // machines) plus half a copy of the parameters: snapshot() needs a whole copy and Adam's
  // state two, so both fail by at least 160 MB, and the 160 MB left keep node and V8 working.
  const replicas = 4;
  const copyKb = Math.ceil((replicas * 20_037_642 * 4) / 1024);
  it.skipIf(process.platform !== 'linux')(
    'under ulimit -v, snapshot() and setOptimizer({name: adam}) throw BSX_OUT_OF_MEMORY and the ensemble still trains',
    () => {
      const measured = run('oom-measure', { replicas }).vmSizeKb as number;
      expect(measured).toBeGreaterThan(copyKb * 2);
      const r = run('oom', { replicas }, {}, measured + Math.floor(copyKb / 2));
      expectThrew(r, 'snapshot', 'Error', 'BSX_OUT_OF_MEMORY', 'Ensemble.snapshot: out of memory');
      expectThrew(r, 'setOptimizer adam', 'Error', 'BSX_OUT_OF_MEMORY', 'Ensemble.setOptimizer: out of memory');
      // the optimiser is left as it was
      expect(expectReturned(r, 'getOptimizer').value).toBe('sgd');
      for (const label of ['resetOptimizerState', 'setOptimizerSteps']) {
        const [c] = callsLabelled(r, label);
        if (c!.threw) expect(c).toMatchObject({ name: 'Error', code: 'BSX_OUT_OF_MEMORY' });
      }
      expectReturned(r, 'setOptimizer sgd');
      expectReturned(r, 'train after');
      expect(finite(r.losses)).toBe(true);
      expect(r.losses).toHaveLength(replicas);
      expect(r.forwardFinite).toBe(true);
    },
  );
});

describe('found by the fuzzer (native-fuzz.test.ts)', () => {
  it('the class constructors called without new throw a TypeError with a code', () => {
    const r = run('call-without-new');
    expectThrew(r, 'Ensemble()', 'TypeError', 'BSX_INVALID_ARGUMENT', "Ensemble: a class constructor; call it with 'new'");
    expectThrew(r, 'Dataset()', 'TypeError', 'BSX_INVALID_ARGUMENT', "Dataset: a class constructor; call it with 'new'");
  });

  it('forward() whose result could not be allocated (2^20 x 65536 floats) throws BSX_TOO_LARGE', () => {
    const r = run('forward-too-large');
    expectThrew(r, 'forward', 'RangeError', 'BSX_TOO_LARGE',
      /^Ensemble\.forward: the result \(replicas x batchSize x classes = 68719476736 floats, 274\.9 GB\) is larger than a typed array can be/);
    expectReturned(r, 'forward (small)');
    expect(r.smallLength).toBe(65536);
  });
});
