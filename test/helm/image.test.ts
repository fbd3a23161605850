/**
 * The Dockerfile, exercised without a Docker engine: its instructions are parsed, every stage
 * gets a directory standing in for its filesystem, COPY copies what the build context
 * (.dockerignore applied) or an earlier stage holds, and every RUN line runs with `sh -c` in the
 * stage's WORKDIR. Then the final stage's layout is started the way ENTRYPOINT + CMD start it, as
 * the image's numeric USER, on a read-only root (a private mount namespace where `/` is
 * remounted read-only, /tmp included), and must serve and drain.
 *
 * Not exercised: the base image (node:20-bookworm-slim: its Node and npm versions, its libc), the
 * layer cache, the real context upload. The Node running here is the machine's (20.x, like the base).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { configMapVolume } from '../helpers/configmap.ts';
import { ROOT, cleanup } from '../helpers/sidecar.ts';
import { startUpstream } from '../helpers/upstream.ts';
import { cleanEnv, startProcess } from '../inject/process.ts';

interface Instruction {
  op: string;
  args: string;
}
interface Stage {
  name: string;
  from: string;
  steps: Instruction[];
}

/** Dockerfile instructions by stage (comments dropped, `\` continuations joined). */
function parseDockerfile(text: string): Stage[] {
  const lines = text.replace(/\\\n/g, ' ').split('\n');
  const stages: Stage[] = [];
  for (const raw of lines) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^([A-Za-z]+)\s+(.*)$/.exec(line);
    if (!m) throw new Error(`cannot parse Dockerfile line: ${line}`);
    const op = m[1]!.toUpperCase();
    const args = m[2]!.trim();
    if (op === 'FROM') {
      const f = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
      stages.push({ from: f![1]!, name: f![2] ?? String(stages.length), steps: [] });
    } else {
      const stage = stages.at(-1);
      if (!stage) throw new Error(`${op} before FROM`);
      stage.steps.push({ op, args });
    }
  }
  return stages;
}

/** True when .dockerignore lets `path` (relative to the context) into the build context. */
function inContext(patterns: string[], path: string): boolean {
  let included = true;
  for (const raw of patterns) {
    const negate = raw.startsWith('!');
    const p = (negate ? raw.slice(1) : raw).replace(/\/$/, '');
    const re = new RegExp(`^${p.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*')}(/.*)?$`);
    if (re.test(path)) included = negate;
  }
  return included;
}

const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
const ignore = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'));
const stages = parseDockerfile(dockerfile);
const final = stages.at(-1)!;
const USER = 65532;

let base: string;
const fsOf = (stage: string) => join(base, 'stages', stage);
const workdirOf = new Map<string, string>();

