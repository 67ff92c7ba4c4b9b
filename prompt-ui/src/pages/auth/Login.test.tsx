// The sign-in page offers the social providers the server has, and only those.
import { act, render, screen, waitFor } from '@testing-library/react';
import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { createMemoryRouter, RouterProvider } from 'react-router';
import Login from './Login';

function serve(providers: string[]) {
  vi.stubGlobal(
    'fetch',
    vi.fn(async (req: Request) => {
      const url = new URL(req.url);
      if (url.pathname === '/api/auth/social') {
        return new Response(JSON.stringify({ items: providers }), { headers: { 'Content-Type': 'application/json' } });
      }
      return new Response('{}', { status: 404 });
    }),
  );
  const router = createMemoryRouter([{ path: '/login', Component: Login }], { initialEntries: ['/login?next=/runs'] });
  render(
    <QueryClientProvider client={new QueryClient({ defaultOptions: { queries: { retry: false } } })}>
      <RouterProvider router={router} />
    </QueryClientProvider>,
  );
}

afterEach(() => vi.unstubAllGlobals());

test('Google and WeChat buttons when configured, returning to where the user was going', async () => {
  serve(['google', 'wechat']);
  const google = await screen.findByRole('link', { name: 'Google' });
  expect(google).toHaveAttribute('href', '/api/auth/social/google/start?redirect_to=%2Fruns');
  expect(screen.getByRole('link', { name: 'WeChat' })).toBeInTheDocument();
});

test('no social section when none is configured', async () => {
  serve([]);
  expect(await screen.findByRole('button', { name: 'Sign in' })).toBeInTheDocument();
  // Wait for the providers' answer to be read, then check nothing was offered.
  await waitFor(() => expect(fetch).toHaveBeenCalledTimes(1));
  await act(() => Promise.resolve());
  expect(screen.queryByText('Or sign in with')).not.toBeInTheDocument();
});

test('a next path to another site is ignored', async () => {
  const { safeNext } = await import('./AuthFrame');
  expect(safeNext('//evil.example/x')).toBe('/prompts');
  expect(safeNext('https://evil.example')).toBe('/prompts');
  expect(safeNext('/runs?status=failed')).toBe('/runs?status=failed');
});
