/**
 * The value types of the config file, each with its own message (`must be a duration such as
 * 500ms, ...`): durations in ms (at most the longest timer), sizes in bytes, counts, ports, HTTP
 * error statuses, listen endpoints. src/core/config-schema.ts puts them together.
 */
import { z } from 'zod';
import { MAX_TIMER_MS, parseDuration, parseSize } from './units.ts';
import { show } from './config-messages.ts';

const DURATION_PATTERN = '^\\d+(\\.\\d+)?(ms|s|m|h)$';
const SIZE_PATTERN = '^\\d+(B|KiB|MiB|GiB|KB|MB|GB)?$';

// A check without its own `error` inherits the message of the schema it is attached to, and a
// union whose other branch fails on type reports the surviving branch's issue, not the union's
// message. So every check below carries its own message.
export const atLeast = (min: number) => ({ error: (iss: { input?: unknown }) => `must be >= ${min}, got ${show(iss.input)}` });
export const atMost = (max: number) => ({ error: (iss: { input?: unknown }) => `must be <= ${max}, got ${show(iss.input)}` });

// Durations end up in timers; a longer one would fire after 1 ms (issue 10).
const tooLong = (iss: { input?: unknown }) =>
  `must be at most ${Math.floor(MAX_TIMER_MS / 3_600_000)}h (${MAX_TIMER_MS}ms, the longest timer Node and Deno keep), got ${show(iss.input)}`;

/**
 * Defaults are given as the file would spell them (`prefault`), so they run through the same
 * transform and show up as `default` in the JSON Schema (a plain `.default()` after a transform
 * is invisible there).
 */
export function duration(min = 0) {
  const hint = (iss: { input?: unknown }) =>
    `must be a duration such as 500ms, 2s or 1m, or whole milliseconds, got ${show(iss.input)}`;
  return z
    .union(
      [z.int({ error: hint }).min(0, atLeast(0)).max(MAX_TIMER_MS, { error: tooLong }), z.string().regex(new RegExp(DURATION_PATTERN), { error: hint })],
      { error: hint },
    )
    .transform((v, ctx) => {
      const ms = typeof v === 'number' ? v : (parseDuration(v) as number);
      if (ms < min) {
        ctx.addIssue({ code: 'custom', message: `must be at least ${min}ms, got ${show(v)}` });
        return z.NEVER;
      }
      if (ms > MAX_TIMER_MS) {
        ctx.addIssue({ code: 'custom', message: tooLong({ input: v }) });
        return z.NEVER;
      }
      return ms;
    });
}

export function size(min: number, max: number) {
  const hint = (iss: { input?: unknown }) => `must be a size such as 16KiB or 1MiB, or whole bytes, got ${show(iss.input)}`;
  return z
    .union([z.int({ error: hint }).min(0, atLeast(0)), z.string().regex(new RegExp(SIZE_PATTERN), { error: hint })], {
      error: hint,
    })
    .transform((v, ctx) => {
      const bytes = typeof v === 'number' ? v : (parseSize(v) as number);
      if (bytes < min || bytes > max) {
        ctx.addIssue({ code: 'custom', message: `must be between ${min} and ${max} bytes, got ${show(v)}` });
        return z.NEVER;
      }
      return bytes;
    });
}

export function count(min: number, dflt: number) {
  return whole(min).default(dflt);
}

/** A whole number >= `min`, without a default (for a key whose default depends on others). */
export function whole(min: number) {
  return z
    .int({ error: (iss) => `must be a whole number, got ${show(iss.input)}` })
    .min(min, atLeast(min))
    .max(1_000_000_000, atMost(1_000_000_000));
}

/** A number strictly between `above` and `below` (either side open when undefined). */
export function fraction(dflt: number, above: number, below?: number) {
  const range = below === undefined ? `> ${above}` : `> ${above} and < ${below}`;
  const error = (iss: { input?: unknown }) => `must be a number ${range}, got ${show(iss.input)}`;
  const n = z.number({ error }).gt(above, { error });
  return (below === undefined ? n : n.lt(below, { error })).default(dflt);
}

const port = (dflt: number) =>
  z
    .int({ error: (iss) => `must be a port number, got ${show(iss.input)}` })
    .min(0, atLeast(0))
    .max(65535, atMost(65535))
    .default(dflt);

export const endpoint = (dflt: number) =>
  z.strictObject({
    host: z.string().min(1).default('0.0.0.0').describe('address to listen on'),
    port: port(dflt).describe('TCP port; 0 picks a free one'),
  });

export const status = (dflt: number) =>
  z
    .int({ error: (iss) => `must be an HTTP error status (400-599), got ${show(iss.input)}` })
    .min(400, { error: (iss) => `must be an HTTP error status (400-599), got ${show(iss.input)}` })
    .max(599, { error: (iss) => `must be an HTTP error status (400-599), got ${show(iss.input)}` })
    .default(dflt);

