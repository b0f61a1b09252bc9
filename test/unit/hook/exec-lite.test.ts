// hook/exec-lite.ts stands in for execa in the hook's bundle: the same commands through both must
// give the same fields the engine reads.
import { describe, expect, it } from '@jest/globals';
import { execa as realExeca } from 'execa';
import { execa as liteExeca } from '../../../hook/exec-lite.js';

type Options = Parameters<typeof liteExeca>[2];

const fields = (r: Record<string, unknown>) => ({
  exitCode: r.exitCode,
  signal: r.signal,
  stdout: r.stdout,
  stderr: r.stderr,
  failed: r.failed,
  timedOut: r.timedOut,
  isTerminated: r.isTerminated,
});

async function both(file: string, args: string[], options: Options) {
  const real = (await realExeca(file, args, options as never)) as unknown as Record<string, unknown>;
  const lite = (await liteExeca(file, args, options)) as unknown as Record<string, unknown>;
  return { real, lite };
}

describe('exec-lite gives what execa gives for the options the engine uses', () => {
  const nftLike = { stdin: 'ignore', reject: false, timeout: 10_000, env: { LC_ALL: 'C' }, stripFinalNewline: true } as const;

  it('success, output with the final newline stripped, env extending process.env', async () => {
    const { real, lite } = await both('sh', ['-c', 'echo "$LC_ALL $HOME"; printf "two\\n\\n"'], nftLike);
    expect(fields(lite)).toEqual(fields(real));
    expect(lite.stdout).toBe(`C ${process.env.HOME}\ntwo\n`);
    expect(lite.shortMessage).toBeUndefined();
  });

  it('a non-zero exit', async () => {
    const { real, lite } = await both('sh', ['-c', 'echo out; echo "Error: No such file or directory" >&2; exit 3'], nftLike);
    expect(fields(lite)).toEqual(fields(real));
    expect(lite.exitCode).toBe(3);
    expect(lite.shortMessage).toBe(real.shortMessage);
  });

  it('a program that does not exist: no exit code', async () => {
    const { real, lite } = await both('/nonexistent/nft', ['-j'], nftLike);
    expect(lite.exitCode).toBeUndefined();
    expect(real.exitCode).toBeUndefined();
    expect(lite.failed).toBe(true);
    expect(String(lite.shortMessage)).toMatch(/^Command failed with ENOENT: \/nonexistent\/nft -j/);
    expect(String(real.shortMessage)).toMatch(/^Command failed with ENOENT: \/nonexistent\/nft -j/);
  });

  it('a timeout: no exit code, timedOut', async () => {
    const { real, lite } = await both('sleep', ['5'], { ...nftLike, timeout: 100 });
    expect(fields(lite)).toEqual(fields(real));
    expect(lite.timedOut).toBe(true);
    expect(lite.exitCode).toBeUndefined();
    expect(lite.shortMessage).toBe('Command timed out after 100 milliseconds: sleep 5');
  });

  it('rejects on failure unless reject: false, with the result on the error', async () => {
    await expect(liteExeca('sh', ['-c', 'exit 2'])).rejects.toMatchObject({ exitCode: 2, failed: true, shortMessage: "Command failed with exit code 2: sh -c 'exit 2'" });
    await expect(realExeca('sh', ['-c', 'exit 2'])).rejects.toMatchObject({ exitCode: 2, failed: true, shortMessage: "Command failed with exit code 2: sh -c 'exit 2'" });
  });

  it('refuses any option it does not implement', async () => {
    await expect(liteExeca('true', [], { input: 'x' } as never)).rejects.toThrow(/option input is not supported/);
  });
});
