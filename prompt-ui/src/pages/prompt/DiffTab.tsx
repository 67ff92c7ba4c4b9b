import { useSearchParams } from 'react-router';
import { useQuery } from '@tanstack/react-query';
import { api, unwrap } from '../../api/client';
import type { components } from '../../api/schema';
import { HunksView, PatchView } from '../../components/DiffView';
import { Loading, QueryView } from '../../components/ui';
import { useVersions, type Prompt, type PromptVersion } from './data';

type VersionDiff = components['schemas']['VersionDiff'];

/**
 * Any two versions compared, as the server computes it (`GET …/diff`, the same diff the
 * API and the Python module give): template (line hunks with word changes, or per chat
 * message), variables, the config as a JSON Patch, kind and format changes.
 */
export default function DiffTab({ prompt }: { prompt: Prompt }) {
  const [params, setParams] = useSearchParams();
  const { versions, isPending } = useVersions(prompt.name);
  const latest = versions[0]?.version ?? 0;
  const to = Number(params.get('to') ?? latest);
  const from = Number(params.get('from') ?? Math.max(1, to - 1));
  const mode = params.get('view') === 'inline' ? 'inline' : 'split';
  const diff = useQuery({
    queryKey: ['prompt', prompt.name, 'diff', from, to],
    enabled: from > 0 && to > 0,
    queryFn: () =>
      unwrap(
        api.GET('/api/v1/prompts/{name}/diff', {
          params: { path: { name: prompt.name }, query: { from: String(from), to: String(to) } },
        }),
      ),
  });
  const set = (k: string, v: string) => {
    const next = new URLSearchParams(params);
    next.set(k, v);
    setParams(next, { replace: true });
  };
  if (isPending) return <Loading />;
  if (versions.length < 2) return <p className="notice">A diff needs two versions.</p>;
  return (
    <section aria-label="Diff">
      <div className="row">
        <VersionSelect label="From" value={from} versions={versions} onChange={(v) => set('from', v)} />
        <VersionSelect label="To" value={to} versions={versions} onChange={(v) => set('to', v)} />
        <fieldset className="row" style={{ border: 'none', margin: 0, padding: 0 }}>
          <legend className="sr-only">View</legend>
          <label className="inline">
            <input type="radio" name="view" checked={mode === 'split'} onChange={() => set('view', 'split')} /> Side by side
          </label>
          <label className="inline">
            <input type="radio" name="view" checked={mode === 'inline'} onChange={() => set('view', 'inline')} /> Inline
          </label>
        </fieldset>
      </div>
      <QueryView query={diff}>{(d) => <VersionDiffView diff={d} mode={mode} />}</QueryView>
    </section>
  );
}

function VersionSelect({ label, value, versions, onChange }: { label: string; value: number; versions: PromptVersion[]; onChange: (v: string) => void }) {
  return (
    <label className="inline">
      <span>{label}</span>
      <select value={value} onChange={(e) => onChange(e.target.value)} aria-label={`${label} version`}>
        {versions.map((v) => (
          <option key={v.version} value={v.version}>
            v{v.version}
          </option>
        ))}
      </select>
    </label>
  );
}

export function VersionDiffView({ diff, mode }: { diff: VersionDiff; mode: 'split' | 'inline' }) {
  const { from, to } = diff;
  return (
    <div data-testid="version-diff">
      <h2>
        v{from.version} → v{to.version}
      </h2>
      {diff.identical && <p className="notice">The two versions are the same.</p>}
      {(diff.kind_changed || diff.format_changed) && (
        <p className="notice warn">
          Template changed from {from.kind} ({from.template_format}) to {to.kind} ({to.template_format})
          {diff.kind_changed ? ': the text is compared with the messages’ contents joined.' : '.'}
        </p>
      )}
      <h3>Template</h3>
      {diff.template.kind === 'text' ? (
        <HunksView hunks={diff.template.hunks} mode={mode} label="Template" />
      ) : (
        diff.template.messages.map((m, i) => (
          <div key={i} className="card" data-testid={`message-${m.status}`}>
            <div className="msghead">
              Message {i + 1}: {m.status}
              {m.role_changed && m.from && m.to ? ` (role ${m.from.role} → ${m.to.role})` : ` (${(m.to ?? m.from)?.role})`}
            </div>
            {m.status === 'changed' ? (
              <HunksView hunks={m.hunks} mode={mode} label={`Message ${i + 1}`} />
            ) : m.status === 'added' || m.status === 'removed' ? (
              <pre className={m.status === 'added' ? 'add' : 'del'}>{(m.to ?? m.from)?.content}</pre>
            ) : null}
          </div>
        ))
      )}
      <h3>Variables</h3>
      {diff.variables.added.length + diff.variables.removed.length === 0 ? (
        <p className="hint">No change.</p>
      ) : (
        <p>
          {diff.variables.added.map((v) => (
            <span key={v} className="badge completed">
              + {v}
            </span>
          ))}
          {diff.variables.removed.map((v) => (
            <span key={v} className="badge failed">
              − {v}
            </span>
          ))}
        </p>
      )}
      <h3>Config</h3>
      <PatchView patch={diff.config} />
      <h3>Commit messages</h3>
      <dl className="kv">
        <dt>v{from.version}</dt>
        <dd>{from.commit_message ?? '—'}</dd>
        <dt>v{to.version}</dt>
        <dd>{to.commit_message ?? '—'}</dd>
      </dl>
    </div>
  );
}
