/** The command line: `portcullis run | check | schema | inject`, with --help for each. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { PortcullisError } from '../core/errors.ts';

export const HELP = {
  main: `portcullis - caps sockets and in-flight requests in front of an HTTP app

Usage:
  portcullis run    [--config FILE] [--upstream URL] [--port N] [--admin-port N]
  portcullis check  FILE     validate a config file, print every problem, exit 0 or 1
  portcullis schema          print the JSON Schema of the config file
  portcullis inject [--settings FILE] [--cert FILE] [--key FILE] [--port N]
                             the Kubernetes admission webhook that injects the sidecar

Run 'portcullis COMMAND --help' for the options of a command.
`,
  run: `Usage: portcullis run [--config FILE] [--upstream URL] [--port N] [--admin-port N]

Starts the sidecar: listens on the data port, forwards admitted requests to the upstream,
serves /healthz /readyz /stats /config on the admin port.

Options (flags > environment > config file > defaults):
  -c, --config FILE     config file, YAML or JSON            env PORTCULLIS_CONFIG
  -u, --upstream URL    http://127.0.0.1:PORT or unix:/path   env PORTCULLIS_UPSTREAM
  -p, --port N          data port (listen.port)               env PORTCULLIS_PORT
      --admin-port N    admin port (admin.port)               env PORTCULLIS_ADMIN_PORT
  -h, --help            this text

Signals: SIGTERM/SIGINT drain and exit 0; SIGHUP reloads the config file.
Logs: JSON lines on stdout.
`,
  check: `Usage: portcullis check FILE

Validates FILE against the config schema and prints every problem as
FILE:LINE:COLUMN: PATH: MESSAGE. Exit code 0 when valid, 1 otherwise.
`,
  schema: `Usage: portcullis schema

Prints the JSON Schema (draft 2020-12) of the config file, for editors and CI.
`,
  inject: `Usage: portcullis inject [--settings FILE] [--cert FILE] [--key FILE] [--port N] [--host H] [--shutdown-delay D]

Serves the mutating admission webhook (POST /mutate, GET /healthz /readyz) over TLS. Installed
by the Helm chart charts/portcullis, which renders FILE; see README "Kubernetes".

Options (flags > environment > defaults):
  --settings FILE        injector settings JSON   env PORTCULLIS_INJECT_SETTINGS  (/etc/portcullis-injector/settings/settings.json)
  --cert FILE            TLS certificate (PEM)    env PORTCULLIS_INJECT_CERT      (/etc/portcullis-injector/tls/tls.crt)
  --key FILE             TLS private key (PEM)    env PORTCULLIS_INJECT_KEY       (/etc/portcullis-injector/tls/tls.key)
  --port N               HTTPS port               env PORTCULLIS_INJECT_PORT      (8443)
  --host H               address to listen on     env PORTCULLIS_INJECT_HOST      (0.0.0.0)
  --shutdown-delay D     keep serving after SIGTERM, /readyz 503   env PORTCULLIS_INJECT_SHUTDOWN_DELAY  (5s)
  -h, --help             this text

The certificate files are re-read every 10 s and swapped in when they change.
`,
} as const;

export type Command =
  | { command: 'help'; text: string }
  | { command: 'run'; config?: string; upstream?: string; port?: string; adminPort?: string }
  | { command: 'check'; file: string }
  | { command: 'schema' }
  | { command: 'inject'; settings?: string; cert?: string; key?: string; port?: string; host?: string; shutdownDelay?: string };

const HELP_FLAG = { help: { type: 'boolean', short: 'h' } } as const;

/** Each command's flags, as node:util parseArgs takes them. */
const OPTIONS = {
  run: {
    config: { type: 'string', short: 'c' },
    upstream: { type: 'string', short: 'u' },
    port: { type: 'string', short: 'p' },
    'admin-port': { type: 'string' },
    ...HELP_FLAG,
  },
  inject: {
    settings: { type: 'string' },
    cert: { type: 'string' },
    key: { type: 'string' },
    port: { type: 'string' },
    host: { type: 'string' },
    'shutdown-delay': { type: 'string' },
    ...HELP_FLAG,
  },
  check: HELP_FLAG,
  schema: HELP_FLAG,
} as const satisfies Record<Exclude<Command['command'], 'help'>, ParseArgsConfig['options']>;

export function parseCommandLine(args: readonly string[]): Command {
  const [command, ...rest] = args;
  const usage = (msg: string) => new PortcullisError('USAGE', msg);
  if (command === undefined || command === '-h' || command === '--help' || command === 'help') {
    return { command: 'help', text: HELP.main };
  }
  if (command !== 'run' && command !== 'check' && command !== 'schema' && command !== 'inject') {
    throw usage(`unknown command ${JSON.stringify(command)}; expected run, check, schema or inject`);
  }
  let parsed;
  try {
    parsed = parseArgs({ args: [...rest], allowPositionals: command === 'check', strict: true, options: OPTIONS[command] });
  } catch (err) {
    throw usage(`${(err as Error).message}\n\n${HELP[command]}`);
  }
  const v = parsed.values as Record<string, string | boolean | undefined>;
  if (v.help) return { command: 'help', text: HELP[command] };
  switch (command) {
    case 'run':
      return {
        command,
        ...(typeof v.config === 'string' ? { config: v.config } : {}),
        ...(typeof v.upstream === 'string' ? { upstream: v.upstream } : {}),
        ...(typeof v.port === 'string' ? { port: v.port } : {}),
        ...(typeof v['admin-port'] === 'string' ? { adminPort: v['admin-port'] } : {}),
      };
    case 'check': {
      const [file, ...extra] = parsed.positionals;
      if (file === undefined || extra.length > 0) throw usage(`check takes exactly one FILE\n\n${HELP.check}`);
      return { command, file };
    }
    case 'schema':
      return { command };
    case 'inject': {
      const out: Extract<Command, { command: 'inject' }> = { command };
      for (const k of ['settings', 'cert', 'key', 'port', 'host'] as const) if (typeof v[k] === 'string') out[k] = v[k];
      if (typeof v['shutdown-delay'] === 'string') out.shutdownDelay = v['shutdown-delay'];
      return out;
    }
  }
}
