// The journal of a results folder: what each process did, one JSON line per event, in a file of
// its own (journal/<host>-<pid>-<start>.jsonl: processes on several hosts never write the same
// file). It tells `bsx sweep status` who ran what, and shows that no unit of work was completed
// twice. A line cut short by a kill is skipped when read; any other damage is reported.

import { appendFile, mkdir, readdir, readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { fileError, integer, nonEmptyString, nullable, number, object, oneOf, string, type Check } from '../store/validate.js';

export const JOURNAL_DIR = 'journal';

export type JournalEventKind = 'start' | 'done' | 'reused' | 'failed' | 'run-finished' | 'point-finished';

export interface JournalEntry {
  time: string;
  host: string;
  pid: number;
  /** `k/N`, or null for a process that ran every unit. */
  shard: string | null;
  event: JournalEventKind;
  /** The unit of work (its id). */
  unit: string;
  /** run-finished: the run's folder name (its hash); point-finished: the point's folder. */
  detail?: string;
  seconds?: number;
  error?: string;
}

const entryCheck = object(
  {
    time: string,
    host: nonEmptyString,
    pid: integer(1),
    shard: nullable(string),
    event: oneOf<JournalEventKind>('start', 'done', 'reused', 'failed', 'run-finished', 'point-finished'),
    unit: nonEmptyString,
  },
  { detail: string, seconds: number, error: string },
) as unknown as Check<JournalEntry>;

/** Appends this process's events to its own file. */
export class Journal {
  readonly file: string;
  private ready: Promise<void> | undefined;

  constructor(
    readonly dir: string,
    private readonly shard: string | null,
  ) {
    this.file = join(dir, JOURNAL_DIR, `${hostname().replace(/[^A-Za-z0-9._-]/g, '_')}-${process.pid}-${Date.now()}.jsonl`);
  }

  async write(e: Omit<JournalEntry, 'time' | 'host' | 'pid' | 'shard'>): Promise<void> {
    this.ready ??= mkdir(join(this.dir, JOURNAL_DIR), { recursive: true }).then(() => undefined);
    await this.ready;
    const line: JournalEntry = { time: new Date().toISOString(), host: hostname(), pid: process.pid, shard: this.shard, ...e };
    await appendFile(this.file, `${JSON.stringify(line)}\n`);
  }
}

/** Every event of every journal file of a results folder, in time order. */
export async function readJournal(dir: string): Promise<JournalEntry[]> {
  let files: string[];
  try {
    files = (await readdir(join(dir, JOURNAL_DIR))).filter((f) => f.endsWith('.jsonl')).sort();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  const out: JournalEntry[] = [];
  for (const f of files) {
    const path = join(dir, JOURNAL_DIR, f);
    const lines = (await readFile(path, 'utf8')).split('\n');
    const last = lines.length - 1; // after the final newline: '' (or a line cut short)
    lines.forEach((line, i) => {
      if (line === '') return;
      let v: unknown;
      try {
        v = JSON.parse(line);
      } catch (e) {
        if (i === last) return; // the process was killed while writing it
        throw fileError(path, `line ${i + 1} is not valid JSON`, { hint: 'delete the file (it only records what a process did)' }, e);
      }
      try {
        out.push(entryCheck(v, ''));
      } catch (e) {
        throw fileError(path, `line ${i + 1}: ${(e as Error).message}`, { hint: 'delete the file (it only records what a process did)' }, e);
      }
    });
  }
  return out.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));
}
