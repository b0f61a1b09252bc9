// Schema checks that report the first problem as `<what> <field>: <message>`, naming the field by
// its path in the document (`process.args`, `linux.namespaces[2].type`).
import * as v from 'valibot';
import { UserError } from './errors.js';

/** One problem with an input, named by its field: what drivers' validate() return. */
export interface Issue {
  path: string;
  message: string;
}

/** Parse `input` with `schema` or throw a UserError naming the document and the field. */
export function parseOrThrow<S extends v.GenericSchema>(schema: S, input: unknown, what: string): v.InferOutput<S> {
  const result = v.safeParse(schema, input);
  if (result.success) return result.output;
  const first = result.issues[0]!;
  const path = pathOf(first);
  throw new UserError(`${what}: ${path === '' ? '' : `${path}: `}${messageOf(first)}`);
}

function pathOf(issue: v.BaseIssue<unknown>): string {
  let out = '';
  for (const item of issue.path ?? []) {
    const key = (item as { key: unknown }).key;
    if (typeof key === 'number') out += `[${key}]`;
    else out += out === '' ? String(key) : `.${String(key)}`;
  }
  return out;
}

function messageOf(issue: v.BaseIssue<unknown>): string {
  // Valibot's default messages read "Invalid type: Expected string but received 5"; for a
  // missing key say so plainly.
  if (issue.kind === 'schema' && issue.input === undefined && issue.type !== 'undefined') return 'is required';
  return issue.message.replace(/^Invalid type: Expected (.*) but received (.*)$/, 'must be $1 (got $2)');
}
