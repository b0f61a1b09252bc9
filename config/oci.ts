// The part of the OCI runtime-spec tsrun reads and writes: a bundle's config.json and the state
// JSON a runtime hands a hook. Schemas are loose objects: fields tsrun does not know pass through
// untouched, because the spec tsrun writes for runc must keep everything the user put there.
// The schemas are config/validate.ts's plain functions: built when this module loads, by every door
// that reads a config.json, so they cost a few closures (valibot's cost each door ~1 ms: fast-path.md).
import * as v from './validate.js';

const NAMESPACE_TYPES = ['pid', 'network', 'mount', 'ipc', 'uts', 'user', 'cgroup', 'time'] as const;
export type NamespaceType = (typeof NAMESPACE_TYPES)[number];

const nonEmptyString = v.check(v.string(), (s) => s.length >= 1, 'must not be empty');
const absolutePath = v.check(v.string(), (s) => s.startsWith('/'), 'must be an absolute path');
const int = v.check(v.number(), Number.isInteger, 'must be an integer');

const NamespaceSchema = v.looseObject({
  type: v.picklist(NAMESPACE_TYPES, `must be one of ${NAMESPACE_TYPES.join(', ')}`),
  path: v.optional(absolutePath),
});

const HookSchema = v.looseObject({
  path: absolutePath,
  args: v.optional(v.array(v.string())),
  env: v.optional(v.array(v.string())),
  timeout: v.optional(v.check(int, (n) => n >= 1, 'must be at least 1')),
});

const ResourcesSchema = v.looseObject({
  memory: v.optional(v.looseObject({ limit: v.optional(int), swap: v.optional(int) })),
  cpu: v.optional(v.looseObject({ shares: v.optional(int), quota: v.optional(int), period: v.optional(int) })),
  pids: v.optional(v.looseObject({ limit: int })),
});

export const SpecSchema = v.looseObject({
  ociVersion: nonEmptyString,
  process: v.looseObject({
    terminal: v.optional(v.boolean()),
    args: v.check(v.array(v.string()), (a) => a.length >= 1, 'must name the program to run'),
    env: v.optional(v.array(v.check(v.string(), (s) => s.includes('='), 'must have the form KEY=VALUE'))),
    cwd: absolutePath,
  }),
  root: v.looseObject({
    path: nonEmptyString,
    readonly: v.optional(v.boolean()),
  }),
  hostname: v.optional(v.string()),
  annotations: v.optional(v.record(v.string())),
  hooks: v.optional(v.record(v.array(HookSchema))),
  linux: v.optional(
    v.looseObject({
      namespaces: v.optional(v.array(NamespaceSchema)),
      resources: v.optional(ResourcesSchema),
      cgroupsPath: v.optional(v.string()),
    }),
  ),
});

type Out<S> = S extends v.Schema<infer T> ? T : never;

export type Spec = Out<typeof SpecSchema>;
/** An entry of config.json's `mounts` (kept as the user wrote them; tsrun only appends). */
export interface SpecMount {
  destination: string;
  type?: string | undefined;
  source?: string | undefined;
  options?: string[] | undefined;
}
export type SpecNamespace = Out<typeof NamespaceSchema>;
export type SpecResources = Out<typeof ResourcesSchema>;
export type SpecHook = Out<typeof HookSchema>;

/** The state JSON on a hook's stdin (runtime-spec "State"). `pid` is absent at poststop. */
export const StateSchema = v.looseObject({
  ociVersion: nonEmptyString,
  id: nonEmptyString,
  status: v.picklist(['creating', 'created', 'running', 'stopped'], 'must be creating, created, running or stopped'),
  pid: v.optional(v.check(int, (n) => n >= 1, 'must be a positive process id')),
  bundle: absolutePath,
  annotations: v.optional(v.record(v.string())),
});
export type State = Out<typeof StateSchema>;
