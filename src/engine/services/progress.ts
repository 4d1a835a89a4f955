/**
 * A one-line progress bar on a terminal (redrawn in place), or a line every 10% when the output
 * is a file or a pipe, so logs stay readable.
 */
export class ProgressBar {
  private lastDecile = -1;
  private readonly tty: boolean;
  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly out: NodeJS.WriteStream = process.stderr,
  ) {
    this.tty = Boolean(out.isTTY);
  }
  update(done: number, info = ''): void {
    const frac = this.total ? Math.min(1, done / this.total) : 1;
    if (this.tty) {
      const width = 28;
      const fill = Math.round(frac * width);
      this.out.write(`\r${this.label} [${'█'.repeat(fill)}${'·'.repeat(width - fill)}] ${done}/${this.total} ${info}\x1b[K`);
      if (done >= this.total) this.out.write('\n');
      return;
    }
    const decile = Math.floor(frac * 10);
    if (decile > this.lastDecile || done >= this.total) {
      this.lastDecile = decile;
      this.out.write(`${this.label} ${Math.round(frac * 100)}% (${done}/${this.total}) ${info}\n`);
    }
  }
}
