// The playground: a version or label, a form of its declared variables, the rendered
// preview, an execution with the output streamed as it comes, then its latency, tokens
// and cost from the logged run. The template can be edited here and saved as a new
// version.
import { useState } from 'react';
import { Link, useSearchParams } from 'react-router';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, unwrap } from '../../api/client';
import { ErrorBox, Loading, money } from '../../components/ui';
import { useCan } from '../../lib/hooks';
import { streamChat } from '../../lib/stream';
import { useCreateVersion, useVersions, type Prompt, type PromptVersion } from './data';
import { Preview, TemplateEditor, useAnalysis, useValues, type Template } from './Draft';

export default function PlaygroundTab({ prompt }: { prompt: Prompt }) {
  const [params, setParams] = useSearchParams();
  const { versions, isPending } = useVersions(prompt.name);
  const labels = Object.keys(prompt.labels);
  const sel = params.get('version') ? `v:${params.get('version')}` : params.get('label') ? `l:${params.get('label')}` : null;
  const selected = sel ?? (labels.includes('production') ? 'l:production' : versions[0] ? `v:${versions[0].version}` : '');
  if (isPending) return <Loading />;
  if (versions.length === 0) return <p className="notice">No version to run yet.</p>;
  const versionNumber = selected.startsWith('l:') ? prompt.labels[selected.slice(2)] : Number(selected.slice(2));
  const version = versions.find((v) => v.version === versionNumber);
  return (
    <section aria-label="Playground">
      <label className="inline">
        <span>Run</span>
        <select
          value={selected}
          onChange={(e) => {
            const next = new URLSearchParams(params);
            next.delete('version');
            next.delete('label');
            const [k, v] = [e.target.value.slice(0, 1), e.target.value.slice(2)];
            next.set(k === 'l' ? 'label' : 'version', v);
            setParams(next, { replace: true });
          }}
        >
          {labels.map((l) => (
            <option key={l} value={`l:${l}`}>
              label {l} (v{prompt.labels[l]})
            </option>
          ))}
          {versions.map((v) => (
            <option key={v.version} value={`v:${v.version}`}>
              version {v.version}
            </option>
          ))}
        </select>
      </label>
      {version ? (
        <Runner key={version.version} prompt={prompt} version={version} label={selected.startsWith('l:') ? selected.slice(2) : null} />
      ) : (
        <Loading />
      )}
    </section>
  );
}

