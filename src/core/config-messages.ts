/**
 * How a config problem is worded: the rule in the file's terms and the value that was given
 * (`must be >= 0, got -1`). The schema's own messages and zod's defaults both go through here.
 */
import type { z } from 'zod';

/** A value as it was written: `"abc"`, `5`, `true`; `nothing` when absent. */
export function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null (an empty value)';
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

/** Like `show`, but a list or a mapping is named by its kind rather than spelled out. */
export function describe(v: unknown): string {
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object' && v !== null) return 'a mapping';
  return show(v);
}

const EXPECTED: Readonly<Record<string, string>> = {
  object: 'a mapping (key: value)',
  array: 'a list',
  string: 'a string',
  boolean: 'true or false',
  number: 'a number',
  int: 'a whole number',
};

/**
 * Messages for issues the schema leaves to zod's defaults ("Invalid input: expected string,
 * received number"): name the rule and the value in the file's terms. Schema messages win.
 */
export function plainMessage(issue: z.core.$ZodRawIssue): string | undefined {
  const got = `got ${describe(issue.input)}`;
  switch (issue.code) {
    case 'invalid_type':
      if (issue.input === undefined) return 'is required';
      return `must be ${EXPECTED[issue.expected] ?? issue.expected}, ${got}`;
    case 'too_small':
    case 'too_big':
      return boundMessage(issue, got);
    case 'invalid_value':
      return `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}, ${got}`;
    case 'invalid_format':
      return issue.pattern !== undefined ? `must match ${issue.pattern}, ${got}` : `must be a valid ${issue.format}, ${got}`;
    case 'invalid_key':
      return issue.issues.map((i) => i.message).join('; ');
    case 'invalid_union':
      return `does not have any of the accepted forms, ${got}`;
    default:
      return undefined;
  }
}

function boundMessage(issue: z.core.$ZodRawIssue<z.core.$ZodIssueTooSmall | z.core.$ZodIssueTooBig>, got: string): string {
  const small = issue.code === 'too_small';
  const bound = small ? issue.minimum : issue.maximum;
  const cmp = small ? (issue.inclusive ? '>=' : '>') : issue.inclusive ? '<=' : '<';
  const word = small ? 'at least' : 'at most';
  if (issue.origin === 'string') return `must be ${word} ${bound} character(s) long, ${got}`;
  if (issue.origin === 'array') return `must have ${word} ${bound} item(s), ${got}`;
  return `must be ${cmp} ${bound}, ${got}`;
}
