// The floor of portcullis's stack, for the benchmark only: node:http in, an undici Pool out, and
// nothing else (no limits, no telemetry, no header rewriting beyond dropping Connection). Whatever
// portcullis costs above this row is its own work; what this row costs is the price of node:http
// and undici on this machine, which no code on top of them can go below.
//
//   node bench/floor.mjs --port 0 --upstream http://127.0.0.1:PORT   -> one JSON line {"port":N}
import http from 'node:http';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';

const { values } = parseArgs({ options: { port: { type: 'string', default: '0' }, upstream: { type: 'string' } } });
if (!values.upstream) {
  process.stderr.write('usage: node bench/floor.mjs --port N --upstream http://HOST:PORT\n');
  process.exit(2);
}
const pool = new Pool(values.upstream, { connections: 512, pipelining: 1 });

const server = http.createServer((req, res) => {
  const headers = [];
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) if (raw[i].toLowerCase() !== 'connection') headers.push(raw[i], raw[i + 1]);
  const body = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined ? req : null;
  pool.dispatch(
    { method: req.method, path: req.url, headers, body },
    {
      onRequestStart() {},
      onResponseStart(_c, status, h) {
        delete h.connection;
        delete h['keep-alive'];
        delete h['transfer-encoding'];
        res.writeHead(status, h);
      },
      onResponseData(c, chunk) {
        if (!res.write(chunk)) {
          c.pause();
          res.once('drain', () => c.resume());
        }
      },
      onResponseEnd() {
        res.end();
      },
      onResponseError() {
        if (res.headersSent) res.destroy();
        else res.writeHead(502).end();
      },
    },
  );
});
server.listen(Number(values.port), '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ msg: 'floor started', port: server.address().port })}\n`);
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