/** Runs every stage's instructions in its stand-in directory. */
function build(): void {
  for (const stage of stages) {
    const root = fsOf(stage.name);
    mkdirSync(root, { recursive: true });
    let workdir = '/';
    const env: Record<string, string> = {};
    for (const { op, args } of stage.steps) {
      const here = join(root, workdir);
      switch (op) {
        case 'WORKDIR':
          workdir = args.startsWith('/') ? args : join(workdir, args);
          mkdirSync(join(root, workdir), { recursive: true });
          break;
        case 'ENV': {
          const [k, ...v] = args.split('=');
          env[k!] = v.join('=');
          break;
        }
        case 'COPY': {
          const parts = args.split(/\s+/);
          const from = parts[0]!.startsWith('--from=') ? parts.shift()!.slice('--from='.length) : undefined;
          const dest = parts.pop()!;
          const target = dest.startsWith('/') ? join(root, dest) : join(here, dest);
          for (const src of parts) {
            let source: string;
            if (from === undefined) {
              expect(inContext(ignore, src.replace(/^\.\//, '')), `${src} is excluded by .dockerignore`).toBe(true);
              source = join(ROOT, src);
            } else source = join(fsOf(from), src);
            if (!existsSync(source)) throw new Error(`COPY ${args}: ${source} does not exist`);
            const to = dest.endsWith('/') && !statSync(source).isDirectory() ? join(target, src.split('/').pop()!) : target;
            mkdirSync(dirname(to), { recursive: true });
            cpSync(source, to, { recursive: true, verbatimSymlinks: true });
          }
          break;
        }
        case 'RUN': {
          const r = spawnSync('sh', ['-c', args], {
            cwd: here,
            env: { ...cleanEnv(), ...env, npm_config_update_notifier: 'false' },
            encoding: 'utf8',
            timeout: 240_000,
          });
          if (r.status !== 0) throw new Error(`RUN ${args} failed (${r.status}):\n${r.stdout.slice(-2000)}\n${r.stderr.slice(-2000)}`);
          break;
        }
        case 'USER':
        case 'EXPOSE':
        case 'ENTRYPOINT':
        case 'CMD':
          break;
        default:
          throw new Error(`the emulation does not know ${op}; extend test/helm/image.test.ts`);
      }
    }
    workdirOf.set(stage.name, workdir);
  }
}

const jsonForm = (op: string): string[] => {
  const step = final.steps.filter((s) => s.op === op).at(-1);
  if (!step) throw new Error(`no ${op}`);
  return JSON.parse(step.args) as string[];
};

function unshareWorks(): boolean {
  return spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', 'mount -o remount,bind,ro / && true'], { timeout: 10_000 }).status === 0;
}

beforeAll(() => {
  base = mkdtempSync(join(tmpdir(), 'portcullis-image-'));
  chmodSync(base, 0o755);
  build();
  // The final stage's files must be readable by the image's user, as in a layer owned by root.
  execFileSync('chmod', ['-R', 'a+rX', base]);
}, 300_000);
afterAll(() => {
  if (base) rmSync(base, { recursive: true, force: true });
});
afterEach(cleanup);

describe('Dockerfile', () => {
  test('multi-stage: npm ci, build, prune in the build stage; the final stage copies only what runs', () => {
    expect(stages.map((s) => s.from)).toEqual(['node:20-bookworm-slim', 'node:20-bookworm-slim']);
    const runs = stages[0]!.steps.filter((s) => s.op === 'RUN').map((s) => s.args);
    expect(runs).toEqual(['npm ci --no-audit --no-fund', 'npm run build', 'npm prune --omit=dev --no-audit --no-fund']);
    expect(final.steps.filter((s) => s.op === 'RUN')).toEqual([]);
    // `npm run build` is the tsc build scripts/test runs.
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
    expect(pkg.scripts.build).toBe('tsc -p tsconfig.json');
    expect(readFileSync(join(ROOT, 'scripts', 'test'), 'utf8')).toMatch(/npm ci --no-audit --no-fund[\s\S]*npx tsc -p tsconfig\.json/);
    expect(jsonForm('ENTRYPOINT')).toEqual(['node', '/app/dist/main.js']);
    expect(jsonForm('CMD')).toEqual(['run', '--config', '/etc/portcullis/portcullis.yaml']);
    const user = final.steps.find((s) => s.op === 'USER')!.args;
    expect(user).toBe(`${USER}:${USER}`);
  });

  test('the final stage holds production dependencies only, and the build output', () => {
    const app = join(fsOf(final.name), workdirOf.get(final.name)!);
    expect(readdirSync(app).sort()).toEqual(['dist', 'node_modules', 'package.json']);
    expect(existsSync(join(app, 'dist', 'main.js'))).toBe(true);
    const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
    const devOnly = Object.entries(lock.packages)
      .filter(([p, meta]) => p.startsWith('node_modules/') && meta.dev === true)
      .map(([p]) => p);
    expect(devOnly.length).toBeGreaterThan(50);
    const present = devOnly.filter((p) => existsSync(join(app, p)));
    expect(present).toEqual([]);
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
    for (const dep of Object.keys(pkg.dependencies)) expect(existsSync(join(app, 'node_modules', dep)), dep).toBe(true);
    for (const dev of ['typescript', 'vitest', 'deno', 'kubernetes-models']) expect(existsSync(join(app, 'node_modules', dev)), dev).toBe(false);
  });

  test.skipIf(!unshareWorks())('the image runs as its numeric user on a read-only root (no /tmp either): serves, answers probes, drains', async () => {
    const upstream = await startUpstream();
    const volume = configMapVolume(
      JSON.stringify({ listen: { host: '127.0.0.1', port: 0 }, admin: { host: '127.0.0.1', port: 0 }, upstream: { url: upstream.url }, drain: { delay: 0, timeout: '2s' } }),
    );
    // tempDir() directories are private to root; the image's user must read the config.
    for (let d = volume.dir; d !== tmpdir() && d !== '/'; d = dirname(d)) chmodSync(d, 0o755);
    execFileSync('chmod', ['-R', 'a+rX', volume.dir]);

    const appRoot = fsOf(final.name);
    const map = (s: string) => (s === '/etc/portcullis/portcullis.yaml' ? volume.file : s.startsWith('/app/') ? join(appRoot, s) : s);
    const argv = [...jsonForm('ENTRYPOINT'), ...jsonForm('CMD')].map(map);
    // As the chart runs it: telemetry on (Prometheus text on /metrics), no span exporter configured.
    const env = cleanEnv({ HOME: '/', NODE_ENV: 'production', OTEL_TRACES_EXPORTER: 'none' });
    delete env['OTEL_SDK_DISABLED'];
    const proc = startProcess(
      'unshare',
      ['-m', '--propagation', 'private', 'sh', '-c', `mount -o remount,bind,ro / && exec setpriv --reuid=${USER} --regid=${USER} --clear-groups -- "$@"`, 'sh', ...argv],
      env,
      '/',
    );
    const started = await proc.waitForLog((l) => l['msg'] === 'portcullis started', 'portcullis started', 20_000);
    const port = started['port'] as number;
    const adminPort = started['adminPort'] as number;
    // The process really is the image's user and really sees a read-only root.
    const status = readFileSync(`/proc/${proc.pid}/status`, 'utf8');
    expect(status).toMatch(new RegExp(`^Uid:\\s+${USER}\\s+${USER}\\s+${USER}\\s+${USER}$`, 'm'));
    const mounts = readFileSync(`/proc/${proc.pid}/mounts`, 'utf8').split('\n').find((l) => l.split(' ')[1] === '/');
    expect(mounts?.split(' ')[3]?.split(',')).toContain('ro');

    const r = await fetch(`http://127.0.0.1:${port}/hello`, { signal: AbortSignal.timeout(5000) });
    expect(r.status).toBe(200);
    expect(upstream.count()).toBe(1);
    expect((await fetch(`http://127.0.0.1:${adminPort}/readyz`)).status).toBe(200);
    const metrics = await fetch(`http://127.0.0.1:${adminPort}/metrics`);
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toContain('portcullis_decisions_total');

    proc.child.kill('SIGTERM');
    expect(await proc.exit).toEqual({ code: 0, signal: null });
    // Nothing complained about a write.
    expect(proc.output()).not.toMatch(/EROFS|read-only file system|EACCES/i);
  });

  test('inject --help runs from the image layout', () => {
    const out = execFileSync(process.execPath, [join(fsOf(final.name), 'app', 'dist', 'main.js'), 'inject', '--help'], { encoding: 'utf8', env: cleanEnv() });
    expect(out).toContain('Usage: portcullis inject');
  });

  test('.dockerignore keeps node_modules, dist, .git and .tools out of the context', () => {
    for (const p of ['node_modules/zod/package.json', 'dist/main.js', '.git/HEAD', '.tools/bin/helm', 'test/helpers/sidecar.ts', 'README.md']) {
      expect(inContext(ignore, p), p).toBe(false);
    }
    for (const p of ['package.json', 'src/main.ts', 'src/inject/inject.ts']) expect(inContext(ignore, p), p).toBe(true);
  });
});
