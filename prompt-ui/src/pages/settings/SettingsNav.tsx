import { NavLink } from 'react-router';
import type { ReactNode } from 'react';
import { useTitle } from '../../components/ui';

/** The settings section's frame: its own navigation and a title. */
export function Settings({ title, children }: { title: string; children: ReactNode }) {
  useTitle(title);
  return (
    <div className="layout-side">
      <nav aria-label="Settings" className="card tree">
        <ul>
          <li><NavLink to="/settings/keys">API keys</NavLink></li>
          <li><NavLink to="/settings/providers">Provider credentials</NavLink></li>
          <li><NavLink to="/settings/members">Members and invitations</NavLink></li>
          <li><NavLink to="/settings/protected-labels">Protected labels</NavLink></li>
          <li><NavLink to="/settings/preferences">Preferences</NavLink></li>
          <li><NavLink to="/settings/audit">Audit log</NavLink></li>
        </ul>
      </nav>
      <section aria-label={title}>
        <h1>{title}</h1>
        {children}
      </section>
    </div>
  );
}

/** The organization of the current project (`ORG/NAME` → `ORG`). */
export function orgOf(project: string | null): string {
  return project?.split('/')[0] ?? 'default';
}
