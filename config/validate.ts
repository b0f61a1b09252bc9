// Schema checks that report the first problem as `<what> <field>: <message>`, naming the field by
// its path in the document (`process.args`, `linux.namespaces[2].type`).
//
// A schema is a plain function that returns its input's checked copy or throws the first problem.
// This replaced valibot (which config/oci.ts used for config.json and the hook's state, nothing
// else): valibot builds every schema as objects with methods and getters when its module loads,
// and every front door that reads a config.json (`tsrun run`, the hook, tsrun-runc) paid for that
// and for valibot's code in its bundle and code cache on every cold start (docs/fast-path.md).
// The rules and messages are valibot's as tsrun used them: the same traversal order (so the same
// first problem), loose objects that keep unknown keys, objects and records that accept arrays,
// "is required" for a missing key, "must be <type> (got <value>)" for a wrong type.
import { UserError } from './errors.js';

/** One problem with an input, named by its field: what drivers' validate() return. */
export interface Issue {
  path: string;
  message: string;
}

/** Checks `input` and returns it (objects and arrays as new ones), or throws a SchemaProblem. */
export type Schema<T> = (input: unknown) => T;
/** A key a loose object may lack. */
export type OptionalSchema<T> = Schema<T | undefined> & { readonly optional: true };
type Entries = Record<string, Schema<unknown>>;
type Out<S> = S extends Schema<infer T> ? T : never;
/** What a loose object with these entries returns: its keys (the optional ones optional) and any other. */
export type LooseObject<E extends Entries> = { [K in keyof E as E[K] extends { optional: true } ? never : K]: Out<E[K]> } & {
  [K in keyof E as E[K] extends { optional: true } ? K : never]?: Out<E[K]>;
} & { [key: string]: unknown };

/** The first problem found: its message and the path of keys and indexes to it, outermost first. */
export class SchemaProblem {
  readonly path: (string | number)[] = [];
  constructor(readonly message: string) {}
}

/** A value as valibot names it in a message: strings quoted, objects by their constructor. */
function shown(input: unknown): string {
  const type = typeof input;
  if (type === 'string') return `"${input as string}"`;
  if (type === 'number' || type === 'bigint' || type === 'boolean') return `${input as number}`;
  if (type === 'object' || type === 'function') return ((input as object | null) && Object.getPrototypeOf(input)?.constructor?.name) ?? 'null';
  return type;
}

/** The wrong type (or nothing, for a missing key). */
function wrongType(expected: string, input: unknown): SchemaProblem {
  return new SchemaProblem(input === undefined ? 'is required' : `must be ${expected} (got ${shown(input)})`);
}

/** Runs `schema` on the value at `key`, adding the key to the path of a problem it throws. */
function at<T>(schema: Schema<T>, value: unknown, key: string | number): T {
  try {
    return schema(value);
  } catch (err) {
    if (err instanceof SchemaProblem) err.path.unshift(key);
    throw err;
  }
}

/** An own key that may be copied to an output object. */
function copiable(input: object, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(input, key) && key !== '__proto__' && key !== 'prototype' && key !== 'constructor';
}

export const string = (): Schema<string> => (input) => {
  if (typeof input === 'string') return input;
  throw wrongType('string', input);
};

export const number = (): Schema<number> => (input) => {
  if (typeof input === 'number' && !Number.isNaN(input)) return input;
  throw wrongType('number', input);
};

export const boolean = (): Schema<boolean> => (input) => {
  if (typeof input === 'boolean') return input;
  throw wrongType('boolean', input);
};

/** One of `options`; anything else is `message`. */
export const picklist =
  <const O extends readonly string[]>(options: O, message: string): Schema<O[number]> =>
  (input) => {
    if ((options as readonly unknown[]).includes(input)) return input as O[number];
    throw new SchemaProblem(input === undefined ? 'is required' : message);
  };

/** `schema`, then `test` on its value: false is `message`. */
export const check =
  <T>(schema: Schema<T>, test: (value: T) => boolean, message: string): Schema<T> =>
  (input) => {
    const value = schema(input);
    if (!test(value)) throw new SchemaProblem(message);
    return value;
  };

export const optional = <T>(schema: Schema<T>): OptionalSchema<T> => Object.assign((input: unknown) => (input === undefined ? undefined : schema(input)), { optional: true as const });

export const array =
  <T>(item: Schema<T>): Schema<T[]> =>
  (input) => {
    if (!Array.isArray(input)) throw wrongType('Array', input);
    const out: T[] = [];
    for (let i = 0; i < input.length; i++) out.push(at(item, input[i], i));
    return out;
  };

/** An object of string keys (an array passes too, as in valibot), each value checked by `value`. */
export const record =
  <T>(value: Schema<T>): Schema<Record<string, T>> =>
  (input) => {
    if (!input || typeof input !== 'object') throw wrongType('Object', input);
    const out: Record<string, T> = {};
    for (const key in input) if (copiable(input, key)) out[key] = at(value, (input as Record<string, unknown>)[key], key);
    return out;
  };

/** An object (an array passes too, as in valibot) with these keys, checked in this order, and any
 * others kept as they are (after the known ones). */
export const looseObject =
  <E extends Entries>(entries: E): Schema<LooseObject<E>> =>
  (input) => {
    if (!input || typeof input !== 'object') throw wrongType('Object', input);
    const src = input as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const key in entries) {
      const schema = entries[key]!;
      if (key in src) out[key] = at(schema, src[key], key);
      else if ((schema as Partial<OptionalSchema<unknown>>).optional !== true) {
        const problem = new SchemaProblem('is required');
        problem.path.push(key);
        throw problem;
      }
    }
    for (const key in src) if (copiable(src, key) && !Object.prototype.hasOwnProperty.call(entries, key)) out[key] = src[key];
    return out as LooseObject<E>;
  };

/** Parse `input` with `schema` or throw a UserError naming the document and the field. */
export function parseOrThrow<T>(schema: Schema<T>, input: unknown, what: string): T {
  try {
    return schema(input);
  } catch (err) {
    if (!(err instanceof SchemaProblem)) throw err;
    const path = pathOf(err.path);
    throw new UserError(`${what}: ${path === '' ? '' : `${path}: `}${err.message}`);
  }
}

function pathOf(keys: (string | number)[]): string {
  let out = '';
  for (const key of keys) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out === '' ? key : `.${key}`;
  }
  return out;
}
