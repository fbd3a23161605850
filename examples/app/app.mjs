// The bundled example app that portcullis fronts in examples and demos: plain Node ESM, no
// dependencies. `node examples/app/app.mjs` listens on 127.0.0.1:$APP_PORT (default 3000).
//   GET  /              small text hello
//   GET  /slow?ms=N     answers after N ms (default 200), to fill in-flight slots
//   POST /upload        streams the body through, answers {"bytes": n}   (PUT too)
//   GET  /download?bytes=N  streams N bytes generated on the fly, never one big buffer
//   GET  /healthz       200 ok
//   ANY  /echo          {method, url, headers} as JSON
// With OTEL_EXPORTER_OTLP_ENDPOINT set it traces every request (examples/app/otel.mjs), as a
// child of the caller's span when a traceparent comes in.
import http from 'node:http';

const otel =
  process.env.OTEL_EXPORTER_OTLP_ENDPOINT && process.env.OTEL_SDK_DISABLED !== 'true' ? await import('./otel.mjs') : undefined;

const host = process.env.APP_HOST || '127.0.0.1';
const port = Number(process.env.APP_PORT || 3000);
const CHUNK = Buffer.alloc(64 * 1024, 'x');

function log(msg, fields = {}) {
  process.stdout.write(JSON.stringify({ time: new Date().toISOString(), level: 'info', msg, ...fields }) + '\n');
}

function intParam(url, name, dflt, max) {
  const raw = url.searchParams.get(name);
  if (raw === null || raw === '') return dflt;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 0 || n > max) return undefined;
  return n;
}

function send(res, status, type, body) {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function json(res, status, value) {
  send(res, status, 'application/json', JSON.stringify(value) + '\n');
}

function slow(req, res, url) {
  const ms = intParam(url, 'ms', 200, 600_000);
  if (ms === undefined) return json(res, 400, { error: 'ms must be an integer between 0 and 600000' });
  const timer = setTimeout(() => send(res, 200, 'text/plain', `slept ${ms}ms\n`), ms);
  // A client that goes away must not keep a timer (and its response) alive.
  res.on('close', () => clearTimeout(timer));
}

function upload(req, res) {
  let bytes = 0;
  req.on('data', (chunk) => {
    bytes += chunk.length;
  });
  req.on('end', () => json(res, 200, { bytes }));
  req.on('error', () => res.destroy());
}

function download(req, res, url) {
  const total = intParam(url, 'bytes', 1024, Number.MAX_SAFE_INTEGER);
  if (total === undefined) return json(res, 400, { error: 'bytes must be a non-negative integer' });
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': total });
  let left = total;
  const pump = () => {
    while (left > 0) {
      const n = Math.min(left, CHUNK.length);
      left -= n;
      const more = res.write(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n));
      if (!more) return void res.once('drain', pump);
    }
    res.end();
  };
  res.on('close', () => {
    left = 0;
  });
  pump();
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://app.local');
  otel?.traceRequest(req, res, url.pathname);
  switch (url.pathname) {
    case '/':
      return send(res, 200, 'text/plain', 'hello from the example app\n');
    case '/healthz':
      return send(res, 200, 'text/plain', 'ok\n');
    case '/slow':
      return slow(req, res, url);
    case '/upload':
      if (req.method !== 'POST' && req.method !== 'PUT') {
        res.setHeader('allow', 'POST, PUT');
        return json(res, 405, { error: 'use POST or PUT' });
      }
      return upload(req, res);
    case '/download':
      return download(req, res, url);
    case '/echo':
      req.resume();
      return req.on('end', () => json(res, 200, { method: req.method, url: req.url, headers: req.headers }));
    default:
      return json(res, 404, { error: 'not found', path: url.pathname });
  }
});

server.listen(port, host, () => {
  const addr = server.address();
  log('example app started', { host, port: typeof addr === 'object' && addr ? addr.port : port, pid: process.pid });
});

function stop(signal) {
  log('example app stopping', { signal });
  server.close(async () => {
    await otel?.shutdown();
    log('example app stopped');
    process.exit(0);
  });
  server.closeIdleConnections();
  // Requests still running after 10 s are cut; the process must not hang on shutdown.
  setTimeout(() => {
    server.closeAllConnections();
    process.exit(0);
  }, 10_000).unref();
}
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));
