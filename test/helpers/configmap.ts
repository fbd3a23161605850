/**
 * A ConfigMap volume as the kubelet lays it out and updates it (pkg/volume/util/atomic_writer.go):
 *   DIR/..2026_11_25_20_28_48.863639746/portcullis.yaml   the payload, in a timestamped directory
 *   DIR/..data -> ..2026_11_25_...                          symlink to the current payload
 *   DIR/portcullis.yaml -> ..data/portcullis.yaml           what the container opens
 * An update writes a new timestamped directory, points `..data_tmp` at it, renames `..data_tmp`
 * over `..data` (atomic), and removes the old directory.
 */
import { mkdirSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './sidecar.ts';

export interface ConfigMapVolume {
  dir: string;
  /** The path the sidecar is given: DIR/portcullis.yaml. */
  file: string;
  /** Atomic kubelet-style update with new content. */
  update(text: string): void;
  /** Points `..data` at a directory that does not exist (the payload vanished). */
  breakData(): void;
}

let seq = 0;
function stamp(): string {
  const d = new Date();
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `..${d.getUTCFullYear()}_${p(d.getUTCMonth() + 1)}_${p(d.getUTCDate())}_${p(d.getUTCHours())}_${p(d.getUTCMinutes())}_${p(d.getUTCSeconds())}.${p(process.pid, 6)}${p(seq++, 4)}`;
}

export function configMapVolume(text: string, key = 'portcullis.yaml'): ConfigMapVolume {
  const dir = tempDir();
  const write = (content: string) => {
    const ts = stamp();
    mkdirSync(join(dir, ts));
    writeFileSync(join(dir, ts, key), content);
    const old = existsSync(join(dir, '..data')) ? readlinkSync(join(dir, '..data')) : undefined;
    symlinkSync(ts, join(dir, '..data_tmp'));
    renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
    if (!existsSync(join(dir, key))) symlinkSync(join('..data', key), join(dir, key));
    if (old) rmSync(join(dir, old), { recursive: true, force: true });
  };
  write(text);
  return {
    dir,
    file: join(dir, key),
    update: write,
    breakData: () => {
      const old = readlinkSync(join(dir, '..data'));
      symlinkSync('..nowhere', join(dir, '..data_tmp'));
      renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
      rmSync(join(dir, old), { recursive: true, force: true });
    },
  };
}
