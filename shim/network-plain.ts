// The namespace choices of `tsrun run` that wire nothing: --net none (a namespace of its own,
// without interfaces) and --net host. No engine is needed for them, so this module imports none:
// the plain run door (shim/run-door-plain.ts) loads only this, and shim/network-wiring.ts, which
// wires networks and joins namespaces, hands these two cases here.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { UserError, SystemError } from '../config/errors.js';
import type { Settings } from '../config/settings.js';
import type { Logger } from '../runtime/log.js';
import type { Transaction } from '../runtime/tx.js';
import type { RunOptions, WiredNetns, WireOptions } from './run.js';

/** --net none or host: the namespace choice made in the spec; undefined for any other --net.
 * `opts.deferAttach` (the foreground run, which starts runc before the rest of its setup): the
 * --net none owner's registration is left to the caller (`late`), to run once runc has started. */
export async function wireWithoutNetwork(o: RunOptions, containerId: string, settings: Settings, tx: Transaction, log: Logger, opts?: WireOptions): Promise<WiredNetns | undefined> {
  if (o.net.kind !== 'network' && (o.networkAliases ?? []).length > 0) throw new UserError(`--network-alias needs a network: --net ${o.net.kind} has none`);
  switch (o.net.kind) {
    case 'none': {
      if (o.publish.length > 0) throw new UserError('-p needs a network: --net none has no interfaces to publish on');
      // Registered too, so other containers can join its (interface-less) namespace. runc needs
      // none of it: the foreground run registers while runc starts up (~0.35 ms of a cold
      // process's main thread off the path to runc's spawn). A joiner waits for it (findJoinTarget:
      // the owner's pid file can come first), and a refusal (an earlier namespace of this id
      // still has users) kills that runc and rolls back as any failure of the setup does.
      const register = async () => {
        const users = await import('../runtime/netns-users.js');
        await tx.step('register as the user of its network namespace', () => users.registerOwner(settings.runDir, containerId, process.pid, { wired: false }), () => leaveNamespace(settings, containerId, containerId, log));
      };
      // Deferred only for a new id (no users' directory, netns-users.ts usersDir: the usual case,
      // where registerOwner can refuse nothing): an id with an earlier namespace registers before
      // runc, so that its refusal comes before anything of the container runs (a run held up after
      // its spawn would otherwise run the command of a run it then refuses).
      if (opts?.deferAttach === true && !existsSync(path.join(settings.runDir, 'netns-users', containerId))) return { kind: 'new', late: register };
      await register();
      return { kind: 'new' };
    }
    case 'host':
      if (o.publish.length > 0) throw new UserError('-p is not needed with --net host: the container uses the host ports directly');
      return { kind: 'host', dns: { kind: 'copy', dns: o.dns ?? [], hostNetwork: true } };
    default:
      return undefined;
  }
}

/**
 * `id` stops using `root`'s namespace; the last user out tears the owner's endpoint down, through
 * `detach` (the engine's, given by shim/network-wiring.ts). A --net none owner registers without
 * endpoints, so its last user never needs one; without `detach`, an owner that has endpoints is
 * left marked for gc rather than half torn down.
 */
export async function leaveNamespace(settings: Settings, root: string, id: string, log: Logger, detach?: (root: string) => Promise<void>): Promise<void> {
  const users = await import('../runtime/netns-users.js');
  // Without `detach` the caller is a --net none owner, which registered unwired: its directory is
  // removed at once when it is the last user (netns-users.ts, removeEmpty).
  const l = users.leave(settings.runDir, root, id, { unwired: detach === undefined && root === id });
  if (!l.teardown) {
    log.info({ owner: root }, 'the network namespace has other users: its endpoint stays for them');
    return;
  }
  if (l.wired && detach === undefined) throw new SystemError(`leave the network namespace of ${root}`, new Error('its endpoint needs the engine: tsrun gc removes it'));
  try {
    if (l.wired) {
      if (root !== id) log.info({ owner: root }, 'last user of a shared network namespace: tearing down its owner\'s endpoint');
      await detach!(root);
    }
  } finally {
    if (l.finished !== true) users.finishTeardown(settings.runDir, root);
  }
}
