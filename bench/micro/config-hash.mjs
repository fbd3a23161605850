// How long the config version (content hash) of a large config takes, old build against new:
//   node bench/micro/config-hash.mjs OLD_CHECKOUT NEW_CHECKOUT [MiB]
// Each checkout needs a built dist/. The reload poll hashes the file every `reload.pollInterval`,
// on the event loop, so this is time every request waits once per poll.
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';

const [oldDir, newDir, mib = '1'] = process.argv.slice(2);
if (!oldDir || !newDir) {
  process.stderr.write('usage: node bench/micro/config-hash.mjs OLD_CHECKOUT NEW_CHECKOUT [MiB]\n');
  process.exit(2);
}
const load = async (dir) => (await import(pathToFileURL(join(dir, 'dist', 'core', 'config-load.js')).href)).configVersion;
const text = 'routes:\n' + '  - { name: r, match: { prefix: /x } }\n'.repeat(Math.ceil((Number(mib) * 1024 * 1024) / 38));
for (const [name, fn] of [['old', await load(oldDir)], ['new', await load(newDir)]]) {
  const times = [];
  let v = '';
  for (let i = 0; i < 7; i++) {
    const t = performance.now();
    v = fn(text);
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  console.log(`${name}: median ${times[3].toFixed(1)} ms, min ${times[0].toFixed(1)} ms for ${(text.length / 1048576).toFixed(2)} MiB (version ${v})`);
}
