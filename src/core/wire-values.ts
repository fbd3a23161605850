/**
 * What the data path can put on the wire, for the config schema to refuse the rest up front: a
 * value node's writeHead or a raw response would choke on (ERR_INVALID_CHAR ends the process,
 * a raw CR LF splits the response) must never pass `portcullis check` or a reload.
 */

/**
 * RFC 9110 5.5 field-value, kept to ASCII: visible characters with spaces and tabs inside; no
 * CR, LF, NUL or other control characters, no leading or trailing whitespace (a receiver trims
 * it, so a route match on it could never hold). obs-text (bytes 0x80-0xff) is left out: from a
 * YAML string it would be a code point that is sent as latin1, not as written.
 */
const FIELD_VALUE = /^(?:[\x21-\x7e](?:[\t\x20-\x7e]*[\x21-\x7e])?)?$/;

export function isFieldValue(s: string): boolean {
  return FIELD_VALUE.test(s);
}

const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";
const QUOTED = '"(?:[\\t \\x21\\x23-\\x5b\\x5d-\\x7e]|\\\\[\\t \\x21-\\x7e])*"';
/** RFC 9110 8.3.1 media-type: type "/" subtype *( OWS ";" OWS parameter ). */
const MEDIA_TYPE = new RegExp(`^${TOKEN}/${TOKEN}(?:[ \\t]*;[ \\t]*${TOKEN}=(?:${TOKEN}|${QUOTED}))*$`);

export function isMediaType(s: string): boolean {
  return MEDIA_TYPE.test(s);
}

/** A host name as a Host header carries it (ASCII; punycode for others), `*.` in front for any subdomain, or an `[IPv6]` literal. */
const HOST = /^(?:(?:\*\.)?[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*\.?|\[[0-9A-Fa-f:.]+\])$/;

export function isHostName(s: string): boolean {
  return HOST.test(s);
}
