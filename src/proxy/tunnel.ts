/** Two spliced sockets after a 101; closed when either side closes, or after `upgrade.idleTimeout` without a byte either way. */
import type { Duplex } from 'node:stream';

/** Longest delay setTimeout takes as given (a longer one fires at once). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** What a tunnel reports to, and reads its idle timeout from (src/proxy/upgrade.ts). */
export interface TunnelOwner {
  readonly idleTimeout: number;
  opened(t: Tunnel): void;
  closed(t: Tunnel, idle: boolean): void;
}

export class Tunnel {
  private last = performance.now();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;

  constructor(
    private readonly client: Duplex,
    private readonly upstream: Duplex,
    private readonly owner: TunnelOwner,
  ) {
    owner.opened(this);
    const touch = () => {
      this.last = performance.now();
    };
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
    upstream.on('data', touch);
    client.on('data', touch);
    upstream.pipe(client);
    client.pipe(upstream);
    upstream.once('close', () => this.close(false));
    client.once('close', () => this.close(false));
    this.arm();
  }

  /** (Re)starts the idle timer from the last byte seen, for the current `idleTimeout`. */
  arm(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const idle = this.owner.idleTimeout;
    if (this.closed || idle === 0) return;
    // One timer per tunnel, not one reset per chunk: on firing it checks when the last byte was.
    const left = Math.max(1, idle - (performance.now() - this.last));
    this.timer = setTimeout(this.check, Math.min(left, MAX_TIMER_MS));
    this.timer.unref?.();
  }

  private readonly check = (): void => {
    this.timer = undefined;
    const idle = this.owner.idleTimeout;
    if (this.closed || idle === 0) return;
    if (performance.now() - this.last >= idle) this.close(true);
    else this.arm();
  };

  private close(idle: boolean): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.owner.closed(this, idle);
    this.client.destroy();
    this.upstream.destroy();
  }
}
