// A draft template being edited (in the new-version editor and the playground): text or
// chat messages; the variables the server detects in it with its lints at their
// locations; and a strict render preview with a form generated from those variables.
import { useId, useState } from 'react';
import { useQuery } from '@tanstack/react-query';
import { api, unwrap } from '../../api/client';
import type { components } from '../../api/schema';
import { ErrorBox } from '../../components/ui';
import { useDebounced } from '../../lib/useDebounced';
import type { ChatMessage, PromptVersion } from './data';
import { isChat } from './data';

export type Template = PromptVersion['template'];
export type Lint = components['schemas']['Lint'];
const ROLES = ['system', 'developer', 'user', 'assistant', 'tool', 'placeholder'] as const;

/** Lints the server found in a draft (no model call: `critique: false`), and its variables. */
export function useAnalysis(template: Template, format: string, enabled: boolean) {
  const t = useDebounced(template, 300);
  return useQuery({
    queryKey: ['analyze', t, format],
    enabled,
    placeholderData: (prev) => prev,
    queryFn: () =>
      unwrap(
        api.POST('/api/v1/tools/analyze', {
          body: { template: t, template_format: format as 'mustache', critique: false },
        }),
      ),
  });
}

/** The strict render of a draft with `variables` (any role may ask). */
export function useRenderPreview(template: Template, format: string, variables: Record<string, string>) {
  const t = useDebounced(template, 300);
  const vars = useDebounced(variables, 300);
  return useQuery({
    queryKey: ['render-draft', t, format, vars],
    retry: false,
    placeholderData: (prev) => prev,
    queryFn: () =>
      unwrap(
        api.POST('/api/v1/tools/render', {
          body: { template: t, template_format: format as 'mustache', variables: vars },
        }),
      ),
  });
}

function LintList({ lints }: { lints: Lint[] }) {
  if (lints.length === 0) return null;
  return (
    <ul aria-label="Lints" style={{ listStyle: 'none', padding: 0 }}>
      {lints.map((l, i) => (
        <li key={i} className={`lint${l.severity === 'error' ? ' error' : ''}`} data-testid="lint">
          <strong>{l.severity}</strong> <code>{l.code}</code>: {l.message}
        </li>
      ))}
    </ul>
  );
}

/** The editor of a template, with each lint shown under the part it is about. */
export function TemplateEditor({
  template,
  onChange,
  lints,
}: {
  template: Template;
  onChange: (t: Template) => void;
  lints: Lint[];
}) {
  const id = useId();
  const at = (loc: string) => lints.filter((l) => (l.location ?? 'template') === loc);
  const elsewhere = lints.filter(
    (l) => l.location && l.location !== 'template' && !/^template\[\d+\]/.test(l.location),
  );
  if (!isChat(template)) {
    return (
      <div className="field">
        <label htmlFor={`${id}-text`}>Template</label>
        <textarea
          id={`${id}-text`}
          className="mono"
          value={template}
          onChange={(e) => onChange(e.target.value)}
          aria-describedby={`${id}-hint`}
          rows={10}
        />
        <p id={`${id}-hint`} className="hint">
          Variables are written <code>{'{{ name }}'}</code>.
        </p>
        <LintList lints={at('template')} />
        <LintList lints={elsewhere} />
      </div>
    );
  }
  const set = (i: number, m: ChatMessage) => onChange(template.map((x, j) => (j === i ? m : x)));
  return (
    <fieldset className="card">
      <legend>Messages</legend>
      <LintList lints={at('template')} />
      {template.map((m, i) => (
        <div key={i} className="card" data-testid={`message-editor-${i}`}>
          <div className="row">
            <label className="inline">
              <span>Role of message {i + 1}</span>
              <select value={m.role} onChange={(e) => set(i, { ...m, role: e.target.value as ChatMessage['role'] })}>
                {ROLES.map((r) => (
                  <option key={r} value={r}>
                    {r}
                  </option>
                ))}
              </select>
            </label>
            <button type="button" onClick={() => onChange(template.filter((_, j) => j !== i))} aria-label={`Remove message ${i + 1}`}>
              Remove
            </button>
          </div>
          <label htmlFor={`${id}-m${i}`}>{m.role === 'placeholder' ? 'Placeholder name' : `Content of message ${i + 1}`}</label>
          <textarea id={`${id}-m${i}`} className="mono" rows={m.role === 'placeholder' ? 1 : 4} value={m.content} onChange={(e) => set(i, { ...m, content: e.target.value })} />
          <LintList lints={lints.filter((l) => l.location?.startsWith(`template[${i}]`))} />
        </div>
      ))}
      <button type="button" onClick={() => onChange([...template, { role: 'user', content: '' }])}>
        Add a message
      </button>
      <LintList lints={elsewhere} />
    </fieldset>
  );
}

/** A form of the declared variables, and the strict render preview of the draft. */
export function Preview({
  template,
  format,
  variables,
  values,
  onValues,
}: {
  template: Template;
  format: string;
  variables: string[];
  values: Record<string, string>;
  onValues: (v: Record<string, string>) => void;
}) {
  const id = useId();
  // Strict: a variable left empty is not sent, so the preview says it is missing.
  const used = Object.fromEntries(variables.filter((v) => values[v]).map((v) => [v, values[v] ?? '']));
  const r = useRenderPreview(template, format, used);
  return (
    <section aria-label="Preview" className="card">
      <h3>Variables</h3>
      {variables.length === 0 && <p className="hint">The template uses no variable.</p>}
      {variables.map((v) => (
        <div key={v} className="field">
          <label htmlFor={`${id}-${v}`}>{v}</label>
          <input id={`${id}-${v}`} value={values[v] ?? ''} onChange={(e) => onValues({ ...values, [v]: e.target.value })} />
        </div>
      ))}
      <h3>Preview</h3>
      {r.error ? (
        <ErrorBox error={r.error} />
      ) : r.data?.messages ? (
        r.data.messages.map((m, i) => (
          <div key={i}>
            <span className="badge">{m.role}</span>
            <pre data-testid="preview">{m.content}</pre>
          </div>
        ))
      ) : (
        <pre data-testid="preview">{r.data?.text ?? ''}</pre>
      )}
    </section>
  );
}

/** Parse the config editor's text: an object, or an error saying why not. */
export function parseConfig(text: string): { value?: Record<string, unknown>; error?: string } {
  if (text.trim() === '') return { value: {} };
  try {
    const v: unknown = JSON.parse(text);
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return { error: 'config must be a JSON object' };
    return { value: v as Record<string, unknown> };
  } catch (e) {
    return { error: `config is not valid JSON: ${(e as Error).message}` };
  }
}

/** Remember variable values across renders of a draft. */
export function useValues() {
  return useState<Record<string, string>>({});
}
