// A stand-in OTLP/HTTP collector on 127.0.0.1: it accepts every export and counts it. portcullis
// runs with its default telemetry (1% of traces sampled, rejects always, capped) and exports to
// this sink, so the benchmark pays for real exports and never sends spans to whatever might
// listen on the default localhost:4318.
import http from 'node:http';

export async function startOtlpSink() {
  const counts = { requests: 0, bytes: 0, byPath: {} };
  const server = http.createServer((req, res) => {
    let bytes = 0;
    req.on('data', (d) => (bytes += d.length));
    req.on('end', () => {
      counts.requests++;
      counts.bytes += bytes;
      const path = (req.url ?? '/').split('?')[0];
      counts.byPath[path] = (counts.byPath[path] ?? 0) + 1;
      // An empty Export*ServiceResponse: zero bytes in protobuf, {} in JSON.
      const json = (req.headers['content-type'] ?? '').includes('json');
      res.writeHead(200, { 'content-type': json ? 'application/json' : 'application/x-protobuf', 'content-length': json ? 2 : 0 });
      res.end(json ? '{}' : undefined);
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = /** @type {import('node:net').AddressInfo} */ (server.address());
  return {
    port,
    tracesUrl: `http://127.0.0.1:${port}/v1/traces`,
    /** Counts since the last call. */
    take() {
      const c = { requests: counts.requests, bytes: counts.bytes, byPath: { ...counts.byPath } };
      counts.requests = 0;
      counts.bytes = 0;
      counts.byPath = {};
      return c;
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve(undefined));
      }),
  };
}
