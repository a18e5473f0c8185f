/**
 * Joins the pictures of several ffmpeg outputs that were split from one decode (gray analysis copy,
 * extension images): each output delivers the same pts sequence in order, but on its own pipe and
 * so at its own pace. A picture is complete once every output has delivered its part; a part whose
 * partners never come (an output skipped a picture — not expected, but an encoder error could) is
 * dropped and counted instead of stalling the others.
 */
export class PictureJoiner<T extends { pts90k: number }> {
  private readonly queues: T[][];
  /** Parts discarded because some output had no picture with their pts. */
  unmatched = 0;

  constructor(readonly outputs: number, private readonly onPicture: (parts: T[]) => void) {
    if (!Number.isInteger(outputs) || outputs < 1) throw new RangeError('PictureJoiner needs at least one output');
    this.queues = Array.from({ length: outputs }, () => []);
  }

  push(output: number, part: T): void {
    const q = this.queues[output];
    if (!q) throw new RangeError(`no output ${output}`);
    q.push(part);
    while (this.queues.every((x) => x.length > 0)) {
      let newest = -Infinity;
      for (const x of this.queues) newest = Math.max(newest, x[0]!.pts90k);
      let complete = true;
      for (const x of this.queues) {
        if (x[0]!.pts90k < newest) {
          x.shift();
          this.unmatched++;
          complete = false;
        }
      }
      if (complete) this.onPicture(this.queues.map((x) => x.shift()!));
    }
  }

  /** Parts still waiting for their partners. */
  get pending(): number {
    return this.queues.reduce((n, q) => n + q.length, 0);
  }
}
