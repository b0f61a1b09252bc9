import { afterAll, describe, expect, it } from '@jest/globals';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { dropImageAnnotations, imageTsrunAnnotations, storageOf } from '../../../hook/image-annotations.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-imgann-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const IMAGE = 'a'.repeat(64);
const CTR = 'c'.repeat(64);
const big = (name: string) => `=${Buffer.from(name).toString('base64')}`;

/** A containers/storage graph root as podman leaves it: one container of one image. */
function storage(driver: Driver, manifest: unknown, config: unknown = { config: {} }): string {
  const graph = mkdtempSync(path.join(tmp, `${driver}-`));
  mkdirSync(path.join(graph, `${driver}-containers`));
  writeFileSync(path.join(graph, `${driver}-containers`, 'containers.json'), JSON.stringify([{ id: 'other', image: 'b'.repeat(64) }, { id: CTR, image: IMAGE, layer: 'l1' }]));
  const img = path.join(graph, `${driver}-images`, IMAGE);
  mkdirSync(img, { recursive: true });
  writeFileSync(path.join(img, 'manifest'), JSON.stringify(manifest));
  writeFileSync(path.join(img, big(`manifest-sha256:${'d'.repeat(64)}`)), JSON.stringify(manifest));
  writeFileSync(path.join(img, big(`sha256:${IMAGE}`)), JSON.stringify(config));
  return graph;
}
type Driver = 'overlay' | 'vfs' | 'btrfs';
const rootOf = (graph: string, driver: Driver) => (driver === 'overlay' ? path.join(graph, 'overlay', 'l1', 'merged') : driver === 'btrfs' ? path.join(graph, 'btrfs', 'subvolumes', 'l1') : path.join(graph, 'vfs', 'dir', 'l1'));

describe('storageOf', () => {
  it('finds the graph root of overlay and vfs layer mounts, and nothing for other roots', () => {
    expect(storageOf('/var/lib/containers/storage/overlay/abc/merged')).toEqual({ graph: '/var/lib/containers/storage', driver: 'overlay' });
    expect(storageOf('/var/lib/containers/storage/vfs/dir/abc')).toEqual({ graph: '/var/lib/containers/storage', driver: 'vfs' });
    // The other drivers of containers/storage mount a container's layer under their own home too:
    // a podman on btrfs or zfs (or aufs, devicemapper) must not honour its images' keys either.
    expect(storageOf('/var/lib/containers/storage/btrfs/subvolumes/abc')).toEqual({ graph: '/var/lib/containers/storage', driver: 'btrfs' });
    expect(storageOf('/var/lib/containers/storage/zfs/graph/abc')).toEqual({ graph: '/var/lib/containers/storage', driver: 'zfs' });
    expect(storageOf('/var/lib/containers/storage/aufs/mnt/abc')).toEqual({ graph: '/var/lib/containers/storage', driver: 'aufs' });
    expect(storageOf('/var/lib/containers/storage/devicemapper/mnt/abc/rootfs')).toEqual({ graph: '/var/lib/containers/storage', driver: 'devicemapper' });
    expect(storageOf('/srv/bundle/rootfs')).toBeUndefined();
    expect(storageOf('/run/containerd/io.containerd.runtime.v2.task/default/x/rootfs')).toBeUndefined();
    expect(storageOf('/var/lib/docker/overlay2/abc/merged')).toBeUndefined();
  });
});

