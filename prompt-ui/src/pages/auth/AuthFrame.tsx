// The frame of the signed-out pages.
import type { ReactNode } from 'react';
import { api, unwrap } from '../../api/client';
import { useTitle } from '../../components/ui';
import { session } from '../../lib/session';

export function AuthFrame({ title, children }: { title: string; children: ReactNode }) {
  useTitle(title);
  return (
    <main id="main" className="narrow">
      <p className="hint">Prompt Registry</p>
      <h1>{title}</h1>
      {children}
    </main>
  );
}

/** The path to go to after signing in: a local path only (never another site). */
export function safeNext(next: string | null): string {
  return next && next.startsWith('/') && !next.startsWith('//') ? next : '/prompts';
}

/** Sign in with a password, the refresh token kept in the HttpOnly cookie. */
export async function signIn(email: string, password: string) {
  session.accept(await unwrap(api.POST('/api/auth/login', { body: { email, password, session: 'cookie' } })));
}

/** An email field (the sign-in and sign-up forms). */
export function EmailField({ value, onChange, autoComplete }: { value: string; onChange: (v: string) => void; autoComplete: string }) {
  return (
    <div className="field">
      <label htmlFor="email">Email</label>
      <input id="email" type="email" autoComplete={autoComplete} required value={value} onChange={(e) => onChange(e.target.value)} />
    </div>
  );
}
