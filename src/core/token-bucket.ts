/** A token bucket: at most `rate` takes per second on average, bursts up to `rate`. Allocation-free. */
export class TokenBucket {
  private tokens: number;
  private last: number;
  constructor(
    private rate: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.tokens = rate;
    this.last = now();
  }

  setRate(rate: number): void {
    this.rate = rate;
    if (this.tokens > rate) this.tokens = rate;
  }

  take(): boolean {
    if (this.rate <= 0) return false;
    const t = this.now();
    const refill = ((t - this.last) * this.rate) / 1000;
    if (refill > 0) {
      this.tokens = Math.min(this.rate, this.tokens + refill);
      this.last = t;
    }
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
