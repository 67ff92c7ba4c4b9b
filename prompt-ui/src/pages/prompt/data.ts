// The prompt page's queries: one key family per prompt (`['prompt', name, …]`), so that
// a change-feed event about the prompt refreshes all of them at once.
import { useInfiniteQuery, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, unwrap } from '../../api/client';
import type { components } from '../../api/schema';

export type Prompt = components['schemas']['Prompt'];
export type PromptVersion = components['schemas']['PromptVersion'];
export type ChatMessage = components['schemas']['ChatMessage'];

export function usePrompt(name: string) {
  return useQuery({
    queryKey: ['prompt', name],
    queryFn: () => unwrap(api.GET('/api/v1/prompts/{name}', { params: { path: { name } } })),
  });
}

/** Every version, newest first (pages of 100 fetched on demand). */
export function useVersions(name: string) {
  const q = useInfiniteQuery({
    queryKey: ['prompt', name, 'versions'],
    initialPageParam: undefined as string | undefined,
    queryFn: ({ pageParam }) =>
      unwrap(
        api.GET('/api/v1/prompts/{name}/versions', {
          params: { path: { name }, query: { limit: 100, cursor: pageParam } },
        }),
      ),
    getNextPageParam: (last) => last.next_cursor ?? undefined,
  });
  const versions = (q.data?.pages.flatMap((p) => p.items) ?? []).sort((a, b) => b.version - a.version);
  return { ...q, versions };
}

export function useVersion(name: string, version: number | null) {
  return useQuery({
    queryKey: ['prompt', name, 'version', version],
    enabled: version !== null,
    queryFn: () =>
      unwrap(
        api.GET('/api/v1/prompts/{name}/versions/{version}', {
          params: { path: { name, version: version ?? 0 } },
        }),
      ),
  });
}

/** The template as editable text: a text, or JSON-free message list. */
export function isChat(t: PromptVersion['template']): t is ChatMessage[] {
  return Array.isArray(t);
}

export type NewVersion = components['schemas']['NewVersion'];

/**
 * Create a version of `name` (with `parent_version`, so a version created meanwhile
 * makes it a conflict); refreshes the prompt's queries and the list once created.
 */
export function useCreateVersion(name: string, onCreated?: (v: PromptVersion) => void) {
  const qc = useQueryClient();
  return useMutation({
    mutationFn: (body: NewVersion) =>
      unwrap(api.POST('/api/v1/prompts/{name}/versions', { params: { path: { name } }, body })),
    onSuccess: (v) => {
      void qc.invalidateQueries({ queryKey: ['prompt', name] });
      void qc.invalidateQueries({ queryKey: ['prompts'] });
      onCreated?.(v);
    },
  });
}
