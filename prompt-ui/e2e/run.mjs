#!/usr/bin/env node
// End to end, in a real browser: Debian's Chromium driven by playwright-core against a
// real `prompt-registry serve` on a fresh SQLite file. The flow of issue 16: sign up →
// create a prompt → two versions → diff → move `production` → playground run with the
// mock provider → the run in the runs table and the dashboard → an API key created and
// revoked → live updates and a refused stale edit → a version deleted (refused while
// labelled) → production unprotected and protected again → a viewer sees no write controls and
// the API refuses their writes → sign out. Every screen is screenshotted into e2e/out/
// and checked with axe-core (no serious or critical violation).
import { mkdirSync, rmSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS, startServer } from './server.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, 'out');
const require = createRequire(import.meta.url);
const axePath = require.resolve('axe-core/axe.min.js');

const OWNER = { email: 'ada@example.com', password: 'violet tugboat ferments quietly' };
const VIEWER = { email: 'vic@example.com', password: 'amber lantern drifts slowly' };
const MEMBER = { email: 'bo@example.com', password: 'copper kettle hums at noon' };

let failures = 0;
let currentPage = null;
let steps = 0;
function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}

/** Screenshot the page and run axe-core on it. */
async function screen(page, name) {
  // Not 'networkidle': the live event stream keeps a request open.
  await page.waitForTimeout(150);
  await page.screenshot({ path: join(out, `${name}.png`), fullPage: true });
  await page.addScriptTag({ path: axePath });
  const violations = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { resultTypes: ['violations'] });
    return r.violations
      .filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join(', ')}`);
  });
  if (violations.length) throw new Error(`axe on ${name}:\n  ${violations.join('\n  ')}`);
}

async function step(name, fn) {
  steps++;
  const t = Date.now();
  try {
    await fn();
    console.log(`ok   ${name} (${Date.now() - t} ms)`);
  } catch (e) {
    failures++;
    await currentPage?.screenshot({ path: join(out, `FAILED-${steps}.png`), fullPage: true }).catch(() => undefined);
    console.log(`FAIL ${name}: ${e.stack ?? e}`);
    throw e;
  }
}

async function api(url, path, { token, key, method = 'GET', body, project } = {}) {
  const headers = { 'Content-Type': 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (key) headers.Authorization = `Bearer ${key}`;
  if (project) headers['X-Project'] = project;
  const r = await fetch(url + path, { method, headers, body: body ? JSON.stringify(body) : undefined });
  const text = await r.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: r.status, json, text };
}

async function main() {
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  const server = await startServer();
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
  try {
    // bypassCSP only so that the test can inject axe-core; the app itself runs under
    // the server's policy in the other checks.
    const ctx = await browser.newContext({ bypassCSP: true, viewport: { width: 1360, height: 900 } });
    const page = await ctx.newPage();
    currentPage = page;
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    const base = server.url;

    await step('a visitor is sent to sign in', async () => {
      await page.goto(base + '/');
      await page.waitForURL(/\/login/);
      await page.getByRole('heading', { name: 'Sign in' }).waitFor();
      await screen(page, '01-sign-in');
    });

    await step('sign up, and land on the prompts', async () => {
      await page.getByRole('link', { name: 'Sign up' }).click();
      await page.getByLabel('Email').fill(OWNER.email);
      await page.getByLabel('Password').fill(OWNER.password);
      await screen(page, '02-sign-up');
      await page.getByRole('button', { name: 'Sign up' }).click();
      await page.waitForURL(/\/prompts/);
      await page.getByRole('heading', { name: 'Prompts' }).waitFor();
      await page.getByLabel('Organization and project').waitFor();
    });

    await step('the session survives a reload (refresh cookie)', async () => {
      await page.reload();
      await page.getByRole('heading', { name: 'Prompts' }).waitFor();
      check((await page.getByText(OWNER.email).count()) > 0, 'still signed in');
    });

    await step('create a prompt', async () => {
      await page.getByRole('button', { name: 'New prompt' }).click();
      await page.getByLabel('Name', { exact: true }).fill('support/triage');
      await page.getByLabel('Description').fill('Routes tickets');
      await page.getByLabel('Tags (comma-separated)').fill('support, triage');
      await page.getByRole('button', { name: 'Create' }).click();
      await page.waitForURL(/\/prompt\/support\/triage\?tab=edit/);
    });

    await step('write version 1 with a live preview', async () => {
      await page.getByLabel('Template', { exact: true }).fill('Classify this ticket: {{ ticket }}');
      await page.getByTestId('detected-variables').getByText('ticket').waitFor();
      await page.getByLabel('ticket').fill('The printer is on fire');
      await page.getByTestId('preview').getByText('Classify this ticket: The printer is on fire').waitFor();
      await page.getByLabel('Commit message').fill('first');
      await screen(page, '03-editor');
      await page.getByRole('button', { name: 'Save as version 1' }).click();
      await page.getByTestId('timeline').getByText('v1').waitFor();
    });

    await step('a missing variable is refused by the preview, saying which', async () => {
      await page.getByRole('tab', { name: 'New version' }).click();
      await page.getByLabel('Template', { exact: true }).fill('Classify this ticket by urgency: {{ ticket }}\nCustomer: {{ customer }}');
      await page.getByTestId('detected-variables').getByText('customer').waitFor();
      await page.getByRole('alert').filter({ hasText: 'customer' }).first().waitFor();
    });

    await step('authoring aids say plainly that the tools model is the mock', async () => {
      await page.getByRole('button', { name: 'Critique' }).click();
      const critique = page.getByTestId('critique');
      await critique.waitFor();
      await critique.getByTestId('mock-model').waitFor();
      await page.getByRole('button', { name: 'Remix' }).click();
      await page.getByTestId('remix').getByTestId('mock-model').waitFor();
      await page.getByLabel('Create from a goal').fill('Route a support ticket to a team');
      await page.getByRole('button', { name: 'Write a draft' }).click();
      await page.getByText('Skeleton assembled from the goal').waitFor();
    });

    await step('save version 2', async () => {
      await page.getByLabel('Commit message').fill('urgency and customer');
      await page.getByRole('button', { name: 'Save as version 2' }).click();
      await page.getByTestId('timeline').getByText('v2').waitFor();
      await screen(page, '04-versions');
    });

    await step('diff v1 → v2, side by side and inline, word level', async () => {
      await page.getByRole('tab', { name: 'Diff' }).click();
      const split = page.getByTestId('diff-split').first();
      await split.waitFor();
      check((await split.locator('ins').allTextContents()).join('').includes('by urgency'), 'inserted words marked');
      await screen(page, '05-diff');
      // click, not check(): the radio's state follows the URL, which updates a moment later.
      await page.getByLabel('Inline').click();
      await page.getByTestId('diff-inline').first().waitFor();
      await page.getByText('+ customer').waitFor();
    });

    await step('set production on v1, then move it to v2 with a confirmation', async () => {
      await page.getByRole('tab', { name: 'Labels' }).click();
      await page.getByLabel('New label').fill('production');
      await page.getByLabel('on version').selectOption('1');
      await page.getByRole('button', { name: 'Add label' }).click();
      const row = page.getByTestId('label-row-production');
      await row.waitFor();
      check((await row.textContent()).includes('protected'), 'production is marked protected');
      await row.getByLabel('Move production to version').selectOption('2');
      await row.getByRole('button', { name: 'Move', exact: true }).click();
      await page.getByRole('dialog').getByRole('button', { name: 'Move', exact: true }).click();
      await page.getByTestId('label-production').getByText('production → v2').waitFor();
      await page.getByText('History of production').click();
      await screen(page, '06-labels');
    });

    await step('playground: run production with the mock provider, streamed', async () => {
      await page.getByRole('tab', { name: 'Playground' }).click();
      await page.getByLabel('ticket').fill('The printer is on fire');
      await page.getByLabel('customer').fill('ACME');
      await page.getByRole('button', { name: 'Run', exact: true }).click();
      await page.getByTestId('output').getByText('printer', { exact: false }).waitFor();
      const figures = page.getByTestId('run-figures');
      await figures.getByText('completed').waitFor();
      await screen(page, '07-playground');
    });

    await step('the run is in the runs table, and its detail opens', async () => {
      await page.getByRole('link', { name: 'Runs' }).click();
      const table = page.getByTestId('runs-table');
      await table.getByText('support/triage').first().waitFor();
      await screen(page, '08-runs');
      await table.getByRole('row').nth(1).click();
      await page.getByTestId('run-output').waitFor();
      check((await page.getByTestId('run-input').textContent()).includes('printer'), 'rendered input shown');
      await screen(page, '09-run-detail');
    });

    await step('the dashboards count the run and draw it', async () => {
      // The prompt's own dashboard: exactly the playground run.
      await page.goto(base + '/prompt/support/triage?tab=dashboard');
      await page.getByTestId('dashboard-total').getByText('1 runs in range').waitFor();
      await page.getByLabel('Split by').selectOption('version');
      await page.getByTestId('dashboard-total').getByText('1 runs in range').waitFor();
      // The project's: the playground run and the tools model's runs (critique, remix, create).
      await page.getByRole('link', { name: 'Dashboard' }).click();
      const total = page.getByTestId('dashboard-total');
      await total.getByText(/[1-9][0-9]* runs in range/).waitFor();
      await page.locator('[data-testid="chart-Requests"] svg.recharts-surface').waitFor();
      await screen(page, '10-dashboard');
    });

    let adminKey = '';
    await step('create an API key (shown once) and revoke it', async () => {
      await page.getByRole('link', { name: 'Settings' }).click();
      await page.getByLabel('Name').fill('ci');
      await page.getByRole('button', { name: 'Create key' }).click();
      const secret = (await page.getByTestId('new-key-secret').textContent()).trim();
      check(secret.length > 20, 'the secret is shown');
      const r = await api(base, '/api/v1/project', { key: secret });
      check(r.status === 200, `the new key works (${r.status})`);
      await screen(page, '11-keys');
      const row = page.getByTestId('key-ci');
      await row.getByRole('button', { name: 'Revoke', exact: true }).click();
      await page.getByRole('dialog').getByRole('button', { name: 'Revoke', exact: true }).click();
      await row.getByText('revoked').waitFor();
      const after = await api(base, '/api/v1/project', { key: secret });
      check(after.status === 401, `the revoked key is refused (${after.status})`);
      adminKey = server.cli(['keys', 'create', '--project', 'default', '--role', 'admin', '--name', 'e2e']).trim();
    });

    await step('the other settings screens', async () => {
      for (const [link, name] of [
        ['Provider credentials', '12-providers'],
        ['Members and invitations', '13-members'],
        ['Preferences', '14-preferences'],
        ['Audit log', '15-audit'],
      ]) {
        await page.getByRole('link', { name: link }).click();
        await page.getByRole('heading', { level: 1 }).waitFor();
        await screen(page, name);
      }
      await page.getByRole('link', { name: 'Preferences' }).click();
      await page.getByLabel('dark').check();
      await page.getByRole('button', { name: 'Save' }).click();
      await page.getByText('Saved.').waitFor();
      check((await page.evaluate(() => document.documentElement.dataset.theme)) === 'dark', 'dark theme applied');
      await screen(page, '16-dark');
    });

    await step('invite a member, who signs up from the link and joins', async () => {
      await page.getByRole('link', { name: 'Settings' }).click();
      await page.getByRole('link', { name: 'Members and invitations' }).click();
      await page.getByLabel('Email of the invited person').fill(MEMBER.email);
      await page.getByLabel('Role of the invited person').selectOption('member');
      await page.getByRole('button', { name: 'Invite' }).click();
      await page.getByText(`Invitation sent to ${MEMBER.email}`).waitFor();
      let link = null;
      for (let i = 0; i < 50 && !link; i++) {
        link = server.output().match(/accept-invitation\?token=([A-Za-z0-9_-]+)/);
        if (!link) await new Promise((r) => setTimeout(r, 100));
      }
      check(link, 'the invitation link is logged (no SMTP)');
      const mctx = await browser.newContext({ bypassCSP: true, viewport: { width: 1360, height: 900 } });
      const m = await mctx.newPage();
      await m.goto(`${base}/accept-invitation?token=${link[1]}`);
      await m.getByRole('heading', { name: 'Accept the invitation' }).waitFor();
      await screen(m, '19-invitation');
      await m.getByRole('link', { name: 'Sign up' }).click();
      await m.getByRole('heading', { name: 'Join your team' }).waitFor();
      await m.getByLabel('Email').fill(MEMBER.email);
      await m.getByLabel('Password').fill(MEMBER.password);
      await m.getByRole('button', { name: 'Sign up' }).click();
      await m.waitForURL(/\/prompts/);
      await m.getByRole('link', { name: 'support/triage' }).waitFor();
      check((await m.getByRole('button', { name: 'New prompt' }).count()) === 1, 'a member may create prompts');
      await mctx.close();
      await page.getByRole('cell', { name: MEMBER.email }).waitFor();
    });

    await step('live: a version created elsewhere appears without a reload', async () => {
      await page.goto(base + '/prompt/support/triage?tab=versions');
      await page.getByTestId('timeline').getByText('v2').waitFor();
      const r = await api(base, '/api/v1/prompts/support%2Ftriage/versions', {
        key: adminKey,
        method: 'POST',
        body: { template: 'Triage: {{ ticket }} for {{ customer }}', config: { provider: 'mock', model: 'mock/echo' }, commit_message: 'from the API' },
      });
      check(r.status === 201, `version 3 created (${r.status} ${r.text})`);
      await page.getByTestId('timeline').getByText('v3').waitFor({ timeout: 10_000 });
    });

    await step('an edit based on a stale version is refused with a conflict', async () => {
      await page.getByRole('tab', { name: 'New version' }).click();
      await page.getByText('Based on version 3.').waitFor();
      await page.getByLabel('Template', { exact: true }).fill('My edit of v3: {{ ticket }}');
      const r = await api(base, '/api/v1/prompts/support%2Ftriage/versions', {
        key: adminKey,
        method: 'POST',
        body: { template: 'Someone else: {{ ticket }}', config: {} },
      });
      check(r.status === 201, `version 4 created elsewhere (${r.status})`);
      // The feed tells the editor at once; the draft is kept.
      await page.getByTestId('newer-version').waitFor();
      check((await page.getByLabel('Template', { exact: true }).inputValue()) === 'My edit of v3: {{ ticket }}', 'the draft is kept');
      await page.getByRole('button', { name: /Save as version/ }).click();
      await page.getByRole('alert').filter({ hasText: 'Conflict' }).waitFor();
      const versions = await api(base, '/api/v1/prompts/support%2Ftriage/versions?limit=100', { key: adminKey });
      check(versions.json.items.length === 4, `nothing was saved over version 4 (${versions.json.items.length} versions)`);
      await screen(page, '17-conflict');
    });

    await step('deleting a version: refused while a label is on it, then a tombstone', async () => {
      await page.goto(base + '/prompt/support/triage?tab=versions');
      const timeline = page.getByTestId('timeline');
      const pick = (n) => timeline.getByRole('button').filter({ has: page.locator('strong', { hasText: new RegExp(`^v${n}$`) }) });
      await pick(2).click();
      await page.getByRole('heading', { name: 'Version 2' }).waitFor();
      await page.getByRole('button', { name: 'Delete version' }).click();
      const dialog = page.getByRole('dialog');
      await dialog.getByRole('button', { name: 'Delete', exact: true }).click();
      // 409 naming the label: production must be moved off first.
      await dialog.getByRole('alert').filter({ hasText: 'production' }).waitFor();
      await screen(page, '20-delete-refused');
      await dialog.getByRole('button', { name: 'Cancel' }).click();
      await pick(4).click();
      await page.getByRole('heading', { name: 'Version 4' }).waitFor();
      await page.getByRole('button', { name: 'Delete version' }).click();
      await page.getByRole('dialog').getByRole('button', { name: 'Delete', exact: true }).click();
      await pick(4).waitFor({ state: 'detached' });
      await pick(3).waitFor();
      const gone = await api(base, '/api/v1/prompts/support%2Ftriage/versions/4', { key: adminKey });
      check(gone.status === 404, `version 4 no longer resolves (${gone.status})`);
      const list = await api(base, '/api/v1/prompts/support%2Ftriage/versions?limit=100', { key: adminKey });
      check(list.json.items.map((v) => v.version).join(',') === '3,2,1', `v4 hidden from the list (${list.text})`);
    });

    await step('protected labels: an admin unprotects production and protects it again', async () => {
      await page.getByRole('link', { name: 'Settings' }).click();
      await page.getByRole('link', { name: 'Protected labels' }).click();
      const row = page.getByTestId('protected-production');
      await row.waitFor();
      await screen(page, '21-protected-labels');
      await row.getByRole('button', { name: 'Unprotect' }).click();
      await page.getByRole('dialog').getByRole('button', { name: 'Unprotect', exact: true }).click();
      await row.waitFor({ state: 'detached' });
      const none = await api(base, '/api/v1/protected-labels', { key: adminKey });
      check(!none.json.items.some((p) => p.label === 'production'), `production unprotected (${none.text})`);
      await page.getByLabel('Label', { exact: true }).fill('production');
      await page.getByRole('button', { name: 'Protect', exact: true }).click();
      await row.waitFor();
      const again = await api(base, '/api/v1/protected-labels', { key: adminKey });
      check(again.json.items.some((p) => p.label === 'production' && p.created_by), `production protected again, by its author (${again.text})`);
    });

    await step('a viewer sees no write controls, and the API refuses their writes', async () => {
      const link = server.cli(['users', 'create', '--email', VIEWER.email, '--org', 'default', '--role', 'viewer']);
      const m = link.match(/set-password\?token=([A-Za-z0-9_-]+)/);
      check(m, `a set-password link is printed: ${link}`);
      const vctx = await browser.newContext({ bypassCSP: true, viewport: { width: 1360, height: 900 } });
      const v = await vctx.newPage();
      await v.goto(`${base}/set-password?token=${m[1]}`);
      await v.getByLabel('New password').fill(VIEWER.password);
      await v.getByRole('button', { name: 'Set password' }).click();
      await v.getByRole('link', { name: 'Sign in' }).click();
      await v.getByLabel('Email').fill(VIEWER.email);
      await v.getByLabel('Password').fill(VIEWER.password);
      await v.getByRole('button', { name: 'Sign in' }).click();
      await v.waitForURL(/\/prompts/);
      await v.getByRole('link', { name: 'support/triage' }).waitFor();
      check((await v.getByRole('button', { name: 'New prompt' }).count()) === 0, 'no New prompt');
      check((await v.getByRole('button', { name: 'Archive' }).count()) === 0, 'no Archive');
      await v.getByRole('link', { name: 'support/triage' }).click();
      await v.getByRole('tab', { name: 'Versions' }).waitFor();
      check((await v.getByRole('tab', { name: 'New version' }).count()) === 0, 'no editor tab');
      await v.getByRole('tab', { name: 'Labels' }).click();
      await v.getByTestId('label-row-production').waitFor();
      check((await v.getByRole('button', { name: 'Move', exact: true }).count()) === 0, 'no Move');
      check((await v.getByRole('button', { name: 'Add label' }).count()) === 0, 'no Add label');
      await v.getByRole('tab', { name: 'Playground' }).click();
      check(await v.getByRole('button', { name: 'Run', exact: true }).isDisabled(), 'Run disabled');
      await screen(v, '18-viewer');
      const login = await api(base, '/api/auth/login', { method: 'POST', body: VIEWER });
      const token = login.json.access_token;
      const project = 'default/default';
      const writes = [
        ['POST', '/api/v1/prompts', { name: 'viewer-made' }],
        ['POST', '/api/v1/prompts/support%2Ftriage/versions', { template: 'x' }],
        ['PUT', '/api/v1/prompts/support%2Ftriage/labels/production', { version: 1 }],
        ['POST', '/api/v1/keys', { name: 'v', role: 'admin' }],
      ];
      for (const [method, path, body] of writes) {
        const r = await api(base, path, { token, method, body, project });
        check(r.status === 403, `${method} ${path} as a viewer answers 403 (got ${r.status} ${r.text})`);
      }
      await vctx.close();
    });

    await step('sign out', async () => {
      await page.getByRole('button', { name: 'Sign out' }).click();
      await page.waitForURL(/\/login/);
      await page.goto(base + '/prompts');
      await page.waitForURL(/\/login/);
    });

    check(errors.length === 0, `no uncaught page error: ${errors.join('; ')}`);
  } finally {
    await browser.close();
    await server.stop();
  }
  console.log(`${steps - failures}/${steps} steps passed; screenshots in ${out}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
