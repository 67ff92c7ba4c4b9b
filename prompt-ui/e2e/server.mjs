// Start a real `prompt-registry serve` on a fresh SQLite file and a free port, for the
// end-to-end tests and the console benchmark. The binary is ../target/debug/prompt-registry
// unless PROMPT_REGISTRY_BIN names another.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

/** Debian's Chromium (playwright-core cannot download a browser here) and the flags it
 * needs headless on these machines. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-quic',
  '--no-first-run',
  '--disable-sync',
];

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The binary under test. */
export function binary() {
  const bin = process.env.PROMPT_REGISTRY_BIN ?? join(root, 'target', 'debug', 'prompt-registry');
  if (!existsSync(bin)) {
    throw new Error(`${bin} does not exist: run \`cargo build --bin prompt-registry\` first (or set PROMPT_REGISTRY_BIN)`);
  }
  return bin;
}

async function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/** A running server: `url`, `dir` (its working directory), `cli(args)`, `stop()`. */
export async function startServer(extraEnv = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'prompt-registry-e2e-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const db = `sqlite://${join(dir, 'registry.db')}`;
  const env = {
    ...process.env,
    DATABASE_URL: db,
    PROMPT_REGISTRY_ADDR: `127.0.0.1:${port}`,
    PROMPT_REGISTRY_RATE_LIMIT: '0',
    PROMPT_REGISTRY_PUBLIC_URL: url,
    // The mail links (no SMTP here) are logged at info: the invitation test reads them.
    RUST_LOG: process.env.RUST_LOG ?? 'warn,prompt_http::accounts::mail=info',
    ...extraEnv,
  };
  const child = spawn(binary(), ['serve'], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the server exited:\n${output}`);
    try {
      const r = await fetch(`${url}/readyz`);
      if (r.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`the server did not become ready:\n${output}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    url,
    dir,
    output: () => output,
    /** Run a CLI command against the same database. */
    cli: (args) => execFileSync(binary(), args, { cwd: dir, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }),
    stop: async () => {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    },
  };
}
