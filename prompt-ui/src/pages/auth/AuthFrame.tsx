// The frame of the signed-out pages.
import type { ReactNode } from 'react';
import { useTitle } from '../../components/ui';

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
