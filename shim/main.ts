#!/usr/bin/env node
// tsrun's entry point. It loads only what the command needs: the hook is a cold process on every
// container start, so it never pays for the CLI, and the CLI never pays for the hook.
async function main(args: string[]): Promise<number> {
  if (args[0] === 'hook' && args[1] !== undefined && !args[1].startsWith('-') && args[1] !== 'install' && args[1] !== 'uninstall') {
    const { hookMain } = await import('../hook/main.js');
    return hookMain(args[1]);
  }
  const { main: cliMain } = await import('./cli.js');
  return cliMain(process.argv);
}

void main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
