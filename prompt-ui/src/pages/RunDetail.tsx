import { Link, useParams } from 'react-router';
import { useQuery } from '@tanstack/react-query';
import { api, unwrap } from '../api/client';
import { ErrorBox, Loading, money, useTitle, when } from '../components/ui';

/** One run: rendered input, output, error, timings, tokens, cost, metadata. */
export default function RunDetail() {
  const id = useParams().id ?? '';
  useTitle(`Run ${id.slice(0, 8)}`);
  const run = useQuery({
    queryKey: ['runs', 'one', id],
    queryFn: () => unwrap(api.GET('/api/v1/runs/{id}', { params: { path: { id } } })),
  });
  if (run.isPending) return <Loading />;
  if (run.error) return <ErrorBox error={run.error} />;
  const r = run.data;
  return (
    <>
      <p>
        <Link to="/runs">← Runs</Link>
      </p>
      <h1>
        Run <code>{r.id}</code> <span className={`badge ${r.status}`}>{r.status}</span>
      </h1>
      <dl className="kv card">
        <dt>Prompt</dt>
        <dd>
          {r.prompt ? (
            <Link to={`/prompt/${r.prompt}?tab=versions`}>
              {r.prompt}
              {r.version ? ` v${r.version}` : ''}
            </Link>
          ) : (
            '—'
          )}
          {r.label && <span className="badge label">{r.label}</span>}
        </dd>
        <dt>Provider / model</dt>
        <dd>
          {r.provider ?? '—'} / {r.model ?? '—'}
        </dd>
        <dt>Created</dt>
        <dd>{when(r.created_at)}</dd>
        <dt>Started / completed</dt>
        <dd>
          {when(r.started_at)} / {when(r.completed_at)}
        </dd>
        <dt>Latency</dt>
        <dd>{r.latency_ms ?? '—'} ms (first token {r.time_to_first_token_ms ?? '—'} ms)</dd>
        <dt>Tokens</dt>
        <dd>
          {r.input_tokens ?? '—'} in / {r.output_tokens ?? '—'} out
          {r.cache_read_tokens ? ` / ${r.cache_read_tokens} cache read` : ''}
        </dd>
        <dt>Cost</dt>
        <dd>{money(r.cost_usd)}</dd>
        <dt>User</dt>
        <dd>{r.user ?? '—'}</dd>
      </dl>
      {r.error && (
        <div className="error" role="alert">
          <strong>{r.error.kind}</strong>: {r.error.message}
        </div>
      )}
      <h2>Variables</h2>
      <pre>{JSON.stringify(r.variables, null, 2)}</pre>
      <h2>Rendered input</h2>
      <pre data-testid="run-input">{typeof r.input === 'string' ? r.input : JSON.stringify(r.input, null, 2)}</pre>
      <h2>Output</h2>
      <pre data-testid="run-output">{r.output ?? '—'}</pre>
      <h2>Metadata</h2>
      <pre>{JSON.stringify(r.metadata, null, 2)}</pre>
    </>
  );
}
