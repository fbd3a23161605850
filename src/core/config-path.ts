/** A place in the config (`routes[2].inflight.max`), as zod and the YAML walk give it and as messages spell it. */

export type ConfigPath = readonly (string | number)[];

/** `routes[2].inflight.max`; keys that are not identifiers are quoted: `match.headers["x-id"]`. */
export function formatPath(path: ConfigPath): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (/^[A-Za-z_$][\w$]*$/.test(seg)) out += out === '' ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}
