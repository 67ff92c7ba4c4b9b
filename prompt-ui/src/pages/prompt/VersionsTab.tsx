import { useState } from 'react';
import { Link } from 'react-router';
import { useQueryClient } from '@tanstack/react-query';
import { api, unwrap } from '../../api/client';
import { ConfirmButton, ErrorBox, Loading, when } from '../../components/ui';
import { useCan } from '../../lib/hooks';
import { canonicalJson } from '../../lib/json';
import { useVersions, type Prompt } from './data';
import { TemplateView } from './TemplateView';

/**
 * The versions timeline (newest first) and the selected version in full; editors may
 * delete a version (a tombstone: its number is never reused and runs keep pointing at
 * it; the server refuses with 409 while a label other than `latest` is on it).
 */
export function VersionsTab({ prompt }: { prompt: Prompt }) {
  const { versions, isPending, error, hasNextPage, fetchNextPage } = useVersions(prompt.name);
  const [picked, setPicked] = useState<number | null>(null);
  const canEdit = useCan('editor');
  const qc = useQueryClient();
  if (isPending) return <Loading what="Loading versions" />;
  if (error) return <ErrorBox error={error} />;
  if (versions.length === 0) {
    return (
      <p className="notice">
        No version yet. <Link to={`/prompt/${prompt.name}?tab=edit`}>Write the first one</Link>.
      </p>
    );
  }
  const current = versions.find((v) => v.version === picked) ?? versions[0];
  if (!current) return null;
  return (
    <div className="layout-side">
      <nav aria-label="Versions">
        <ol className="timeline" data-testid="timeline">
          {versions.map((v) => (
            <li key={v.version} className={v.version === current.version ? 'selected' : undefined}>
              <button type="button" aria-current={v.version === current.version} onClick={() => setPicked(v.version)}>
                <strong>v{v.version}</strong>{' '}
                {v.labels.map((l) => (
                  <span key={l} className="badge label">
                    {l}
                  </span>
                ))}
                <div className="hint">{v.commit_message ?? 'no message'}</div>
                <div className="hint">
                  {v.created_by ?? 'unknown'} · {when(v.created_at)}
                </div>
              </button>
            </li>
          ))}
        </ol>
        {hasNextPage && (
          <button type="button" onClick={() => fetchNextPage()}>
            Older versions
          </button>
        )}
      </nav>
      <article aria-label={`Version ${current.version}`}>
        <h2>Version {current.version}</h2>
        <dl className="kv">
          <dt>Kind</dt>
          <dd>
            {current.kind} ({current.template_format})
          </dd>
          <dt>Variables</dt>
          <dd>{current.variables.length ? current.variables.map((v) => <code key={v}>{v} </code>) : '—'}</dd>
          <dt>Labels</dt>
          <dd>{current.labels.join(', ') || '—'}</dd>
          <dt>Author</dt>
          <dd>{current.created_by ?? '—'}</dd>
          <dt>Created</dt>
          <dd>{when(current.created_at)}</dd>
          <dt>Commit message</dt>
          <dd>{current.commit_message ?? '—'}</dd>
        </dl>
        <h3>Template</h3>
        <TemplateView template={current.template} />
        <h3>Config</h3>
        <pre data-testid="config">{canonicalJson(current.config)}</pre>
        <p className="row">
          {versions.length > 1 && (
            <Link
              className="button"
              to={`/prompt/${prompt.name}?tab=diff&from=${Math.max(1, current.version - 1)}&to=${current.version}`}
            >
              Compare with the previous version
            </Link>
          )}
          <Link className="button" to={`/prompt/${prompt.name}?tab=playground&version=${current.version}`}>
            Open in the playground
          </Link>
          {canEdit && (
            <ConfirmButton
              label="Delete version"
              title={`Delete version ${current.version} of ${prompt.name}?`}
              danger
              confirmLabel="Delete"
              onConfirm={async () => {
                await unwrap(
                  api.DELETE('/api/v1/prompts/{name}/versions/{version}', {
                    params: { path: { name: prompt.name, version: current.version } },
                  }),
                );
                setPicked(null);
                await qc.invalidateQueries({ queryKey: ['prompt', prompt.name] });
                await qc.invalidateQueries({ queryKey: ['prompts'] });
              }}
            >
              <p>
                It stops resolving at once and disappears from this list; its number is never given again and
                runs that used it keep pointing at it.
                {otherLabels(current.labels).length > 0 &&
                  ` Move ${otherLabels(current.labels).join(', ')} off it first: the server refuses while a label is on it.`}
              </p>
            </ConfirmButton>
          )}
        </p>
      </article>
    </div>
  );
}

/** The labels that block a deletion (`latest` moves by itself). */
function otherLabels(labels: string[]): string[] {
  return labels.filter((l) => l !== 'latest');
}