describe('dropImageAnnotations', () => {
  const manifest = { schemaVersion: 2, annotations: { 'io.tsrun.network': 'web', 'io.tsrun.ports': '2222:22', 'org.example': 'x' } };

  for (const driver of ['overlay', 'vfs', 'btrfs'] as const) {
    it(`${driver}: drops the keys whose value the image's manifest carries, keeps the user's`, () => {
      const root = rootOf(storage(driver, manifest), driver);
      const r = dropImageAnnotations({ 'io.tsrun.network': 'web', 'io.tsrun.ports': '8080:80', 'other.key': 'web' }, root, CTR);
      expect(r.fromImage).toEqual(['io.tsrun.network']);
      expect(r.annotations).toEqual({ 'io.tsrun.ports': '8080:80', 'other.key': 'web' });
    });
  }

  it("the image config's ENV counts as the image's (what --env-keys would read)", () => {
    const graph = storage('overlay', { schemaVersion: 2 }, { config: { Env: ['PATH=/bin', 'io.tsrun.network=web', 'io.tsrun.ports'] } });
    const r = dropImageAnnotations({ 'io.tsrun.network': 'web' }, rootOf(graph, 'overlay'), CTR);
    expect(r).toEqual({ annotations: {}, fromImage: ['io.tsrun.network'] });
    expect(imageTsrunAnnotations(rootOf(graph, 'overlay'), CTR)).toEqual(new Map([['io.tsrun.network', new Set(['web'])]]));
  });

  it('nothing is dropped for a root outside containers/storage, an unknown container, or a broken store', () => {
    const ann = { 'io.tsrun.network': 'web' };
    expect(dropImageAnnotations(ann, '/srv/bundle/rootfs', CTR)).toEqual({ annotations: ann, fromImage: [] });
    expect(dropImageAnnotations(ann, undefined, CTR)).toEqual({ annotations: ann, fromImage: [] });
    const graph = storage('overlay', manifest);
    expect(dropImageAnnotations(ann, rootOf(graph, 'overlay'), 'someone-else')).toEqual({ annotations: ann, fromImage: [] });
    writeFileSync(path.join(graph, 'overlay-containers', 'containers.json'), '{not json');
    expect(dropImageAnnotations(ann, rootOf(graph, 'overlay'), CTR)).toEqual({ annotations: ann, fromImage: [] });
  });

  it('a hostile manifest (annotations not an object, values not strings) drops nothing and throws nothing', () => {
    for (const m of [{ annotations: 'io.tsrun.network' }, { annotations: ['web'] }, { annotations: { 'io.tsrun.network': 7 } }, null, 'x']) {
      const root = rootOf(storage('overlay', m), 'overlay');
      expect(dropImageAnnotations({ 'io.tsrun.network': 'web' }, root, CTR).fromImage).toEqual([]);
    }
  });

  it("an image in an additional image store (storage.conf additionalimagestores) is found there; one in no known store fails closed", () => {
    const manifest = { annotations: { 'io.tsrun.network': 'web', 'io.tsrun.ports': '8080:80' } };
    const extra = storage('overlay', manifest); // the image lives here ...
    const graph = storage('overlay', manifest);
    rmSync(path.join(graph, 'overlay-images'), { recursive: true }); // ... not in the container's store
    const conf = path.join(tmp, 'storage.conf');
    writeFileSync(conf, `[storage]\ndriver = "overlay"\n[storage.options]\n# additionalimagestores = ["/nowhere"]\nadditionalimagestores = [\n  "/does/not/exist",\n  "${extra}", # the read-only one\n]\n`);
    const env = { CONTAINERS_STORAGE_CONF: conf };
    const ann = { 'io.tsrun.network': 'web', 'io.tsrun.ports': '9090:80', other: 'x' };
    expect(dropImageAnnotations(ann, rootOf(graph, 'overlay'), CTR, env)).toEqual({ annotations: { 'io.tsrun.ports': '9090:80', other: 'x' }, fromImage: ['io.tsrun.network'] });
    // Before: not found, nothing dropped (the image's network and ports honoured).
    const none = { CONTAINERS_STORAGE_CONF: path.join(tmp, 'absent.conf') };
    // (The machine's own storage.conf is read then: no store of it holds this made-up image.)
    expect(imageTsrunAnnotations(rootOf(graph, 'overlay'), CTR, none)).toBe('not found');
    expect(dropImageAnnotations(ann, rootOf(graph, 'overlay'), CTR, none)).toEqual({ annotations: { other: 'x' }, fromImage: ['io.tsrun.network', 'io.tsrun.ports'], imageNotFound: true });
  });
});

