// A one-line progress bar on stderr with ETA and throughput. Drawn only when stderr is a
// terminal; otherwise it prints nothing, so that logs and pipes stay clean.

export interface ProgressOptions {
  /** Total units of work (e.g. steps over all epochs). */
  total: number;
  label?: string;
  stream?: NodeJS.WriteStream;
  /** Force drawing even when the stream is not a TTY. */
  force?: boolean;
}

function fmtDuration(sec: number): string {
  if (!Number.isFinite(sec) || sec < 0) return '--:--';
  const s = Math.round(sec);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = s % 60;
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${String(ss).padStart(2, '0')}` : `${m}:${String(ss).padStart(2, '0')}`;
}

export class ProgressBar {
  private readonly total: number;
  private readonly stream: NodeJS.WriteStream;
  private readonly enabled: boolean;
  private readonly start = performance.now();
  private label: string;
  private done = 0;
  private lastDraw = 0;

  constructor(opts: ProgressOptions) {
    this.total = Math.max(1, opts.total);
    this.stream = opts.stream ?? process.stderr;
    this.enabled = opts.force === true || this.stream.isTTY === true;
    this.label = opts.label ?? '';
  }

  /** Sets the amount done (absolute) and an optional status text; redraws at most 10x/s. */
  update(done: number, status = '', force = false): void {
    this.done = Math.min(this.total, Math.max(0, done));
    if (!this.enabled) return;
    const now = performance.now();
    if (!force && now - this.lastDraw < 100 && this.done < this.total) return;
    this.lastDraw = now;
    const frac = this.done / this.total;
    const elapsed = (now - this.start) / 1000;
    const eta = frac > 0 ? (elapsed * (1 - frac)) / frac : Number.NaN;
    const cols = this.stream.columns ?? 100;
    const head = `${this.label} ${(frac * 100).toFixed(1).padStart(5)}% `;
    const tail = ` ${fmtDuration(elapsed)}<${fmtDuration(eta)} ${status}`;
    const width = Math.max(10, Math.min(40, cols - head.length - tail.length - 3));
    const filled = Math.round(frac * width);
    const line = `${head}[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]${tail}`;
    this.stream.write(`\r${line.slice(0, cols - 1).padEnd(Math.min(cols - 1, line.length))}\x1b[K`);
  }

  setLabel(label: string): void {
    this.label = label;
  }

  /** Prints a line above the bar. */
  log(line: string): void {
    if (this.enabled) this.stream.write('\r\x1b[K');
    this.stream.write(`${line}\n`);
    if (this.enabled) {
      this.lastDraw = 0;
      this.update(this.done);
    }
  }

  finish(): void {
    if (this.enabled) this.stream.write('\r\x1b[K');
  }
}
