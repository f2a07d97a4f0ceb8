#!/usr/bin/env node
// Runs the TypeScript CLI on Node >= 24 (type stripping) with the flag isolated-vm needs.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const [major] = process.versions.node.split('.').map(Number);
if (major < 24) {
  console.error(
    `keygate needs Node.js 24 or newer (this is ${process.version}); run it through npm scripts or npx.`,
  );
  process.exit(1);
}
const main = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli', 'main.ts');
const child = spawn(
  process.execPath,
  ['--no-node-snapshot', '--disable-warning=ExperimentalWarning', main, ...process.argv.slice(2)],
  {
    stdio: 'inherit',
  },
);
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => (signal ? process.kill(process.pid, signal) : process.exit(code ?? 1)));
