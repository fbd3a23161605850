/** Durations (`500ms`, `2s`, `1m`, or integer milliseconds) and sizes (`16KiB`, or integer bytes). */

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/;
const DURATION_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Returns milliseconds, or undefined when the text is not a duration. */
export function parseDuration(text: string): number | undefined {
  const m = DURATION.exec(text.trim());
  if (!m) return undefined;
  return Math.round(Number(m[1]) * (DURATION_MS[m[2] as string] as number));
}

const SIZE = /^(\d+)(B|KiB|MiB|GiB|KB|MB|GB)?$/;
const SIZE_BYTES: Record<string, number> = {
  B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3, KB: 1000, MB: 1000 ** 2, GB: 1000 ** 3,
};

/** Returns bytes, or undefined when the text is not a size. */
export function parseSize(text: string): number | undefined {
  const m = SIZE.exec(text.trim());
  if (!m) return undefined;
  return Number(m[1]) * (SIZE_BYTES[m[2] ?? 'B'] as number);
}

/** Retry-After carries whole seconds, rounded up; 0 means omit the header. */
export function retryAfterSeconds(ms: number): number {
  return Math.ceil(ms / 1000);
}

/**
 * The longest delay setTimeout keeps on Node and Deno (2^31-1 ms, about 24.8 days); a longer one
 * fires after 1 ms, so no duration in the config may exceed it.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;
