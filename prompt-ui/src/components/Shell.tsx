// The frame of every signed-in screen: a skip link, the navigation, the organization
// and project switcher, the user's menu; and the guard that signs in again from the
// refresh cookie after a reload, or sends to the sign-in page.
import { useEffect, useState } from 'react';
import { NavLink, Navigate, Outlet, useLocation, useNavigate } from 'react-router';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { api, unwrap } from '../api/client';
import { session } from '../lib/session';
import { useProject, useUser } from '../lib/hooks';
import { useLiveEvents } from '../lib/live';
import { applyTheme, setLanguage, setTheme, type Theme } from '../lib/theme';
import { Loading } from './ui';

export function Shell() {
  const user = useUser();
  const location = useLocation();
  const [checking, setChecking] = useState(user === null);

  useEffect(() => {
    if (user !== null) return;
    let live = true;
    session.refresh().finally(() => {
      if (live) setChecking(false);
    });
    return () => {
      live = false;
    };
  }, [user]);

  if (user === null) {
    if (checking) return <Loading what="Signing in" />;
    const next = encodeURIComponent(location.pathname + location.search);
    return <Navigate to={`/login?next=${next}`} replace />;
  }
  return <SignedIn />;
}

function SignedIn() {
  const project = useProject();
  const prefs = useQuery({
    queryKey: ['preferences'],
    queryFn: () => unwrap(api.GET('/api/users/me/preferences')),
    staleTime: 60_000,
  });
  useEffect(() => {
    const p = prefs.data as { theme?: string; language?: string } | undefined;
    if (!p) return;
    if (p.theme === 'light' || p.theme === 'dark' || p.theme === 'system') setTheme(p.theme as Theme);
    else applyTheme();
    setLanguage(p.language);
  }, [prefs.data]);
  useLiveEvents(project);
  return (
    <>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="top">
        <NavLink to="/prompts" className="brand">
          Prompt Registry
        </NavLink>
        <nav aria-label="Main">
          <NavLink to="/prompts">Prompts</NavLink>
          <NavLink to="/runs">Runs</NavLink>
          <NavLink to="/dashboard">Dashboard</NavLink>
          <NavLink to="/settings/keys">Settings</NavLink>
        </nav>
        <span className="spacer" />
        <ProjectSwitcher />
        <UserMenu />
      </header>
      <main id="main" tabIndex={-1}>
        {project ? <Outlet key={project} /> : <Loading what="Choosing a project" />}
      </main>
    </>
  );
}

interface Choice {
  value: string;
  label: string;
}

/** Every project the user can open, as `ORG/NAME`; picks the first when none is chosen. */
function ProjectSwitcher() {
  const project = useProject();
  const qc = useQueryClient();
  const navigate = useNavigate();
  const choices = useQuery({
    queryKey: ['projects-of-user'],
    queryFn: async (): Promise<Choice[]> => {
      const orgs = await unwrap(api.GET('/api/v1/orgs'));
      const out: Choice[] = [];
      for (const o of orgs.items) {
        const projects = await unwrap(
          api.GET('/api/v1/orgs/{org}/projects', { params: { path: { org: o.name } } }),
        );
        for (const p of projects.items) {
          out.push({ value: `${o.name}/${p.name}`, label: `${o.name} / ${p.name}` });
        }
      }
      return out;
    },
  });
  const list = choices.data;
  useEffect(() => {
    if (!list || list.length === 0) return;
    if (!project || !list.some((c) => c.value === project)) {
      const first = list[0];
      if (first) session.setProject(first.value);
    }
  }, [list, project]);
  if (!list) return null;
  if (list.length === 0) return <span className="hint">No project yet</span>;
  return (
    <label className="inline">
      <span>Project</span>
      <select
        aria-label="Organization and project"
        value={project ?? ''}
        onChange={(e) => {
          session.setProject(e.target.value);
          qc.clear();
          navigate('/prompts');
        }}
      >
        {list.map((c) => (
          <option key={c.value} value={c.value}>
            {c.label}
          </option>
        ))}
      </select>
    </label>
  );
}

function UserMenu() {
  const user = useUser();
  const navigate = useNavigate();
  const qc = useQueryClient();
  return (
    <div className="row">
      <span className="hint" title={user?.email}>
        {user?.email}
      </span>
      <button
        type="button"
        onClick={async () => {
          await session.signOut();
          qc.clear();
          navigate('/login');
        }}
      >
        Sign out
      </button>
    </div>
  );
}
