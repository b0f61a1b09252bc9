#!/usr/bin/env node
// tsrun's entry point. It loads only what the command needs: the hook is a cold process on every
// container start, so it never pays for the CLI, and the CLI never pays for the hook.
const args = process.argv.slice(2);
let code: number;
if (args[0] === 'hook' && args[1] !== undefined && !args[1].startsWith('-') && args[1] !== 'install' && args[1] !== 'uninstall') {
  const { hookMain } = await import('../hook/main.js');
  code = await hookMain(args[1]);
} else {
  const { main } = await import('./cli.js');
  code = await main(process.argv);
}
process.exitCode = code;
