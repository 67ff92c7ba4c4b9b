#!/usr/bin/env node
// The console's speed with a big project, in headless Chromium on loopback against a
// release or debug `prompt-registry serve` (PROMPT_REGISTRY_BIN): 1,000 prompts and
// 100,000 runs are loaded through the API, then we time from navigation start to the
// `performance.mark` each screen sets once its data is on screen (median of 5 loads),
// and scroll the runs table for 3 s measuring frame intervals. Prints a Markdown table
// for BENCHMARKS.md. Not a test: no threshold here.
import { chromium } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS, startServer } from './server.mjs';

const PROMPTS = Number(process.env.BENCH_PROMPTS ?? 1000);
const RUNS = Number(process.env.BENCH_RUNS ?? 100_000);
const OWNER = { email: 'bench@example.com', password: 'violet tugboat ferments quietly' };

async function post(url, path, key, body) {
  const r = await fetch(url + path, {
    method: 'POST',
    headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!r.ok) throw new Error(`${path}: ${r.status} ${await r.text()}`);
  return r.json();
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main() {
  const server = await startServer();
  try {
    const key = server.cli(['keys', 'create', '--project', 'default', '--role', 'admin', '--name', 'bench']).trim();
    let t = Date.now();
    for (let i = 0; i < PROMPTS; i += 1000) {
      const ops = [];
      for (let j = i; j < Math.min(PROMPTS, i + 1000); j++) {
        ops.push({ op: 'create_prompt', prompt: { name: `team-${j % 20}/prompt-${j}`, tags: [`t${j % 7}`] } });
      }
      await post(server.url, '/api/v1/batch', key, { ops });
    }
    console.error(`seeded ${PROMPTS} prompts in ${Date.now() - t} ms`);
    t = Date.now();
    for (let i = 0; i < RUNS; i += 1000) {
      const runs = [];
      for (let j = i; j < Math.min(RUNS, i + 1000); j++) {
        runs.push({
          prompt: `team-${j % 20}/prompt-${j % PROMPTS}`,
          provider: 'mock',
          model: 'mock/echo',
          status: j % 17 === 0 ? 'failed' : 'completed',
          error: j % 17 === 0 ? { kind: 'timeout', message: 'upstream timed out' } : null,
          output: j % 17 === 0 ? null : `answer ${j}`,
          latency_ms: 50 + (j % 400),
          input_tokens: 100 + (j % 50),
          output_tokens: 20 + (j % 30),
        });
      }
      await post(server.url, '/api/v1/runs/batch', key, { runs });
    }
    console.error(`seeded ${RUNS} runs in ${Date.now() - t} ms`);

    const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
    const ctx = await browser.newContext({ viewport: { width: 1360, height: 900 } });
    const page = await ctx.newPage();
    await page.goto(server.url + '/signup');
    await page.getByLabel('Email').fill(OWNER.email);
    await page.getByLabel('Password').fill(OWNER.password);
    await page.getByRole('button', { name: 'Sign up' }).click();
    await page.waitForURL(/\/prompts/);

    const timeTo = async (path, mark) => {
      const xs = [];
      for (let i = 0; i < 5; i++) {
        await page.goto(server.url + path);
        await page.waitForFunction((m) => performance.getEntriesByName(m).length > 0, mark, { timeout: 30_000 });
        xs.push(await page.evaluate((m) => performance.getEntriesByName(m)[0].startTime, mark));
      }
      return xs;
    };
    const prompts = await timeTo('/prompts', 'prompt-list-rendered');
    const runs = await timeTo('/runs', 'runs-table-rendered');

    // Scroll the runs table for 3 s (pages load as it goes) and record frame intervals.
    const scroll = await page.evaluate(async () => {
      const el = document.querySelector('[data-testid="runs-table"]');
      const frames = [];
      let last = performance.now();
      const end = last + 3000;
      let maxRows = 0;
      await new Promise((resolve) => {
        const tick = (now) => {
          frames.push(now - last);
          last = now;
          el.scrollTop += 400;
          maxRows = Math.max(maxRows, el.querySelectorAll('[role="row"]').length);
          if (now < end) requestAnimationFrame(tick);
          else resolve();
        };
        requestAnimationFrame(tick);
      });
      frames.sort((a, b) => a - b);
      return {
        frames: frames.length,
        p50: frames[Math.floor(frames.length * 0.5)],
        p95: frames[Math.floor(frames.length * 0.95)],
        max: frames[frames.length - 1],
        rowsInDom: maxRows,
        scrolledRows: Math.round(el.scrollTop / 34),
      };
    });
    await browser.close();

    console.log(`| Screen | Data | Median to data on screen (5 loads) | All loads |`);
    console.log(`|---|---|---|---|`);
    console.log(`| Prompt list | ${PROMPTS} prompts (first page of 100) | ${median(prompts).toFixed(0)} ms | ${prompts.map((x) => x.toFixed(0)).join(', ')} ms |`);
    console.log(`| Runs table | ${RUNS} runs (first page of 200) | ${median(runs).toFixed(0)} ms | ${runs.map((x) => x.toFixed(0)).join(', ')} ms |`);
    console.log('');
    console.log(
      `Runs table scrolled 400 px per frame for 3 s: ${scroll.frames} frames, interval p50 ${scroll.p50.toFixed(1)} ms, ` +
        `p95 ${scroll.p95.toFixed(1)} ms, max ${scroll.max.toFixed(1)} ms; at most ${scroll.rowsInDom} rows in the DOM; ` +
        `${scroll.scrolledRows} rows scrolled through.`,
    );
  } finally {
    await server.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
