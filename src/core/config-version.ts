/** The config version: a short content hash of the file text, seen in logs, /config and spans. */

/**
 * Short, stable hash of the config text: the top 48 bits of FNV-1a 64 over its UTF-8 bytes, as
 * 12 hex digits. Pure TypeScript so core needs no crypto module; it names versions, it does not
 * defend against anyone. Computed in two 32-bit halves: it runs over the whole file at every
 * poll, and BigInt arithmetic per byte held the event loop ~150 ms for a 1 MiB file (issue 10).
 */
export function configVersion(text: string): string {
  const bytes = new TextEncoder().encode(text);
  // hash = hi * 2^32 + lo, both int32; offset basis 0xcbf29ce484222325.
  let hi = 0xcbf29ce4 | 0;
  let lo = 0x84222325 | 0;
  for (let i = 0; i < bytes.length; i++) {
    lo ^= bytes[i] as number;
    // hash * (2^40 + 0x1b3) mod 2^64, in small integers only: lo * 0x1b3 in 16-bit halves (the
    // carry goes to hi), and hash << 40 adds lo << 8 to hi.
    const low = (lo & 0xffff) * 0x1b3;
    const mid = (lo >>> 16) * 0x1b3 + (low >>> 16);
    hi = (Math.imul(hi, 0x1b3) + (mid >>> 16) + (lo << 8)) | 0;
    lo = (mid << 16) | (low & 0xffff);
  }
  // FNV's low bits mix poorly (bit 0 is the XOR of the bytes' bit 0), so keep the high ones.
  return (hi >>> 0).toString(16).padStart(8, '0') + (lo >>> 16).toString(16).padStart(4, '0');
}
