// Child processes of the benchmark and what /proc says about them.
// Every process the harness starts goes through `start()` and is ended by its own PID in
// `stopAll()` (normal end, Ctrl-C, errors); nothing is ever killed by name.
import { spawn, execFileSync } from 'node:child_process';
import { openSync, closeSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';

/** Clock ticks per second of utime/stime in /proc/PID/stat. */
export const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** @type {Set<import('node:child_process').ChildProcess & {label?: string, extraPids?: () => number[]}>} */
const running = new Set();
/** PIDs of every child ever started (the results record them; the smoke test checks they are gone). */
export const startedPids = [];

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Whether to pin: `cpu` is a taskset CPU list ("0", "1") or undefined for no pinning.
 * Returns the command line with taskset in front when pinning.
 */
export function pinned(cpu, cmd, args) {
  return cpu === undefined ? [cmd, args] : ['taskset', ['-c', String(cpu), cmd, ...args]];
}

/**
 * Starts a long-running child with stdout and stderr going to `logFile` (a file, not a pipe, so
 * a chatty child can never block on a full pipe). taskset execs the command, so the child's PID
 * is the real process's PID.
 */
export function start(label, cmd, args, { cpu, logFile, env, cwd } = {}) {
  const [c, a] = pinned(cpu, cmd, args);
  const fd = openSync(logFile, 'a');
  const child = spawn(c, a, { stdio: ['ignore', fd, fd], env: { ...process.env, ...env }, cwd });
  closeSync(fd);
  child.label = label;
  track(child);
  return child;
}

function track(child) {
  running.add(child);
  if (child.pid !== undefined) startedPids.push(child.pid);
  child.once('exit', () => running.delete(child));
  child.once('error', () => running.delete(child));
}

/** Starts a helper with stdin and stdout as pipes (the flood helper); registered like `start`. */
export function startPiped(label, cmd, args, { cpu } = {}) {
  const [c, a] = pinned(cpu, cmd, args);
  const child = spawn(c, a, { stdio: ['pipe', 'pipe', 'inherit'] });
  child.label = label;
  track(child);
  return child;
}

/** Runs a command to completion (load generators); it is registered so Ctrl-C ends it too. */
export function run(cmd, args, { cpu, env, input, timeoutMs = 600_000, stdoutFile } = {}) {
  const [c, a] = pinned(cpu, cmd, args);
  return new Promise((resolve, reject) => {
    const out = stdoutFile ? openSync(stdoutFile, 'w') : 'pipe';
    const child = spawn(c, a, { stdio: [input === undefined ? 'ignore' : 'pipe', out, 'pipe'], env: { ...process.env, ...env } });
    if (typeof out === 'number') closeSync(out);
    child.label = cmd;
    running.add(child);
    if (child.pid !== undefined) startedPids.push(child.pid);
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (d) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    if (input !== undefined) child.stdin.end(input);
    const timer = setTimeout(() => kill(child, 'SIGKILL'), timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      running.delete(child);
      reject(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      running.delete(child);
      if (code === 0) resolve({ stdout, stderr });
      else reject(new Error(`${cmd} ${a.join(' ')} exited ${code ?? signal}: ${stderr.slice(-2000)}`));
    });
  });
}

function kill(child, signal) {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(child.pid, signal);
  } catch {
    /* already gone */
  }
}

function killPid(pid, signal) {
  try {
    process.kill(pid, signal);
  } catch {
    /* already gone */
  }
}

/** Ends one child: SIGTERM, then SIGKILL after `graceMs`; extra PIDs (nginx workers) too. */
export async function stop(child, graceMs = 3000) {
  if (!child) return;
  const extra = child.extraPids?.() ?? [];
  kill(child, 'SIGTERM');
  const exited = new Promise((r) => {
    if (child.exitCode !== null || child.signalCode !== null) r();
    else child.once('exit', r);
  });
  const timer = sleep(graceMs).then(() => 'timeout');
  if ((await Promise.race([exited, timer])) === 'timeout') {
    kill(child, 'SIGKILL');
    await exited;
  }
  for (const pid of extra) if (alive(pid)) killPid(pid, 'SIGKILL');
}

