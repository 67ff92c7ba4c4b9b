// The run log: filters in the URL (shareable), keyset pages fetched as the user scrolls,
// rows virtualized (only what is on screen is in the DOM), so 100,000 runs scroll as
// smoothly as 100.
import { useEffect, useMemo, useRef } from 'react';
import { Link, useSearchParams } from 'react-router';
import { useInfiniteQuery } from '@tanstack/react-query';
import { useVirtualizer } from '@tanstack/react-virtual';
import { api, unwrap } from '../api/client';
import { ErrorBox, Loading, money, useTitle, when } from '../components/ui';

const PAGE = 200;
const ROW = 34;
const FILTERS = ['prompt', 'version', 'label', 'status', 'provider', 'model', 'user', 'since', 'until'] as const;
type Filter = (typeof FILTERS)[number];

/** A datetime-local value as RFC 3339 (UTC), or undefined. */
function rfc3339(v: string | null): string | undefined {
  if (!v) return undefined;
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
}

export default function Runs() {
  useTitle('Runs');
  const [params, setParams] = useSearchParams();
  const f = Object.fromEntries(FILTERS.map((k) => [k, params.get(k) ?? ''])) as Record<Filter, string>;
  const query = {
    prompt: f.prompt || undefined,
    version: f.version ? Number(f.version) : undefined,
    label: f.label || undefined,
    status: (f.status || undefined) as 'completed' | undefined,
    provider: f.provider || undefined,
    model: f.model || undefined,
    user: f.user || undefined,
    since: rfc3339(f.since),
    until: rfc3339(f.until),
  };
  const list = useInfiniteQuery({
    queryKey: ['runs', query],
    initialPageParam: undefined as string | undefined,
    queryFn: ({ pageParam }) =>
      unwrap(api.GET('/api/v1/runs', { params: { query: { ...query, limit: PAGE, cursor: pageParam } } })),
    getNextPageParam: (last) => last.next_cursor ?? undefined,
  });
  const rows = useMemo(() => list.data?.pages.flatMap((p) => p.items) ?? [], [list.data]);
  const scroller = useRef<HTMLDivElement>(null);
  // eslint-disable-next-line react-hooks/incompatible-library
  const virtual = useVirtualizer({
    count: list.hasNextPage ? rows.length + 1 : rows.length,
    getScrollElement: () => scroller.current,
    estimateSize: () => ROW,
    overscan: 20,
  });
  const items = virtual.getVirtualItems();
  const last = items[items.length - 1];
  useEffect(() => {
    if (last && last.index >= rows.length - 1 && list.hasNextPage && !list.isFetchingNextPage) {
      void list.fetchNextPage();
    }
  }, [last, rows.length, list]);
  useEffect(() => {
    if (rows.length > 0) performance.mark('runs-table-rendered');
  }, [rows.length]);
  const set = (k: Filter, v: string) => {
    const next = new URLSearchParams(params);
    if (v) next.set(k, v);
    else next.delete(k);
    setParams(next, { replace: true });
  };
  return (
    <>
      <h1>Runs</h1>
      <form className="row card" role="search" aria-label="Filter runs" onSubmit={(e) => e.preventDefault()}>
        <Text k="prompt" label="Prompt" f={f} set={set} />
        <Text k="version" label="Version" f={f} set={set} type="number" />
        <Text k="label" label="Label" f={f} set={set} />
        <label className="inline">
          <span>Status</span>
          <select value={f.status} onChange={(e) => set('status', e.target.value)}>
            <option value="">any</option>
            <option value="completed">completed</option>
            <option value="failed">failed</option>
            <option value="running">running</option>
            <option value="pending">pending</option>
          </select>
        </label>
        <Text k="provider" label="Provider" f={f} set={set} />
        <Text k="model" label="Model" f={f} set={set} />
        <Text k="user" label="User" f={f} set={set} />
        <Text k="since" label="Since" f={f} set={set} type="datetime-local" />
        <Text k="until" label="Until" f={f} set={set} type="datetime-local" />
      </form>
      <ErrorBox error={list.error} />
      {list.isPending ? (
        <Loading what="Loading runs" />
      ) : (
        <div className="runs-scroll" ref={scroller} role="table" aria-label="Runs" aria-rowcount={rows.length} data-testid="runs-table">
          <div className="runs-grid runs-head" role="row">
            {['Created', 'Prompt', 'Version', 'Label', 'Status', 'Model', 'Latency', 'Tokens', 'Cost'].map((h) => (
              <div key={h} role="columnheader">
                {h}
              </div>
            ))}
          </div>
          <div style={{ height: virtual.getTotalSize(), position: 'relative' }}>
            {items.map((it) => {
              const r = rows[it.index];
              if (!r) {
                return (
                  <div key="more" className="runs-row hint" style={{ top: it.start, height: ROW }}>
                    Loading more…
                  </div>
                );
              }
              return (
                <Link
                  key={r.id}
                  to={`/runs/${r.id}`}
                  className="runs-row runs-grid"
                  role="row"
                  aria-rowindex={it.index + 1}
                  style={{ top: it.start, height: ROW }}
                >
                  <div role="cell">{when(r.created_at)}</div>
                  <div role="cell">{r.prompt ?? '—'}</div>
                  <div role="cell">{r.version ? `v${r.version}` : '—'}</div>
                  <div role="cell">{r.label ?? '—'}</div>
                  <div role="cell">
                    <span className={`badge ${r.status}`}>{r.status}</span>
                  </div>
                  <div role="cell">{r.model ?? '—'}</div>
                  <div role="cell">{r.latency_ms ?? '—'} ms</div>
                  <div role="cell">{(r.input_tokens ?? 0) + (r.output_tokens ?? 0)}</div>
                  <div role="cell">{money(r.cost_usd)}</div>
                </Link>
              );
            })}
          </div>
          {rows.length === 0 && <p className="hint" style={{ padding: 8 }}>No run matches.</p>}
        </div>
      )}
      <p className="hint" data-testid="runs-loaded">
        {rows.length} loaded{list.hasNextPage ? ', more as you scroll' : ''}
      </p>
    </>
  );
}

function Text({ k, label, f, set, type = 'text' }: { k: Filter; label: string; f: Record<Filter, string>; set: (k: Filter, v: string) => void; type?: string }) {
  return (
    <label className="inline">
      <span>{label}</span>
      <input type={type} value={f[k]} onChange={(e) => set(k, e.target.value)} size={type === 'number' ? 4 : 12} />
    </label>
  );
}
