// Hooks over the session and the current project.
import { useSyncExternalStore } from 'react';
import { useQuery } from '@tanstack/react-query';
import { api, unwrap } from '../api/client';
import { session } from './session';

/** The signed-in user (re-renders on sign-in / sign-out). */
export function useUser() {
  return useSyncExternalStore(
    (l) => session.subscribe(l),
    () => session.user(),
  );
}

/** The current project `ORG/NAME` (re-renders when it changes). */
export function useProject() {
  return useSyncExternalStore(
    (l) => session.subscribe(l),
    () => session.project(),
  );
}

/** Roles in rising order of power, as the server ranks them. */
const RANK: Record<string, number> = { viewer: 0, editor: 1, admin: 2 };

/** Who the caller is in the current project: the role decides which controls show. */
export function useWhoami() {
  const project = useProject();
  return useQuery({
    queryKey: ['whoami', project],
    enabled: project !== null,
    queryFn: () => unwrap(api.GET('/api/v1/project')),
    staleTime: 30_000,
  });
}

/** Whether the caller's role in the current project is at least `role`. */
export function useCan(role: 'viewer' | 'editor' | 'admin'): boolean {
  const who = useWhoami();
  const have = who.data?.role;
  return have !== undefined && (RANK[have] ?? -1) >= (RANK[role] ?? 99);
}
