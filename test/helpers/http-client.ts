/**
 * Fires many HTTP requests at once, each on its own socket (a fresh node:http agent without
 * keep-alive and without a socket limit), so N requests really mean N open connections at the
 * sidecar. Never throws for a failed request: the error is part of the result, so a test can
 * count every outcome (admitted + rejected + failed = sent).
 */
import http from 'node:http';

export interface RequestSpec {
  path: string;
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** Source address (127.0.0.x) to look like a different client. */
  localAddress?: string;
  /** Give up after this long (the socket is destroyed). */
  timeoutMs?: number;
}

export interface Result {
  i: number;
  status: number | undefined;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** Error code or message when there was no complete response. */
  error: string | undefined;
  ms: number;
}

/** One request on the given agent (a fresh one when omitted). */
export function request(port: number, spec: RequestSpec, agent?: http.Agent, i = 0): Promise<Result> {
  const started = Date.now();
  const ownAgent = agent ?? new http.Agent({ keepAlive: false });
  return new Promise<Result>((resolve) => {
    let settled = false;
    const done = (r: Omit<Result, 'i' | 'ms'>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (!agent) ownAgent.destroy();
      resolve({ i, ms: Date.now() - started, ...r });
    };
    const req = http.request({
      host: '127.0.0.1',
      port,
      path: spec.path,
      method: spec.method ?? 'GET',
      headers: spec.headers,
      agent: ownAgent,
      ...(spec.localAddress ? { localAddress: spec.localAddress } : {}),
    });
    const timer = setTimeout(() => {
      req.destroy(new Error('client timeout'));
    }, spec.timeoutMs ?? 30_000);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => done({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8'), error: undefined }));
      res.on('error', (err: NodeJS.ErrnoException) =>
        done({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8'), error: err.code ?? err.message }),
      );
      res.on('aborted', () =>
        done({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8'), error: 'aborted' }),
      );
    });
    req.on('error', (err: NodeJS.ErrnoException) => done({ status: undefined, headers: {}, body: '', error: err.code ?? err.message }));
    req.end(spec.body);
  });
}

/**
 * Sends `n` requests at the same time, each on its own connection, and returns every outcome
 * in order. `spec` may depend on the index.
 */
export async function fire(port: number, n: number, spec: RequestSpec | ((i: number) => RequestSpec)): Promise<Result[]> {
  const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity, maxTotalSockets: Infinity });
  try {
    return await Promise.all(Array.from({ length: n }, (_, i) => request(port, typeof spec === 'function' ? spec(i) : spec, agent, i)));
  } finally {
    agent.destroy();
  }
}

/** Counts results by status (`error` for no response). */
export function tally(results: Result[]): Record<string, number> {
  const t: Record<string, number> = {};
  for (const r of results) {
    const k = r.status === undefined ? `error:${r.error}` : String(r.status);
    t[k] = (t[k] ?? 0) + 1;
  }
  return t;
}