function Runner({ prompt, version, label }: { prompt: Prompt; version: PromptVersion; label: string | null }) {
  const qc = useQueryClient();
  const canEdit = useCan('editor');
  const [template, setTemplate] = useState<Template>(version.template);
  const [editing, setEditing] = useState(false);
  const [values, setValues] = useValues();
  const [output, setOutput] = useState('');
  const cfg = version.config as Record<string, unknown>;
  // The version's config first, then the user's default model (Settings → Preferences).
  const prefs = qc.getQueryData<{ default_provider?: string; default_model?: string }>(['preferences']);
  const [provider, setProvider] = useState(String(cfg.provider ?? prefs?.default_provider ?? 'mock'));
  const [model, setModel] = useState(String(cfg.model ?? prefs?.default_model ?? 'mock/echo'));
  const edited = JSON.stringify(template) !== JSON.stringify(version.template);
  const overridden = provider !== String(cfg.provider ?? '') || model !== String(cfg.model ?? '');
  const analysis = useAnalysis(template, version.template_format, edited && canEdit);
  const variables = edited ? (analysis.data?.variables ?? version.variables) : version.variables;
  const providers = useQuery({
    queryKey: ['providers'],
    queryFn: () => unwrap(api.GET('/api/v1/providers')),
  });
  const run = useMutation({
    mutationFn: async () => {
      setOutput('');
      const vars = Object.fromEntries(variables.map((v) => [v, values[v] ?? '']));
      let body: Record<string, unknown>;
      if (!edited && !overridden) {
        const ref = label ? `prompt:${prompt.name}@${label}` : `prompt:${prompt.name}#${version.version}`;
        body = { model: ref, messages: [], prompt_variables: vars };
      } else {
        // An edited draft or another model: render here, send the messages as they are.
        const r = await unwrap(
          api.POST('/api/v1/tools/render', {
            body: { template, template_format: version.template_format, variables: vars },
          }),
        );
        const messages = r.messages ?? [{ role: 'user' as const, content: r.text ?? '' }];
        const { provider: _p, model: _m, ...params } = cfg;
        void _p;
        void _m;
        const spec = model.startsWith(`${provider}/`) ? model : `${provider}/${model}`;
        body = { ...params, model: spec, messages, metadata: { playground: true, prompt: prompt.name, edited_from: version.version } };
      }
      const result = await streamChat(body, setOutput);
      if (!result.runId) return null;
      const runId = result.runId;
      void qc.invalidateQueries({ queryKey: ['runs'] });
      return unwrap(api.GET('/api/v1/runs/{id}', { params: { path: { id: runId } } }));
    },
  });
  const save = useCreateVersion(prompt.name);
  // The latest version when this playground opened: a save based on it is refused if
  // someone created another meanwhile.
  const [latestSeen] = useState(prompt.latest_version ?? 0);
  const r = run.data;
  return (
    <div className="grid2">
      <div>
        <div className="row">
          <label className="inline">
            <span>Provider</span>
            <input list="provider-names" value={provider} onChange={(e) => setProvider(e.target.value)} />
            <datalist id="provider-names">
              <option value="mock" />
              {providers.data?.items.map((p) => <option key={p.name} value={p.name} />)}
            </datalist>
          </label>
          <label className="inline">
            <span>Model</span>
            <input value={model} onChange={(e) => setModel(e.target.value)} />
          </label>
        </div>
        {canEdit && (
          <label className="inline">
            <input type="checkbox" checked={editing} onChange={(e) => setEditing(e.target.checked)} /> Edit the template
          </label>
        )}
        {editing ? (
          <TemplateEditor template={template} onChange={setTemplate} lints={analysis.data?.lints ?? []} />
        ) : (
          <pre>{typeof template === 'string' ? template : template.map((m) => `[${m.role}] ${m.content}`).join('\n')}</pre>
        )}
        {edited && canEdit && (
          <div className="row">
            <button
              type="button"
              disabled={save.isPending}
              onClick={() =>
                save.mutate({
                  template,
                  template_format: version.template_format,
                  config: version.config,
                  commit_message: `edited in the playground from v${version.version}`,
                  parent_version: latestSeen,
                })
              }
            >
              Save as a new version
            </button>
            {save.data && (
              <span className="success" role="status">
                Saved as version {save.data.version}.
              </span>
            )}
          </div>
        )}
        <ErrorBox error={save.error} />
        <Preview template={template} format={version.template_format} variables={variables} values={values} onValues={setValues} />
      </div>
      <section aria-label="Output" className="card">
        <div className="row">
          <h3 className="grow">Output</h3>
          <button type="button" className="primary" onClick={() => run.mutate()} disabled={run.isPending || !canEdit} title={canEdit ? undefined : 'Running needs the editor role'}>
            {run.isPending ? 'Running…' : 'Run'}
          </button>
        </div>
        <pre className="output" data-testid="output" aria-live="polite">
          {output}
        </pre>
        <ErrorBox error={run.error} />
        {r && (
          <dl className="kv" data-testid="run-figures">
            <dt>Run</dt>
            <dd>
              <Link to={`/runs/${r.id}`}>{r.id}</Link>
            </dd>
            <dt>Status</dt>
            <dd>
              <span className={`badge ${r.status}`}>{r.status}</span>
            </dd>
            <dt>Latency</dt>
            <dd>{r.latency_ms ?? '—'} ms</dd>
            <dt>Tokens</dt>
            <dd>
              {r.input_tokens ?? '—'} in / {r.output_tokens ?? '—'} out
            </dd>
            <dt>Cost</dt>
            <dd>{money(r.cost_usd)}</dd>
          </dl>
        )}
      </section>
    </div>
  );
}
