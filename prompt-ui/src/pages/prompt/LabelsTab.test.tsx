// Moving a label sends the version the user saw when confirming, so a move made
// meanwhile elsewhere is refused by the server instead of silently replaced.
import { render, screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { MemoryRouter } from 'react-router';
import { LabelsTab } from './LabelsTab';
import type { Prompt } from './data';

const prompt = (production: number): Prompt => ({
  id: 'p1',
  name: 'support/triage',
  description: null,
  tags: [],
  archived: false,
  labels: { production },
  latest_version: 3,
  etag: 'e',
  created_at: '2026-12-01T00:00:00Z',
  updated_at: '2026-12-01T00:00:00Z',
});

const version = (n: number) => ({
  id: `v${n}`,
  prompt: 'support/triage',
  prompt_id: 'p1',
  version: n,
  kind: 'text',
  template: `v${n}`,
  template_format: 'mustache',
  variables: [],
  config: {},
  labels: [],
  commit_message: null,
  created_by: null,
  created_at: '2026-12-01T00:00:00Z',
});

test('the confirmation sends the version seen when it opened', async () => {
  HTMLDialogElement.prototype.showModal = function () {
    this.setAttribute('open', '');
  };
  HTMLDialogElement.prototype.close = function () {
    this.removeAttribute('open');
  };
  const puts: unknown[] = [];
  vi.stubGlobal(
    'fetch',
    vi.fn(async (req: Request) => {
      const url = new URL(req.url);
      const json = (body: unknown, status = 200) => new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
      if (url.pathname === '/api/v1/project') return json({ role: 'admin', protected_labels: ['production'] });
      if (url.pathname.endsWith('/versions')) return json({ items: [version(1), version(2), version(3)], next_cursor: null });
      if (url.pathname.endsWith('/history')) return json({ items: [], next_cursor: null });
      if (req.method === 'PUT') {
        puts.push(await req.json());
        return json({ error: { code: 'precondition_failed', message: 'production is on v2, not v1' } }, 412);
      }
      return json({}, 404);
    }),
  );
  localStorage.setItem('prompt-registry.project', 'default/default');
  const qc = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  const ui = (p: Prompt) => (
    <QueryClientProvider client={qc}>
      <MemoryRouter>
        <LabelsTab prompt={p} />
      </MemoryRouter>
    </QueryClientProvider>
  );
  const { rerender } = render(ui(prompt(1)));
  const row = await screen.findByTestId('label-row-production');
  await within(row).findByText('protected: admins only');
  const user = userEvent.setup();
  await user.selectOptions(await within(row).findByLabelText('Move production to version'), '3');
  await user.click(within(row).getByRole('button', { name: /^Move$/ }));
  // Someone moves production to v2 while the dialog is open.
  rerender(ui(prompt(2)));
  const dialog = screen.getByRole('dialog');
  expect(dialog).toHaveTextContent('Move production from v1 to v3?');
  await user.click(within(dialog).getByRole('button', { name: 'Move' }));
  expect(puts).toEqual([{ version: 3, expected_version: 1 }]);
  expect(await within(dialog).findByRole('alert')).toHaveTextContent('Conflict: production is on v2, not v1');
  vi.unstubAllGlobals();
});
