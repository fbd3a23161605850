import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { describe as describeValue, plainMessage, show } from '../../src/core/config-messages.ts';

/** The message a config problem gets for `value` against `schema`, worded by `plainMessage`. */
function messageFor(schema: z.ZodType, value: unknown): string | undefined {
  const result = schema.safeParse(value, { error: plainMessage });
  return result.success ? undefined : result.error.issues[0]?.message;
}

describe('config messages', () => {
  it('show spells a value as written; describe names lists and mappings by kind', () => {
    expect(show(undefined)).toBe('nothing');
    expect(show(null)).toBe('null (an empty value)');
    expect(show('abc')).toBe('"abc"');
    expect(show(5)).toBe('5');
    expect(show([1])).toBe('[1]');
    expect(show(1n)).toBe('1'); // JSON cannot: falls back to String
    expect(describeValue([1])).toBe('a list');
    expect(describeValue({ a: 1 })).toBe('a mapping');
    expect(describeValue(true)).toBe('true');
    expect(describeValue(null)).toBe('null (an empty value)');
  });

  it('zod defaults reworded: the rule in the file\'s terms and the value got', () => {
    expect(messageFor(z.object({ a: z.string() }), {})).toBe('is required');
    expect(messageFor(z.boolean(), 'yes')).toBe('must be true or false, got "yes"');
    expect(messageFor(z.object({}), 5)).toBe('must be a mapping (key: value), got 5');
    expect(messageFor(z.array(z.string()), { a: 1 })).toBe('must be a list, got a mapping');
    expect(messageFor(z.number().min(1), 0)).toBe('must be >= 1, got 0');
    expect(messageFor(z.number().lt(10), 10)).toBe('must be < 10, got 10');
    expect(messageFor(z.string().min(2), 'a')).toBe('must be at least 2 character(s) long, got "a"');
    expect(messageFor(z.array(z.number()).max(1), [1, 2])).toBe('must have at most 1 item(s), got a list');
    expect(messageFor(z.enum(['reject', 'close']), 'drop')).toBe('must be one of "reject", "close", got "drop"');
    expect(messageFor(z.string().regex(/^a$/), 'b')).toBe('must match /^a$/, got "b"');
    expect(messageFor(z.union([z.string(), z.number()]), true)).toBe('does not have any of the accepted forms, got true');
  });

  it('a message the schema gives itself wins', () => {
    expect(messageFor(z.number().min(1, { error: 'own words' }), 0)).toBe('own words');
  });
});
