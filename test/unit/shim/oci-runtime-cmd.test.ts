import { describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { wrapperScript } from '../../../shim/oci-runtime-cmd.js';

describe('tsrun oci-runtime install: the wrapper', () => {
  it('exports each recorded setting, quoted for sh, and execs the front with the arguments unchanged', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tsrun-wrapper-'));
    try {
      const front = path.join(dir, "front it's");
      writeFileSync(front, '#!/bin/sh\necho "root=$TSRUN_ROOT"; for a do echo "[$a]"; done\n', { mode: 0o755 });
      const file = path.join(dir, 'tsrun-runc');
      writeFileSync(file, wrapperScript(front, ["TSRUN_ROOT=/tmp/a b'c", 'TSRUN_STORE=local']), { mode: 0o755 });
      const r = spawnSync(file, ['--root', '/r x', 'state', 'id'], { encoding: 'utf8', env: {} });
      expect(r.stdout).toBe("root=/tmp/a b'c\n[--root]\n[/r x]\n[state]\n[id]\n");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
