// A V8 code cache for the hook's bundle. The hook is a cold Node process on every container
// start, and compiling dist/bundle/hook.cjs is a large part of its start-up (~14 ms to require
// it, ~6 ms with the cache, measured on the development machine). Node 20 has no built-in
// compile cache (module.enableCompileCache arrived in 22), so:
//   - at build time, `node scripts/code-cache.cjs dist/bundle/hook.cjs [--eager]` loads the
//     bundle, runs a warm-up that touches nothing (a hook poststart on a sample state, a CNI DEL,
//     a CLI `run --net none` with /bin/true as runc, each in a throwaway state root) so that the
//     functions it runs are compiled too, and writes hook.cjs.v8cache; with --eager every function
//     of the bundle is compiled first (the hook's and the CNI plugin's, see scripts/bundle.mjs);
//   - at run time, the dispatcher (dispatch.cjs) loads hook.cjs through load()
//     (scripts/code-cache-load.cjs, the half the dispatcher bundles), which hands V8 the cache.
// The cache names the file's size and mtime and the Node version it was made for; any mismatch,
// or V8 rejecting it (another V8, other flags), means an ordinary require: slower, never wrong.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');
// The loader (load, and run and header, which the build uses too): scripts/code-cache-load.cjs.
const { header, load, run, Module } = require('./code-cache-load.cjs');

/**
 * Build time, for the dispatcher dispatch.cjs (whose top level routes the process's own command line,
 * so it cannot be run here): every function compiled, nothing run, the cache written to `out`.
 * Compiled as the entry dist/bundle/tsrun compiles it (scripts/bundle.mjs): its `#!` line made a
 * `//` comment (V8 takes a `#!` only at the very start of a script, and the module wrapper comes
 * first), so the source V8 checks the cache against is the same length.
 */
function writeCompiled(file, out) {
  const abs = path.resolve(file);
  const source = fs.readFileSync(abs, 'utf8');
  require('node:v8').setFlagsFromString('--no-lazy');
  let script;
  try {
    script = new vm.Script(Module.wrap(source.startsWith('#!') ? `//${source.slice(2)}` : source), { filename: abs });
  } finally {
    require('node:v8').setFlagsFromString('--lazy');
  }
  const data = script.createCachedData();
  fs.writeFileSync(out, Buffer.concat([Buffer.from(`${header(abs)}\n`), data]));
  return data.length;
}

/**
 * Build time: load `file`, warm it up, write `<file>.v8cache`. `eager`: the cache holds every
 * function of the bundle, compiled, not only those the warm-up ran (see scripts/bundle.mjs).
 */
