// The part of the OCI runtime-spec tsrun reads and writes: a bundle's config.json and the state
// JSON a runtime hands a hook. Schemas are loose objects: fields tsrun does not know pass through
// untouched, because the spec tsrun writes for runc must keep everything the user put there.
import * as v from 'valibot';

const NAMESPACE_TYPES = ['pid', 'network', 'mount', 'ipc', 'uts', 'user', 'cgroup', 'time'] as const;
export type NamespaceType = (typeof NAMESPACE_TYPES)[number];

const nonEmptyString = v.pipe(v.string(), v.minLength(1, 'must not be empty'));
const absolutePath = v.pipe(v.string(), v.startsWith('/', 'must be an absolute path'));
const int = v.pipe(v.number(), v.integer('must be an integer'));

const NamespaceSchema = v.looseObject({
  type: v.picklist(NAMESPACE_TYPES, `must be one of ${NAMESPACE_TYPES.join(', ')}`),
  path: v.optional(absolutePath),
});

const HookSchema = v.looseObject({
  path: absolutePath,
  args: v.optional(v.array(v.string())),
  env: v.optional(v.array(v.string())),
  timeout: v.optional(v.pipe(int, v.minValue(1, 'must be at least 1'))),
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
    args: v.pipe(v.array(v.string()), v.minLength(1, 'must name the program to run')),
    env: v.optional(v.array(v.pipe(v.string(), v.includes('=', 'must have the form KEY=VALUE')))),
    cwd: absolutePath,
  }),
  root: v.looseObject({
    path: nonEmptyString,
    readonly: v.optional(v.boolean()),
  }),
  hostname: v.optional(v.string()),
  annotations: v.optional(v.record(v.string(), v.string())),
  hooks: v.optional(v.record(v.string(), v.array(HookSchema))),
  linux: v.optional(
    v.looseObject({
      namespaces: v.optional(v.array(NamespaceSchema)),
      resources: v.optional(ResourcesSchema),
      cgroupsPath: v.optional(v.string()),
    }),
  ),
});

export type Spec = v.InferOutput<typeof SpecSchema>;
/** An entry of config.json's `mounts` (kept as the user wrote them; tsrun only appends). */
export interface SpecMount {
  destination: string;
  type?: string | undefined;
  source?: string | undefined;
  options?: string[] | undefined;
}
export type SpecNamespace = v.InferOutput<typeof NamespaceSchema>;
export type SpecResources = v.InferOutput<typeof ResourcesSchema>;
export type SpecHook = v.InferOutput<typeof HookSchema>;

/** The state JSON on a hook's stdin (runtime-spec "State"). `pid` is absent at poststop. */
export const StateSchema = v.looseObject({
  ociVersion: nonEmptyString,
  id: nonEmptyString,
  status: v.picklist(['creating', 'created', 'running', 'stopped'], 'must be creating, created, running or stopped'),
  pid: v.optional(v.pipe(int, v.minValue(1, 'must be a positive process id'))),
  bundle: absolutePath,
  annotations: v.optional(v.record(v.string(), v.string())),
});
export type State = v.InferOutput<typeof StateSchema>;
