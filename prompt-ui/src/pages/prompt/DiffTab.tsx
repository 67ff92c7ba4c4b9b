import { useSearchParams } from 'react-router';
import { TextDiff } from '../../components/DiffView';
import { ErrorBox, Loading } from '../../components/ui';
import { canonicalJson, messages, variableChanges } from '../../lib/diff';
import { isChat, useVersion, useVersions, type Prompt, type PromptVersion } from './data';

/** Any two versions compared: template (text, or per message), variables, config. */
export default function DiffTab({ prompt }: { prompt: Prompt }) {
  const [params, setParams] = useSearchParams();
  const { versions, isPending } = useVersions(prompt.name);
  const latest = versions[0]?.version ?? 0;
  const to = Number(params.get('to') ?? latest);
  const from = Number(params.get('from') ?? Math.max(1, to - 1));
  const mode = params.get('view') === 'inline' ? 'inline' : 'split';
  const a = useVersion(prompt.name, from || null);
  const b = useVersion(prompt.name, to || null);
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
      <ErrorBox error={a.error ?? b.error} />
      {a.data && b.data ? <VersionDiff a={a.data} b={b.data} mode={mode} /> : <Loading />}
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

export function VersionDiff({ a, b, mode }: { a: PromptVersion; b: PromptVersion; mode: 'split' | 'inline' }) {
  const vars = variableChanges(a.variables, b.variables);
  return (
    <div data-testid="version-diff">
      <h2>
        v{a.version} → v{b.version}
      </h2>
      {(a.kind !== b.kind || a.template_format !== b.template_format) && (
        <p className="notice warn">
          Template changed from {a.kind} ({a.template_format}) to {b.kind} ({b.template_format}).
        </p>
      )}
      <h3>Template</h3>
      {isChat(a.template) && isChat(b.template) ? (
        messages(a.template, b.template).map((m, i) => (
          <div key={i} className="card" data-testid={`message-${m.kind}`}>
            <div className="msghead">
              Message {i + 1}: {m.kind}
              {m.before && m.after && m.before.role !== m.after.role
                ? ` (role ${m.before.role} → ${m.after.role})`
                : ` (${(m.after ?? m.before)?.role})`}
            </div>
            {m.kind !== 'same' && (
              <TextDiff a={m.before?.content ?? ''} b={m.after?.content ?? ''} mode={mode} label={`Message ${i + 1}`} />
            )}
          </div>
        ))
      ) : (
        <TextDiff
          a={isChat(a.template) ? canonicalJson(a.template) : a.template}
          b={isChat(b.template) ? canonicalJson(b.template) : b.template}
          mode={mode}
          label="Template"
        />
      )}
      <h3>Variables</h3>
      {vars.added.length + vars.removed.length === 0 ? (
        <p className="hint">No change.</p>
      ) : (
        <p>
          {vars.added.map((v) => (
            <span key={v} className="badge completed">
              + {v}
            </span>
          ))}
          {vars.removed.map((v) => (
            <span key={v} className="badge failed">
              − {v}
            </span>
          ))}
        </p>
      )}
      <h3>Config</h3>
      <TextDiff a={canonicalJson(a.config)} b={canonicalJson(b.config)} mode={mode} label="Config" />
      <h3>Commit message</h3>
      <p>{b.commit_message ?? '—'}</p>
    </div>
  );
}
