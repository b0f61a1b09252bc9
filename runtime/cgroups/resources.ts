// Resource limits become `linux.resources` in the spec; runc's own cgroup manager writes the
// cgroup files (v1, hybrid or v2), so tsrun never writes them itself.
import type { SpecResources } from '../../config/oci.js';
import { UserError } from '../../config/errors.js';

export interface ResourceLimits {
  memoryBytes?: number | undefined;
  /** memory + swap, docker's meaning; -1 = unlimited swap. */
  memorySwapBytes?: number | undefined;
  cpus?: number | undefined;
  cpuShares?: number | undefined;
  pidsLimit?: number | undefined;
}

/** The CFS period runc and docker use; quota = cpus × period. */
export const CFS_PERIOD_US = 100_000;

/** Merge the flags into the bundle's own resources (flags win). */
export function applyResourceLimits(base: SpecResources | undefined, limits: ResourceLimits): SpecResources {
  const out: SpecResources = structuredClone(base ?? {});
  if (limits.memorySwapBytes !== undefined && limits.memorySwapBytes !== -1) {
    const memory = limits.memoryBytes ?? out.memory?.limit;
    if (memory === undefined) throw new UserError('--memory-swap needs --memory: the swap limit counts memory plus swap');
    if (limits.memorySwapBytes < memory) throw new UserError('--memory-swap must be at least --memory: it counts memory plus swap');
  }
  if (limits.memoryBytes !== undefined || limits.memorySwapBytes !== undefined) {
    out.memory = { ...out.memory };
    if (limits.memoryBytes !== undefined) out.memory.limit = limits.memoryBytes;
    if (limits.memorySwapBytes !== undefined) out.memory.swap = limits.memorySwapBytes;
  }
  if (limits.cpus !== undefined || limits.cpuShares !== undefined) {
    out.cpu = { ...out.cpu };
    if (limits.cpus !== undefined) {
      out.cpu.period = CFS_PERIOD_US;
      out.cpu.quota = Math.round(limits.cpus * CFS_PERIOD_US);
    }
    if (limits.cpuShares !== undefined) out.cpu.shares = limits.cpuShares;
  }
  if (limits.pidsLimit !== undefined) out.pids = { limit: limits.pidsLimit };
  return out;
}

/**
 * Every container's cgroup sits under one tsrun parent, so gc can find leftovers and an operator
 * can see (or limit) all of tsrun's containers at once. The cgroupfs form "/parent/id" works for
 * runc on v1, hybrid and v2.
 */
export const CGROUP_PARENT = 'tsrun';
export function cgroupsPathFor(containerId: string): string {
  return `/${CGROUP_PARENT}/${containerId}`;
}