/** Ends every child still running (newest first). Synchronous variant for process 'exit'. */
export async function stopAll() {
  const all = [...running].reverse();
  await Promise.all(all.map((c) => stop(c, 1500)));
}
export function killAllNow() {
  for (const c of running) {
    for (const pid of c.extraPids?.() ?? []) killPid(pid, 'SIGKILL');
    kill(c, 'SIGKILL');
  }
}

export function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** An error that ends a `waitFor` at once (the process being waited for has exited). */
export function fatal(message) {
  return Object.assign(new Error(message), { fatal: true });
}

/** Waits until `check()` returns a truthy value; throws after `timeoutMs` with `what`. */
export async function waitFor(what, check, { timeoutMs = 15_000, intervalMs = 50 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
      last = v;
    } catch (err) {
      if (err?.fatal) throw err;
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${last})`);
    await sleep(intervalMs);
  }
}

/** The first JSON line of `file` whose `msg` is `msg`, or undefined. */
export function findLogLine(file, msg) {
  let text;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const o = JSON.parse(line);
      if (o.msg === msg) return o;
    } catch {
      /* a partial line */
    }
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// /proc

/** utime + stime of one process (all its threads), in clock ticks; 0 when it is gone. */
export function cpuTicks(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]); // fields 14 and 15 of the whole line
  } catch {
    return 0;
  }
}

/** Children of `pid` (one level), from /proc/PID/task/TID/children where available. */
export function childPids(pid) {
  const out = [];
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const text = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
      if (text) out.push(...text.split(/\s+/).map(Number));
    }
    return out;
  } catch {
    /* fall back to scanning /proc */
  }
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(name));
    } catch {
      /* gone */
    }
  }
  return out;
}

/** VmRSS and VmHWM of one process in bytes (0 when gone). */
export function memory(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
    return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
  } catch {
    return { rss: 0, hwm: 0 };
  }
}

/** Resets the RSS high-water mark of a process (Linux clear_refs "5"); false when not allowed. */
export function resetPeakRss(pid) {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/**
 * Measures a group of processes around a piece of work: CPU ticks before and after, RSS sampled
 * every `sampleMs` and the summed VmHWM after a reset at the start.
 */
export function measure(pidsFn, { sampleMs = 100 } = {}) {
  const pids0 = pidsFn();
  const hwmReset = pids0.length > 0 && pids0.every(resetPeakRss);
  const ticks0 = pids0.reduce((s, p) => s + cpuTicks(p), 0);
  const rssStart = pids0.reduce((s, p) => s + memory(p).rss, 0);
  let rssMax = rssStart;
  const sampler = setInterval(() => {
    const rss = pidsFn().reduce((s, p) => s + memory(p).rss, 0);
    if (rss > rssMax) rssMax = rss;
  }, sampleMs);
  return {
    end() {
      clearInterval(sampler);
      const pids = pidsFn();
      const ticks = pids.reduce((s, p) => s + cpuTicks(p), 0) - ticks0;
      const mem = pids.map(memory);
      const rssEnd = mem.reduce((s, m) => s + m.rss, 0);
      const hwm = mem.reduce((s, m) => s + m.hwm, 0);
      rssMax = Math.max(rssMax, rssEnd);
      return {
        cpuSeconds: ticks / CLK_TCK,
        rssStartBytes: rssStart,
        rssEndBytes: rssEnd,
        // VmHWM after a reset is exact; without the reset, the sampled maximum is the honest one.
        rssPeakBytes: hwmReset ? Math.max(hwm, rssMax) : rssMax,
        rssPeakSource: hwmReset ? 'VmHWM' : 'sampled VmRSS',
      };
    },
  };
}

