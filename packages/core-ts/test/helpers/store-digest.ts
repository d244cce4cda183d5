// What a results folder holds, with the timing left out, for comparing two folders exactly:
// every run folder's metrics.csv (without samples_per_sec), summary.json (without seconds and
// samplesPerSec), spec.json (without createdAt), checkpoint state.json (without savedAt and the
// checksum that covers it) and the bytes of every checkpoint tensor; every gradient point.json
// as it is. Keys are paths relative to the folder.

import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

function withoutTiming(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(withoutTiming);
  if (v !== null && typeof v === 'object') {
    const o: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      if (k === 'seconds' || k === 'samplesPerSec' || k === 'createdAt' || k === 'savedAt' || k === 'checksum') continue;
      o[k] = withoutTiming(x);
    }
    return o;
  }
  return v;
}

function metricsWithoutTiming(text: string): string {
  const lines = text.trimEnd().split('\n');
  const header = lines[0]!.split(',');
  const t = header.indexOf('samples_per_sec');
  return lines.map((l) => l.split(',').filter((_, i) => i !== t).join(',')).join('\n');
}

/** The content of every run folder and gradient point under `root` (timing left out), by relative path. */
export function storeDigest(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const sub of ['runs', 'grad']) {
    const base = join(root, sub);
    if (!existsSync(base)) continue;
    for (const f of walk(base)) {
      const rel = relative(root, f);
      const name = f.slice(f.lastIndexOf('/') + 1);
      if (name === 'lock' || name.startsWith('lock.')) continue;
      if (name === 'metrics.csv') out[rel] = metricsWithoutTiming(readFileSync(f, 'utf8'));
      else if (name.endsWith('.json')) out[rel] = JSON.stringify(withoutTiming(JSON.parse(readFileSync(f, 'utf8'))));
      else if (statSync(f).size > 0) out[rel] = createHash('sha256').update(readFileSync(f)).digest('hex');
    }
  }
  return out;
}
