// Authoring aids over the tools model: a critique, a remix in a style, a template from
// a goal, an optimized new version. The answer names the model; when it is the built-in
// mock (the default until an operator sets `--tools-model`), the console says so: its
// output is a placeholder, not advice.
import { useState } from 'react';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { api, unwrap } from '../../api/client';
import { ErrorBox } from '../../components/ui';
import type { Prompt, PromptVersion } from './data';
import type { Template } from './Draft';

const STYLES = ['concise', 'detailed', 'formal', 'friendly', 'few_shot', 'step_by_step', 'json_output'] as const;

function ModelNote({ model }: { model: string | null | undefined }) {
  if (!model) return null;
  return model.startsWith('mock') ? (
    <p className="notice warn" data-testid="mock-model">
      The tools model is the built-in mock (<code>{model}</code>): this output is a placeholder that shows the
      flow, not advice. An operator sets a real model with <code>--tools-model</code>.
    </p>
  ) : (
    <p className="hint">By {model}.</p>
  );
}

export function Aids({
  prompt,
  base,
  template,
  format,
  onTemplate,
}: {
  prompt: Prompt;
  base: PromptVersion | null;
  template: Template;
  format: string;
  onTemplate: (t: Template) => void;
}) {
  const qc = useQueryClient();
  const [style, setStyle] = useState<(typeof STYLES)[number]>('concise');
  const [goal, setGoal] = useState('');
  const critique = useMutation({
    mutationFn: () =>
      unwrap(api.POST('/api/v1/tools/analyze', { body: { template, template_format: format as 'mustache', critique: true } })),
  });
  const remix = useMutation({
    mutationFn: () =>
      unwrap(api.POST('/api/v1/tools/remix', { body: { template, style, template_format: format as 'mustache' } })),
  });
  const create = useMutation({
    mutationFn: () => unwrap(api.POST('/api/v1/tools/create', { body: { goal } })),
  });
  const optimize = useMutation({
    mutationFn: () =>
      unwrap(
        api.POST('/api/v1/prompts/{name}/optimize', {
          params: { path: { name: prompt.name } },
          body: { version: base?.version ?? null },
        }),
      ),
    onSuccess: () => qc.invalidateQueries({ queryKey: ['prompt', prompt.name] }),
  });
  const c = critique.data?.critique;
  return (
    <section aria-label="Authoring aids" className="card">
      <h3>Authoring aids</h3>
      <div className="row">
        <button type="button" onClick={() => critique.mutate()} disabled={critique.isPending}>
          Critique
        </button>
      </div>
      <ErrorBox error={critique.error} />
      {c &&
        (c.available ? (
          <div data-testid="critique">
            <ModelNote model={c.model} />
            <p>
              Clarity {c.clarity?.score ?? '—'} · specificity {c.specificity?.score ?? '—'} · structure{' '}
              {c.structure?.score ?? '—'}
            </p>
            <ul>
              {(c.suggestions ?? []).map((s, i) => (
                <li key={i}>{s}</li>
              ))}
            </ul>
          </div>
        ) : (
          <div data-testid="critique">
            <ModelNote model={c.model} />
            <p className="notice warn">No critique: {c.reason ?? 'the tools model is unavailable'}.</p>
          </div>
        ))}
      <div className="row">
        <label className="inline">
          <span>Remix style</span>
          <select value={style} onChange={(e) => setStyle(e.target.value as (typeof STYLES)[number])}>
            {STYLES.map((s) => (
              <option key={s} value={s}>
                {s.replace(/_/g, ' ')}
              </option>
            ))}
          </select>
        </label>
        <button type="button" onClick={() => remix.mutate()} disabled={remix.isPending}>
          Remix
        </button>
      </div>
      <ErrorBox error={remix.error} />
      {remix.data && (
        <div className="card" data-testid="remix">
          <ModelNote model={remix.data.model} />
          <p className="hint">{remix.data.rationale}</p>
          <pre>{typeof remix.data.template === 'string' ? remix.data.template : JSON.stringify(remix.data.template, null, 2)}</pre>
          <button type="button" onClick={() => onTemplate(remix.data.template)}>
            Use this draft
          </button>
        </div>
      )}
      <div className="field">
        <label htmlFor="goal">Create from a goal</label>
        <textarea id="goal" rows={2} value={goal} onChange={(e) => setGoal(e.target.value)} placeholder="Summarize a support ticket for an engineer" />
        <button type="button" onClick={() => create.mutate()} disabled={!goal.trim() || create.isPending}>
          Write a draft
        </button>
      </div>
      <ErrorBox error={create.error} />
      {create.data && (
        <div className="card">
          <ModelNote model={create.data.model} />
          <p className="hint">{create.data.rationale}</p>
          <pre>{typeof create.data.template === 'string' ? create.data.template : JSON.stringify(create.data.template, null, 2)}</pre>
          <button type="button" onClick={() => onTemplate(create.data.template)}>
            Use this draft
          </button>
        </div>
      )}
      {base && (
        <div className="row">
          <button type="button" onClick={() => optimize.mutate()} disabled={optimize.isPending}>
            Optimize v{base.version} into a new version
          </button>
        </div>
      )}
      <ErrorBox error={optimize.error} />
      {optimize.data && (
        <div className="card">
          <ModelNote model={optimize.data.model} />
          <p>
            Saved as version {optimize.data.version.version}. {optimize.data.rationale}
          </p>
        </div>
      )}
    </section>
  );
}
