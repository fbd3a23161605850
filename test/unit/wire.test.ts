/**
 * The wire module (src/core/wire.ts) owns every raw answer portcullis writes itself. Each one must
 * be a valid HTTP/1.1 message whose content-length matches its body: checked by a strict reading
 * here, and by node's own parser (llhttp) reading it off a real socket.
 */
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../src/core/config-schema.ts';
import { PATH_PROBLEMS } from '../../src/core/path-normalize.ts';
import { buildRejectResponses } from '../../src/core/reject-response.ts';
import { bareMessage, bodyTimeoutAnswer, jsonError, parseErrorStatus, rawHead, rawMessage, statusText } from '../../src/core/wire.ts';

/** Every raw message the data path can write, by name. */
function everyRawAnswer(): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const status of [400, 408, 431]) out.push([`bare ${status}`, bareMessage(status)]);
  for (const reject of [{}, { body: 'überlastet ✋', retryAfter: '3s', reasonHeader: true, status: 429 }, { retryAfter: '0s', reasonHeader: false }]) {
    const config = configSchema.parse({ upstream: { url: 'http://127.0.0.1:1' }, reject });
    for (const [reason, r] of Object.entries(buildRejectResponses(config.reject))) {
      out.push([`socket reject ${reason} ${JSON.stringify(reject)}`, r.raw]);
      out.push([`full reject ${reason} ${JSON.stringify(reject)}`, rawMessage(r)]);
    }
  }
  for (const error of ['upgrade_not_allowed', 'upstream_bad_upgrade', 'upstream_reset', 'upstream_timeout', 'bad_request', 'internal_error']) {
    out.push([`json ${error}`, rawMessage(jsonError(502, error))]);
    out.push([`json closing ${error}`, rawMessage(jsonError(502, error, { close: true }))]);
  }
  for (const p of Object.values(PATH_PROBLEMS)) out.push([`bad path ${p.problem}`, rawMessage(jsonError(400, p.problem, { detail: p.detail }))]);
  out.push(['bad host', rawMessage(jsonError(400, 'bad_host', { detail: 'more than one Host header' }))]);
  out.push(['body timeout', rawMessage(bodyTimeoutAnswer('body_min_rate'))]);
  return out;
}

/** A strict reading: status line, `name: value` lines, one content-length equal to the body's bytes. */
function parse(raw: string): { status: number; headers: Map<string, string[]>; body: Buffer } {
  const bytes = Buffer.from(raw, 'utf8');
  const end = bytes.indexOf('\r\n\r\n');
  expect(end).toBeGreaterThan(0);
  const [statusLine, ...lines] = bytes.subarray(0, end).toString('latin1').split('\r\n');
  const m = /^HTTP\/1\.1 ([1-5]\d\d) ([\x21-\x7e][\x20-\x7e]*)$/.exec(statusLine as string);
  expect(m, statusLine).not.toBeNull();
  const headers = new Map<string, string[]>();
  for (const line of lines) {
    const h = /^([!#$%&'*+.^_`|~0-9a-z-]+): ([\x21-\x7e](?:[\t\x20-\x7e]*[\x21-\x7e])?)?$/.exec(line);
    expect(h, line).not.toBeNull();
    const name = (h as RegExpExecArray)[1] as string;
    headers.set(name, [...(headers.get(name) ?? []), (h as RegExpExecArray)[2] ?? '']);
  }
  const body = bytes.subarray(end + 4);
  return { status: Number((m as RegExpExecArray)[1]), headers, body };
}

/** Serves `raw` on a socket and reads it with node's HTTP client. */
async function readWithNode(raw: string): Promise<{ status: number; length: string | undefined; body: Buffer }> {
  const server = net.createServer((s) => {
    s.once('data', () => s.end(raw));
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  try {
    return await new Promise((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, length: res.headers['content-length'], body: Buffer.concat(chunks) }));
        res.on('error', reject);
      });
      req.on('error', reject);
    });
  } finally {
    server.close();
  }
}

describe('wire', () => {
  it('every raw answer is a valid HTTP/1.1 message that closes the connection, content-length matching its body', async () => {
    const answers = everyRawAnswer();
    expect(answers.length).toBeGreaterThan(30);
    for (const [name, raw] of answers) {
      const m = parse(raw);
      expect(m.headers.get('connection'), name).toEqual(['close']);
      expect(m.headers.get('content-length'), name).toEqual([String(m.body.byteLength)]);
      const seen = await readWithNode(raw);
      expect(seen.status, name).toBe(m.status);
      expect(seen.length, name).toBe(String(m.body.byteLength));
      expect(seen.body.equals(m.body), name).toBe(true);
    }
  });

  it('socket rejects stay byte-for-byte what they were: bodiless, reason and retry-after named', () => {
    const config = configSchema.parse({ upstream: { url: 'http://127.0.0.1:1' }, reject: { retryAfter: '2s', reasonHeader: true } });
    expect(buildRejectResponses(config.reject).connection_limit.raw).toBe(
      'HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-length: 0\r\nretry-after: 2\r\nx-portcullis-reason: connection_limit\r\n\r\n',
    );
    expect(bareMessage(431)).toBe('HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
  });

  it('which parse error gets which bare answer', () => {
    expect(parseErrorStatus('HPE_HEADER_OVERFLOW')).toBe(431);
    expect(parseErrorStatus('ERR_HTTP_REQUEST_TIMEOUT')).toBe(408);
    expect(parseErrorStatus('HPE_INVALID_METHOD')).toBe(400);
    expect(parseErrorStatus(undefined)).toBe(400);
  });

  it('JSON errors: body, x-portcullis-error, and a content-length counting UTF-8 bytes', () => {
    const a = jsonError(502, 'upstream_reset', { close: true });
    expect(a.body).toBe('{"error":"upstream_reset"}');
    expect(Object.keys(a.headers)).toEqual(['connection', 'content-type', 'content-length', 'x-portcullis-error']);
    const cut = bodyTimeoutAnswer('body_timeout');
    expect(cut.body).toBe('{"error":"request_body_timeout"}');
    expect(cut.headers['x-portcullis-error']).toBe('body_timeout');
    const d = jsonError(400, 'bad_path', { detail: 'ä' });
    expect(d.headers['content-length']).toBe(String(Buffer.byteLength(d.body)));
  });

  it('a relayed head: repeated headers on their own lines, connection replaced when closing', () => {
    const head = rawHead(401, statusText(401), { 'set-cookie': ['a=1', 'b=2'], connection: 'keep-alive', 'www-authenticate': 'Basic' }, true);
    expect(head).toBe('HTTP/1.1 401 Error\r\nconnection: close\r\nset-cookie: a=1\r\nset-cookie: b=2\r\nwww-authenticate: Basic\r\n\r\n');
    expect(rawHead(101, 'Switching Protocols', { upgrade: 'websocket', connection: 'Upgrade' }, false)).toBe(
      'HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\r\n',
    );
  });
});
