// Small HTTP helpers of the harness (admin /stats, the app's counters, probes during a flood).
// Each request uses its own connection (agent: false) and a hard timeout.
import http from 'node:http';
import net from 'node:net';

/** GET `url`; resolves {status, body} or rejects on error or after `timeoutMs`. */
export function get(url, timeoutMs = 2000) {
  return send('GET', url, timeoutMs);
}

/** POST `url` with no body (the capacity app's control endpoint); like `get`. */
export function post(url, timeoutMs = 2000) {
  return send('POST', url, timeoutMs);
}

function send(method, url, timeoutMs) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`timeout after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

export async function getJson(url, timeoutMs = 2000) {
  const { status, body } = await get(url, timeoutMs);
  if (status !== 200) throw new Error(`GET ${url}: ${status} ${body.slice(0, 200)}`);
  return JSON.parse(body);
}

/** One request on a fresh connection: the status, or 0 on error/timeout. */
export async function probe(url, timeoutMs = 1000) {
  try {
    return (await get(url, timeoutMs)).status;
  } catch {
    return 0;
  }
}

/** A free TCP port on 127.0.0.1 (asked from the kernel, then released for the child to take). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = /** @type {net.AddressInfo} */ (srv.address());
      srv.close(() => resolve(port));
    });
  });
}

/** Whether something accepts TCP connections on 127.0.0.1:port. */
export function canConnect(port, timeoutMs = 500) {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    const done = (ok) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}
