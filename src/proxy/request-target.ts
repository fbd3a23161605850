/**
 * What a request must pass before admission, and what portcullis answers itself when it does not:
 * its target is normalized (src/core/path-normalize.ts) so routes match what the app will run; a
 * second Host header is a 400 (RFC 9112 §3.2: the app cannot tell which one was meant); and
 * `OPTIONS *` asks the server itself, which is portcullis (undici will not send a path `*`, and an
 * app behind a proxy has no use for it), so it gets a bare 200. None of these reach the app, take
 * a permit, or count as an upstream fault.
 */
import type { IncomingMessage } from 'node:http';
import { PATH_PROBLEMS, createPathNormalizer, isPathProblem, type PathNormalizer } from '../core/path-normalize.ts';
import type { Config } from '../core/config-schema.ts';
import type { Configurable } from '../core/running-config.ts';
import { SERVER_OPTIONS, jsonError, type Answer } from '../core/wire.ts';

/** A response portcullis writes itself, before admission. */
export interface OwnAnswer extends Answer {
  /** The error code (`x-portcullis-error`), undefined for a 200. */
  readonly error: string | undefined;
  /** Whether the connection is closed after it. */
  readonly close: boolean;
}

function badRequest(error: string, detail: string): OwnAnswer {
  return Object.freeze({ ...jsonError(400, error, { detail }), error, close: true });
}

const BAD_HOST = badRequest('bad_host', 'more than one Host header');
const OPTIONS_ANSWER: OwnAnswer = Object.freeze({ ...SERVER_OPTIONS, error: undefined, close: false });
const BAD_PATH = new Map(Object.values(PATH_PROBLEMS).map((p) => [p, badRequest(p.problem, p.detail)]));

function hostCount(raw: readonly string[]): number {
  let n = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.length === 4 && name.toLowerCase() === 'host') n++;
  }
  return n;
}

/** The normalized origin-form target to match and forward, or the answer portcullis gives instead. */
export function checkTarget(req: IncomingMessage, normalize: PathNormalizer): string | OwnAnswer {
  if (hostCount(req.rawHeaders) > 1) return BAD_HOST;
  const url = req.url ?? '/';
  if (url === '*' && req.method === 'OPTIONS') return OPTIONS_ANSWER;
  const target = normalize(url);
  return isPathProblem(target) ? (BAD_PATH.get(target) as OwnAnswer) : target;
}

/** `checkTarget` under the path rules in force (config `paths`), rebuilt once per applied config. */
export class RequestTargets implements Configurable {
  private normalize: PathNormalizer;

  constructor(paths: Config['paths']) {
    this.normalize = createPathNormalizer(paths);
  }

  apply(config: Config): void {
    this.normalize = createPathNormalizer(config.paths);
  }

  check(req: IncomingMessage): string | OwnAnswer {
    return checkTarget(req, this.normalize);
  }
}