async function write(file, eager, out = `${path.resolve(file)}.v8cache`) {
  const abs = path.resolve(file);
  const { exports, script } = run(abs, undefined, eager);
  if (typeof exports.hookMain === 'function') {
    const os = require('node:os');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrun-code-cache-'));
    try {
      const stdin = path.join(dir, 'state.json');
      fs.writeFileSync(stdin, JSON.stringify({ ociVersion: '1.0.2', id: 'warmup', status: 'created', pid: 1, bundle: dir, annotations: { 'io.tsrun.network': 'none' } }));
      const fd = fs.openSync(stdin, 'r');
      try {
        const code = await exports.hookMain('poststart', { stdinFd: fd, env: { TSRUN_ROOT: path.join(dir, 'root') }, writeErr: () => {} });
        if (code !== 0) throw new Error(`warm-up hook run exited ${code}`);
      } finally {
        fs.closeSync(fd);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  if (typeof exports.cniMain === 'function') {
    // The CNI front door: a DEL of an attachment that was never added (config parsing, settings,
    // the logger and the store read), in a throwaway root, output discarded.
    const os = require('node:os');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrun-code-cache-'));
    try {
      const stdin = path.join(dir, 'conf.json');
      fs.writeFileSync(stdin, JSON.stringify({ cniVersion: '1.0.0', name: 'warmup', type: 'tsrun', subnet: '10.250.0.0/24' }));
      const fd = fs.openSync(stdin, 'r');
      try {
        const env = { TSRUN_ROOT: path.join(dir, 'root'), CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'warmup', CNI_IFNAME: 'eth0' };
        const code = await exports.cniMain({ stdinFd: fd, env, writeOut: () => {}, writeErr: () => {} });
        if (code !== 0) throw new Error(`warm-up CNI DEL exited ${code}`);
      } finally {
        fs.closeSync(fd);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  if (typeof exports.warmUp === 'function') exports.warmUp(); // runc.cjs: parsing, no I/O
  if (typeof exports.main === 'function') {
    // The CLI: a whole `tsrun run --net none` of an empty bundle with /bin/true standing in for
    // runc, so the functions of its path are compiled into the cache too (claiming the id, the
    // spec, starting and supervising runc, teardown): ~4 ms less of a cold `tsrun run` than a
    // warm-up that stops at its first check. --net none touches no network: only files, in a
    // throwaway root. Without /bin/true, a run that fails at its first check (no such bundle).
    const os = require('node:os');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrun-code-cache-'));
    const bundle = path.join(dir, 'bundle');
    const whole = fs.existsSync('/bin/true');
    if (whole) {
      fs.mkdirSync(path.join(bundle, 'rootfs'), { recursive: true });
      // Shaped as `runc spec` writes one (the bench's and most users' bundles): a boolean, an
      // environment, every namespace and the mounts each have checks and rewrites of their own, and
      // any the warm-up does not run is compiled in every real run instead (found with
      // --print-bytecode set after the cache was consumed: config/validate.ts's boolean,
      // config/oci.ts's KEY=VALUE, shim/spec-rewrite.ts's uts).
      const spec = {
        ociVersion: '1.0.2',
        process: { terminal: false, user: { uid: 0, gid: 0 }, args: ['true'], env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'TERM=xterm'], cwd: '/', rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }], noNewPrivileges: true },
        root: { path: 'rootfs', readonly: true },
        hostname: 'warmup',
        mounts: [
          { destination: '/proc', type: 'proc', source: 'proc' },
          { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
          { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
        ],
        linux: { resources: { devices: [{ allow: false, access: 'rwm' }] }, namespaces: [{ type: 'pid' }, { type: 'network' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }], maskedPaths: ['/proc/kcore'], readonlyPaths: ['/proc/sys'] },
      };
      fs.writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(spec));
    }
    const saved = { root: process.env.TSRUN_ROOT, runc: process.env.TSRUN_RUNC };
    const write = process.stderr.write;
    process.env.TSRUN_ROOT = path.join(dir, 'root');
    // By name, as runc is found: through PATH (runtime/binaries.ts), which a real run walks too.
    process.env.TSRUN_RUNC = 'true';
    // The entry reads run-plain.cjs's start (its export getter) before it calls it.
    void exports.start;
    process.stderr.write = () => true;
    try {
      const code = await exports.main([process.execPath, 'tsrun', 'run', '--net', 'none', '--memory', '64m', '-e', 'A=1', whole ? bundle : path.join(dir, 'no-bundle')]);
      if (whole && code !== 0) throw new Error(`warm-up tsrun run exited ${code}`);
    } finally {
      process.stderr.write = write;
      for (const [k, v] of [['TSRUN_ROOT', saved.root], ['TSRUN_RUNC', saved.runc]]) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  const data = script.createCachedData();
  fs.writeFileSync(out, Buffer.concat([Buffer.from(`${header(abs)}\n`), data]));
  return data.length;
}


/**
 * Build time, for the hook's bundle: one code cache per wiring stage, holding the functions a real
 * createRuntime (resp. poststop) of a container with a published port runs, in steady state (the
 * network's bridge, tables and resolver already there). The eager cache (every function of the
 * bundle, 0.85 MB) costs each cold stage ~4.4 ms to deserialize and the stage runs well under half
 * of it; a stage's own cache is ~0.45 MB (createRuntime) or ~0.38 MB (poststop). Measured: 25
 * interleaved cycles of createRuntime + poststop, CPU of both processes (wait4), 114.0 -> 109.1 ms.
 * A wiring stage needs root, network namespaces and nf_tables, so the warm-up runs in namespaces
 * of its own (network, PID, mount: everything it starts, the resolver and a deferred link delete,
 * dies with it, and it never touches the host's network); where it cannot run (not root, no
 * unshare), it throws and the build keeps the eager cache for both stages (scripts/bundle.mjs).
 */
function writeStageCaches(file, outSetup, outTeardown) {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) throw new Error('a wiring stage needs root');
  const { execFileSync } = require('node:child_process');
  const hostNetns = fs.readlinkSync('/proc/self/ns/net');
  const args = ['--net', '--pid', '--mount', '--fork', '--mount-proc', process.execPath, __filename, path.resolve(file), '--stages-inside', path.resolve(outSetup), path.resolve(outTeardown), hostNetns];
  execFileSync('unshare', args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 120_000, env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin' } });
}

/** Inside writeStageCaches's namespaces (this process is their PID 1): a warm-up cycle, then one
 * whose createRuntime and poststop each run in a process of their own that writes its cache. */
function stagesInside(file, outSetup, outTeardown, hostNetns) {
  // Never in the host's network namespace or PID namespace: unshare must have made both (the
  // clean-up below signals every process of this PID namespace).
  if (process.pid !== 1) throw new Error('not the first process of a PID namespace of its own');
  if (fs.readlinkSync('/proc/self/ns/net') === hostNetns) throw new Error('not in a network namespace of its own');
  const { spawn, spawnSync } = require('node:child_process');
  const os = require('node:os');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrun-code-cache-hook-'));
  const env = { PATH: process.env.PATH, TSRUN_ROOT: path.join(dir, 'root') };
  const pause = () => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2);
  const netnsOf = (pid) => {
    try {
      return fs.readlinkSync(`/proc/${pid}/ns/net`);
    } catch {
      return undefined;
    }
  };
  const sleeper = (cmd, args, ready) => {
    const child = spawn(cmd, args, { stdio: 'ignore' });
    for (let i = 0; i < 2500 && !ready(child.pid); i++) pause();
    if (!ready(child.pid)) throw new Error(`${cmd} did not start`);
    return child;
  };
  const node = (args, what) => {
    const r = spawnSync(process.execPath, args, { env, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8', timeout: 60_000 });
    if (r.status !== 0) throw new Error(`${what} exited ${r.status ?? r.signal}: ${String(r.stderr).trim().split('\n').pop()}`);
  };
  try {
    // A network as a user makes one, with DNS (the resolver) and a published port, as the bench's.
    const cli = path.join(path.dirname(file), 'cli.cjs');
    node(['-e', `require(${JSON.stringify(cli)}).main([process.execPath,'tsrun','network','create','warmup','--subnet','10.250.0.0/24']).then((c)=>process.exit(c))`], 'network create');
    // A bundle directory as runc's: config.json with the container's root (read for annotations).
    fs.mkdirSync(path.join(dir, 'rootfs'));
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ociVersion: '1.0.2', root: { path: 'rootfs' }, annotations: {} }));
    for (const cycle of [0, 1]) {
      const own = netnsOf('self');
      const pin = sleeper('unshare', ['--net', 'sleep', 'infinity'], (pid) => netnsOf(pid) !== undefined && netnsOf(pid) !== own);
      const ctr = sleeper('nsenter', [`--net=/proc/${pin.pid}/ns/net`, 'sleep', 'infinity'], (pid) => netnsOf(pid) === netnsOf(pin.pid) && fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'sleep');
      const state = (stage) => JSON.stringify({ ociVersion: '1.0.2', id: `warmup-${cycle}`, status: stage === 'poststop' ? 'stopped' : 'creating', ...(stage === 'poststop' ? {} : { pid: ctr.pid }), bundle: dir, annotations: { 'io.tsrun.network': 'warmup', 'io.tsrun.ports': '8080:80/tcp' } });
      const stage = (name, out) => {
        const stateFile = path.join(dir, `${name}.json`);
        fs.writeFileSync(stateFile, state(name));
        node([__filename, file, '--stage-warm', name, stateFile, out], name);
      };
      // Cycle 0 makes the steady state (bridge, tables, resolver) that cycle 1's caches are made in.
      stage('createRuntime', cycle === 1 ? outSetup : '');
      // poststop comes once the container's process is gone; the pin keeps the namespace.
      ctr.kill('SIGKILL');
      for (let i = 0; i < 2500 && netnsOf(ctr.pid) !== undefined; i++) pause();
      stage('poststop', cycle === 1 ? outTeardown : '');
      pin.kill('SIGKILL');
    }
  } finally {
    // PID 1 of this namespace (checked above): every other process in it (the resolver, a link's
    // deleter) goes.
    try {
      process.kill(-1, 'SIGKILL');
    } catch {
      // none left
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** One stage run in this process on a state file, its cache written to `out` (none when empty). */
async function stageWarm(file, stage, stateFile, out) {
  const abs = path.resolve(file);
  const { exports, script } = run(abs, undefined, false);
  const fd = fs.openSync(stateFile, 'r');
  let why = '';
  try {
    // As the hook's door runs it (a short process: the resolver asked synchronously).
    const code = await exports.hookMain(stage, { stdinFd: fd, env: process.env, writeErr: (line) => void (why = line), shortProcess: true });
    if (code !== 0) throw new Error(`warm-up ${stage} exited ${code}: ${why.trim()}`);
  } finally {
    fs.closeSync(fd);
  }
  if (out !== '') fs.writeFileSync(out, Buffer.concat([Buffer.from(`${header(abs)}\n`), script.createCachedData()]));
}

module.exports = { load };

if (require.main === module && process.argv[3] === '--stages-inside') {
  stagesInside(process.argv[2], process.argv[4], process.argv[5], process.argv[6]);
  process.exit(0);
} else if (require.main === module && process.argv[3] === '--stage-warm') {
  // The stage's sockets and handles stay open: exit once the cache is written.
  stageWarm(process.argv[2], process.argv[4], process.argv[5], process.argv[6]).then(
    () => process.exit(0),
    (err) => {
      process.stderr.write(`${err.message}\n`);
      process.exit(1);
    },
  );
} else if (require.main === module && process.argv[3] === '--stages') {
  // node scripts/code-cache.cjs <hook bundle> --stages <setup cache> <teardown cache>
  try {
    writeStageCaches(process.argv[2], process.argv[4], process.argv[5]);
  } catch (err) {
    process.stderr.write(`${String(err.stderr ?? '').trim().split('\n').pop() || err.message}\n`);
    process.exit(1);
  }
} else if (require.main === module) {
  // node scripts/code-cache.cjs <bundle> [--eager] [--out <cache file>] [--compile-only]
  const eager = process.argv.includes('--eager');
  const at = process.argv.indexOf('--out');
  const out = at > 0 ? path.resolve(process.argv[at + 1]) : `${path.resolve(process.argv[2])}.v8cache`;
  const made = process.argv.includes('--compile-only') ? Promise.resolve().then(() => writeCompiled(process.argv[2], out)) : write(process.argv[2], eager, out);
  made.then(
    (bytes) => process.stdout.write(`code cache: ${out} (${bytes} bytes)\n`),
    (err) => {
      process.stderr.write(`code cache: ${err.stack || err}\n`);
      process.exit(1);
    },
  );
}
