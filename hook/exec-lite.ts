// execa's API, the small part tsrun's engine uses to run programs (nft), over child_process.
//
// Why: the hook is a cold process on every container start, and requiring execa 9 with its
// dependencies costs ~20 ms there (measured: require of dist/bundle/execa.cjs, min of 15 runs),
// more than Node's own start-up. scripts/bundle.mjs resolves `execa` to this file in the hook's
// bundle only; the CLI and the tsc-compiled modules keep the real execa.
//
// The contract (test/unit/hook/exec-lite.test.ts runs both on the same commands): the options
// below with execa's defaults (env extends process.env, the final newline stripped, reject on
// failure unless reject: false), and the result fields exitCode (undefined when the program could
// not start or was killed), signal, stdout, stderr, failed, timedOut, isTerminated, command and,
// on failure, shortMessage/message worded like execa's. Any other option throws, so new engine
// code that needs more of execa fails loudly in the hook's tests rather than behaving differently.
import { spawn } from 'node:child_process';

export interface LiteOptions {
  stdin?: 'ignore' | 'pipe';
  reject?: boolean;
  /** Milliseconds; then SIGTERM, and SIGKILL 5 s later (execa's forceKillAfterDelay). */
  timeout?: number;
  env?: NodeJS.ProcessEnv;
  extendEnv?: boolean;
  stripFinalNewline?: boolean;
  cwd?: string;
}

export interface LiteResult {
  command: string;
  exitCode: number | undefined;
  signal: NodeJS.Signals | undefined;
  stdout: string;
  stderr: string;
  failed: boolean;
  timedOut: boolean;
  isTerminated: boolean;
  shortMessage?: string;
  message?: string;
}

const SUPPORTED = new Set(['stdin', 'reject', 'timeout', 'env', 'extendEnv', 'stripFinalNewline', 'cwd']);
const FORCE_KILL_AFTER_MS = 5000;

export class LiteExecError extends Error implements LiteResult {
  command!: string;
  exitCode!: number | undefined;
  signal!: NodeJS.Signals | undefined;
  stdout!: string;
  stderr!: string;
  failed!: boolean;
  timedOut!: boolean;
  isTerminated!: boolean;
  shortMessage!: string;
  constructor(result: LiteResult) {
    super(result.message);
    Object.assign(this, result);
  }
}

export function execa(file: string, args: readonly string[] = [], options: LiteOptions = {}): Promise<LiteResult> {
  for (const key of Object.keys(options)) {
    if (!SUPPORTED.has(key)) {
      return Promise.reject(new TypeError(`exec-lite: option ${key} is not supported (the hook's bundle runs programs with hook/exec-lite.ts, not execa)`));
    }
  }
  const command = [file, ...args].join(' ');
  const escaped = [file, ...args].map(quote).join(' ');
  const env = options.extendEnv === false ? options.env : { ...process.env, ...options.env };
  const strip = options.stripFinalNewline !== false;
  return new Promise((resolve, reject) => {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let spawnError: Error | undefined;
    let timedOut = false;
    let settled = false;
    let killTimer: NodeJS.Timeout | undefined;
    const child = spawn(file, args, { env, cwd: options.cwd, stdio: [options.stdin ?? 'pipe', 'pipe', 'pipe'] });
    if (options.stdin !== 'ignore') child.stdin?.end();
    child.stdout!.on('data', (c: Buffer) => out.push(c));
    child.stderr!.on('data', (c: Buffer) => err.push(c));
    const timer = options.timeout !== undefined && options.timeout > 0
      ? setTimeout(() => {
          timedOut = true;
          child.kill('SIGTERM');
          killTimer = setTimeout(() => child.kill('SIGKILL'), FORCE_KILL_AFTER_MS);
          killTimer.unref();
        }, options.timeout)
      : undefined;

    const finish = (code: number | null, signal: NodeJS.Signals | null) => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      if (killTimer) clearTimeout(killTimer);
      const text = (chunks: Buffer[]) => {
        const s = Buffer.concat(chunks).toString('utf8');
        return strip ? s.replace(/\r?\n$/, '') : s;
      };
      const exitCode = spawnError || signal ? undefined : (code ?? undefined);
      const result: LiteResult = {
        command,
        exitCode,
        signal: signal ?? undefined,
        stdout: text(out),
        stderr: text(err),
        failed: spawnError !== undefined || timedOut || signal !== null || code !== 0,
        timedOut,
        isTerminated: signal !== null,
      };
      if (!result.failed) {
        resolve(result);
        return;
      }
      result.shortMessage = spawnError
        ? `Command failed with ${(spawnError as NodeJS.ErrnoException).code ?? 'an error'}: ${escaped}\n${spawnError.message}`
        : timedOut
          ? `Command timed out after ${options.timeout} milliseconds: ${escaped}`
          : signal
            ? `Command was killed with ${signal}: ${escaped}`
            : `Command failed with exit code ${code}: ${escaped}`;
      result.message = [result.shortMessage, result.stderr, result.stdout].filter((s) => s !== '').join('\n\n');
      if (options.reject === false) resolve(result);
      else reject(new LiteExecError(result));
    };
    child.once('error', (e) => {
      spawnError = e;
      // A child that never started emits no 'close' when it has no stdio to close.
      setImmediate(() => finish(null, null));
    });
    child.once('close', (code, signal) => finish(code, signal));
  });
}

/** An argument as execa prints it in messages: plain when safe, else POSIX single quotes, with
 * newlines and tabs written as escapes. */
function quote(arg: string): string {
  const visible = arg.replace(/[\n\r\t\b\f]/g, (c) => ({ '\n': '\\n', '\r': '\\r', '\t': '\\t', '\b': '\\b', '\f': '\\f' })[c]!);
  return /^[\w./-]+$/.test(visible) ? visible : `'${visible.replaceAll("'", "'\\''")}'`;
}
