// tsrun-runc's markers are keyed by (runc root, container id): two engines with different runc
// roots may use one id. Markers of the layout before (one per id) are adopted only by the root
// whose runc holds that container.
import { afterAll, describe, expect, it } from '@jest/globals';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { resolveSettings } from '../../../config/settings.js';
import { adoptLegacyMarker, legacyMarkerPath, markerPath, readMarker, removeMarker, runcRootOf, writeMarker } from '../../../runc/wiring.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-markers-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const settings = resolveSettings({ TSRUN_ROOT: tmp });

describe('runcRootOf', () => {
  it("--root (absolute, normalised), else runc's own default", () => {
    expect(runcRootOf(new Map([['root', '/run/docker/runtime-runc/moby/']]), {}, 0)).toBe('/run/docker/runtime-runc/moby');
    expect(runcRootOf(new Map([['root', '/a/../b//c']]), {}, 0)).toBe('/b/c');
    expect(runcRootOf(new Map(), {}, 0)).toBe('/run/runc');
    expect(runcRootOf(new Map(), { XDG_RUNTIME_DIR: '/run/user/0' }, 0)).toBe('/run/runc');
    expect(runcRootOf(new Map(), { XDG_RUNTIME_DIR: '/run/user/1000' }, 1000)).toBe('/run/user/1000/runc');
  });
});

describe('markers', () => {
  it('two roots, one id: two markers, each removed alone', () => {
    writeMarker(settings, '/run/a', { id: 'c1', bundle: '/b/a', pid: 10 });
    writeMarker(settings, '/run/b', { id: 'c1', bundle: '/b/b', pid: 20 });
    expect(readMarker(settings, '/run/a', 'c1')?.bundle).toBe('/b/a');
    expect(readMarker(settings, '/run/b', 'c1')?.bundle).toBe('/b/b');
    expect(readMarker(settings, '/run/c', 'c1')).toBeUndefined();
    removeMarker(settings, '/run/b', 'c1');
    expect(readMarker(settings, '/run/b', 'c1')).toBeUndefined();
    expect(readMarker(settings, '/run/a', 'c1')?.pid).toBe(10);
    expect((statSync(path.dirname(markerPath(settings, '/run/a', 'c1'))).mode & 0o777).toString(8)).toBe('700');
    removeMarker(settings, '/run/a', 'c1');
  });

  it("a marker of the layout before is adopted by the root whose runc holds the container, and by no other", () => {
    mkdirSync(path.dirname(legacyMarkerPath(settings, 'old')), { recursive: true });
    writeFileSync(legacyMarkerPath(settings, 'old'), JSON.stringify({ id: 'old', bundle: '/b/old', pid: 30 }));
    // another engine's container of that id (another bundle), or none, or another process: not ours
    expect(adoptLegacyMarker(settings, '/run/b', 'old', () => ({ pid: 31, bundle: '/b/other' }))).toBeUndefined();
    expect(adoptLegacyMarker(settings, '/run/b', 'old', () => undefined)).toBeUndefined();
    expect(adoptLegacyMarker(settings, '/run/b', 'old', () => ({ pid: 31, bundle: '/b/old' }))).toBeUndefined();
    expect(existsSync(legacyMarkerPath(settings, 'old'))).toBe(true);
    // its own runc: the same bundle, and its init (or stopped: pid 0)
    expect(adoptLegacyMarker(settings, '/run/a', 'old', () => ({ pid: 0, bundle: '/b/old/' }))?.pid).toBe(30);
    expect(existsSync(legacyMarkerPath(settings, 'old'))).toBe(false);
    expect(readMarker(settings, '/run/a', 'old')?.bundle).toBe('/b/old');
    // run's markers: runc was given the private copy
    writeFileSync(legacyMarkerPath(settings, 'ran'), JSON.stringify({ id: 'ran', bundle: '/b/engine', privateBundle: '/p/ran' }));
    expect(adoptLegacyMarker(settings, '/run/a', 'ran', () => ({ pid: 5, bundle: '/b/engine' }))).toBeUndefined();
    expect(adoptLegacyMarker(settings, '/run/a', 'ran', () => ({ pid: 5, bundle: '/p/ran' }))?.privateBundle).toBe('/p/ran');
  });
});
