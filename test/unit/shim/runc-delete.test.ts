// When tsrun may delete an ended container's runc state itself (shim/runc.ts deleteEnded) and when
// it must leave that to `runc delete`: only the plain case (own pid namespace, no hooks, no RDT
// group, cgroup directories under /sys/fs/cgroup, init ended) is done in-process.
import { describe, expect, it } from '@jest/globals';
import { cgroupsToDeleteInProcess } from '../../../shim/runc.js';

const dead = () => false;
const alive = () => true;

function state(over: Record<string, unknown> = {}, config: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: 'c1',
    init_process_pid: 4242,
    init_process_start: 123456,
    cgroup_paths: { '': '/sys/fs/cgroup/unified/tsrun/c1', pids: '/sys/fs/cgroup/pids/tsrun/c1', cpu: '/sys/fs/cgroup/cpu,cpuacct/tsrun/c1', cpuacct: '/sys/fs/cgroup/cpu,cpuacct/tsrun/c1' },
    intel_rdt_path: '',
    config: {
      namespaces: [{ type: 'NEWPID', path: '' }, { type: 'NEWNET', path: '/proc/1/ns/net' }, { type: 'NEWNS', path: '' }],
      Hooks: { createContainer: null, createRuntime: null, poststart: null, poststop: null, prestart: null, startContainer: null },
      ...config,
    },
    ...over,
  };
}

describe('cgroupsToDeleteInProcess', () => {
  it('returns the cgroup directories of a plain ended container, each once', () => {
    expect(cgroupsToDeleteInProcess(state(), dead)).toEqual(['/sys/fs/cgroup/unified/tsrun/c1', '/sys/fs/cgroup/pids/tsrun/c1', '/sys/fs/cgroup/cpu,cpuacct/tsrun/c1']);
  });

  it('asks about the init by the pid and start time runc recorded', () => {
    const seen: unknown[] = [];
    cgroupsToDeleteInProcess(state(), (pid, start) => (seen.push([pid, start]), false));
    expect(seen).toEqual([[4242, '123456']]);
  });

  it('leaves a container whose init still runs to runc (it kills it)', () => {
    expect(cgroupsToDeleteInProcess(state(), alive)).toBeUndefined();
  });

  it('leaves a container without a pid namespace of its own to runc (processes may be left in its cgroup)', () => {
    expect(cgroupsToDeleteInProcess(state({}, { namespaces: [{ type: 'NEWNET', path: '' }] }), dead)).toBeUndefined();
    expect(cgroupsToDeleteInProcess(state({}, { namespaces: [{ type: 'NEWPID', path: '/proc/7/ns/pid' }] }), dead)).toBeUndefined();
  });

  it('leaves a container with hooks to runc (its poststop hooks run at delete)', () => {
    expect(cgroupsToDeleteInProcess(state({}, { Hooks: { poststop: [{ path: '/bin/true' }] } }), dead)).toBeUndefined();
    expect(cgroupsToDeleteInProcess(state({}, { hooks: { poststop: [{ path: '/bin/true' }] } }), dead)).toBeUndefined();
    expect(cgroupsToDeleteInProcess(state({}, { Hooks: { poststop: [] } }), dead)).toEqual(expect.any(Array));
  });

  it('leaves an Intel RDT group to runc', () => {
    expect(cgroupsToDeleteInProcess(state({ intel_rdt_path: '/sys/fs/resctrl/c1' }), dead)).toBeUndefined();
  });

  it('leaves anything it does not recognise to runc', () => {
    expect(cgroupsToDeleteInProcess(undefined, dead)).toBeUndefined();
    expect(cgroupsToDeleteInProcess('x', dead)).toBeUndefined();
    expect(cgroupsToDeleteInProcess(state({ init_process_pid: '4242' }), dead)).toBeUndefined();
    expect(cgroupsToDeleteInProcess(state({ cgroup_paths: { pids: '/elsewhere/c1' } }), dead)).toBeUndefined();
    expect(cgroupsToDeleteInProcess(state({ cgroup_paths: { pids: '/sys/fs/cgroup/pids/../../etc' } }), dead)).toBeUndefined();
    expect(cgroupsToDeleteInProcess(state({ cgroup_paths: { pids: 7 } }), dead)).toBeUndefined();
    expect(cgroupsToDeleteInProcess(state({}, { Hooks: 'x' }), dead)).toBeUndefined();
  });

  it('has no cgroup to remove when runc recorded none', () => {
    expect(cgroupsToDeleteInProcess(state({ cgroup_paths: null }), dead)).toEqual([]);
  });
});
