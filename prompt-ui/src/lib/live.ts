// Live updates: the project's change feed (`GET /api/v1/events/stream`, Server-Sent
// Events) read with fetch — an EventSource cannot send the Authorization header — and
// parsed by eventsource-parser. Each event invalidates the queries it makes stale, so
// a version created or a label moved elsewhere shows without a reload. After a drop the
// stream resumes from the last event seen (`Last-Event-ID`).
import { useEffect, useSyncExternalStore } from 'react';
import { useQueryClient, type QueryClient } from '@tanstack/react-query';
import { EventSourceParserStream } from 'eventsource-parser/stream';
import { session } from './session';

/** One event of the change log, as the server sends it. */
export interface FeedEvent {
  seq: number;
  type: string;
  prompt?: string;
  version?: number;
  label?: string;
  actor?: string;
  at: string;
}

let lastEvent: FeedEvent | null = null;
let connected = false;
const listeners = new Set<() => void>();
const emit = () => listeners.forEach((l) => l());

/** The latest event received and whether the stream is open (for the status line). */
export function useFeedStatus() {
  return useSyncExternalStore(
    (l) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    () => (connected ? lastEvent ?? 'connected' : 'offline'),
  );
}

/** Which cached queries an event makes stale. */
export function invalidateFor(qc: QueryClient, e: FeedEvent) {
  if (e.prompt) {
    void qc.invalidateQueries({ queryKey: ['prompt', e.prompt] });
  }
  if (e.type.startsWith('prompt.')) void qc.invalidateQueries({ queryKey: ['prompts'] });
  if (e.type.startsWith('api_key.')) void qc.invalidateQueries({ queryKey: ['keys'] });
  if (e.type.startsWith('credential.')) void qc.invalidateQueries({ queryKey: ['providers'] });
  if (e.type.startsWith('member.')) void qc.invalidateQueries({ queryKey: ['members'] });
}

/** Follow the project's feed while mounted. */
export function useLiveEvents(project: string | null) {
  const qc = useQueryClient();
  useEffect(() => {
    if (!project) return;
    const abort = new AbortController();
    let cursor: number | null = null;
    let delay = 500;
    const run = async () => {
      while (!abort.signal.aborted) {
        try {
          const token = await session.accessToken();
          if (!token) return;
          const headers: Record<string, string> = {
            Authorization: `Bearer ${token}`,
            'X-Project': project,
            Accept: 'text/event-stream',
          };
          if (cursor !== null) headers['Last-Event-ID'] = String(cursor);
          const res = await fetch('/api/v1/events/stream', { headers, signal: abort.signal });
          if (res.status === 410) {
            // Our cursor was pruned: everything may be stale; refetch and follow the head.
            cursor = null;
            void qc.invalidateQueries();
            continue;
          }
          if (!res.ok || !res.body) throw new Error(`feed answered ${res.status}`);
          connected = true;
          delay = 500;
          emit();
          const reader = res.body
            .pipeThrough(new TextDecoderStream())
            .pipeThrough(new EventSourceParserStream())
            .getReader();
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            if (value.event === 'cut_off') {
              const c = JSON.parse(value.data) as { cursor?: number };
              if (typeof c.cursor === 'number') cursor = c.cursor;
              break;
            }
            const e = JSON.parse(value.data) as FeedEvent;
            cursor = e.seq;
            lastEvent = e;
            invalidateFor(qc, e);
            emit();
          }
        } catch {
          if (abort.signal.aborted) return;
        }
        connected = false;
        emit();
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 15_000);
      }
    };
    void run();
    return () => {
      abort.abort();
      connected = false;
    };
  }, [project, qc]);
}
