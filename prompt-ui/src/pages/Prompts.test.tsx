// The prompt list against a stubbed server (fetch answers in the API's shapes).
import { render, screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { createMemoryRouter, RouterProvider } from 'react-router';
import Prompts from './Prompts';

const prompt = (name: string, tags: string[] = []) => ({
  id: name,
  name,
  description: null,
  tags,
  archived: false,
  labels: { production: 1 },
  latest_version: 1,
  etag: 'x',
  created_at: '2026-12-01T00:00:00Z',
  updated_at: '2026-12-01T00:00:00Z',
});

function serve(role: string) {
  const calls: string[] = [];
  vi.stubGlobal(
    'fetch',
    vi.fn(async (input: Request) => {
      const url = new URL(input.url);
      calls.push(url.pathname + url.search);
      const json = (body: unknown) => new Response(JSON.stringify(body), { status: 200, headers: { 'Content-Type': 'application/json' } });
      if (url.pathname === '/api/v1/project') {
        return json({ project: { id: 'p', name: 'default' }, role, protected_labels: ['production'] });
      }
      if (url.pathname === '/api/v1/prompts') {
        const q = url.searchParams.get('q') ?? '';
        const all = [prompt('support/triage', ['support']), prompt('support/en/reply'), prompt('greeting')];
        return json({ items: all.filter((p) => p.name.startsWith(q)), next_cursor: null });
      }
      return new Response('{}', { status: 404 });
    }),
  );
  localStorage.setItem('prompt-registry.project', 'default/default');
  const router = createMemoryRouter([{ path: '/prompts', Component: Prompts }], { initialEntries: ['/prompts'] });
  render(
    <QueryClientProvider client={new QueryClient({ defaultOptions: { queries: { retry: false } } })}>
      <RouterProvider router={router} />
    </QueryClientProvider>,
  );
  return { calls, router };
}

afterEach(() => vi.unstubAllGlobals());

test('folders come from the slashes in names, and picking one filters by prefix', async () => {
  const { calls } = serve('editor');
  const folders = await screen.findByRole('complementary', { name: 'Folders' });
  await within(folders).findByRole('button', { name: /support/ });
  expect(within(folders).getByRole('button', { name: /en/ })).toBeInTheDocument();
  await userEvent.click(within(folders).getByRole('button', { name: /support/ }));
  expect(await screen.findByDisplayValue('support/')).toBeInTheDocument();
  expect(calls.some((c) => c.includes('q=support%2F'))).toBe(true);
  expect(screen.queryByRole('link', { name: 'greeting' })).not.toBeInTheDocument();
});

test('an editor can create and archive; a viewer sees neither control', async () => {
  serve('editor');
  expect(await screen.findByRole('button', { name: 'New prompt' })).toBeInTheDocument();
  expect((await screen.findAllByRole('button', { name: 'Archive' })).length).toBe(3);
});

test('a viewer sees the list without write controls', async () => {
  serve('viewer');
  await screen.findByRole('link', { name: 'greeting' });
  expect(screen.queryByRole('button', { name: 'New prompt' })).not.toBeInTheDocument();
  expect(screen.queryByRole('button', { name: 'Archive' })).not.toBeInTheDocument();
});
