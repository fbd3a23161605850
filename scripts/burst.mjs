#!/usr/bin/env node
// A burst of concurrent requests, each on its own socket, then a count of the answers by status
// and x-portcullis-reason. Usage: node scripts/burst.mjs [URL] [COUNT]
// Default: 200 requests at once to http://127.0.0.1:8080/slow?ms=500 (the example app holds each 500 ms).
import http from 'node:http';

const url = new URL(process.argv[2] ?? 'http://127.0.0.1:8080/slow?ms=500');
const count = Number(process.argv[3] ?? 200);
const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
const tally = new Map();
const started = performance.now();

const one = () =>
  new Promise((resolve) => {
    const req = http.get(url, { agent }, (res) => {
      res.resume();
      res.on('end', () => {
        const reason = res.headers['x-portcullis-reason'];
        const key = reason ? `${res.statusCode} ${reason}` : String(res.statusCode);
        tally.set(key, (tally.get(key) ?? 0) + 1);
        resolve();
      });
    });
    req.on('error', (err) => {
      tally.set(`error ${err.code ?? err.message}`, (tally.get(`error ${err.code ?? err.message}`) ?? 0) + 1);
      resolve();
    });
  });

await Promise.all(Array.from({ length: count }, one));
console.log(`${count} requests to ${url.href} in ${Math.round(performance.now() - started)} ms`);
for (const [key, n] of [...tally].sort()) console.log(`  ${key}: ${n}`);
