// The new-version editor: starts from the latest version; shows the detected variables,
// the lints in place and a strict render preview as you type; authoring aids (critique,
// remix, create from a goal, optimize), saying plainly when the tools model is the mock.
// Saving sends `parent_version`: a version created meanwhile by someone else makes the
// save fail with a conflict instead of silently replacing their work.
import { useState } from 'react';
import { Link, useNavigate } from 'react-router';
import { ErrorBox, Loading } from '../../components/ui';
import { canonicalJson } from '../../lib/json';
import { useCreateVersion, useVersions, type Prompt, type PromptVersion } from './data';
import { parseConfig, Preview, TemplateEditor, useAnalysis, useValues, type Template } from './Draft';
import { Aids } from './Aids';

export default function EditTab({ prompt }: { prompt: Prompt }) {
  const { versions, isPending } = useVersions(prompt.name);
  if (isPending) return <Loading />;
  // Mounted once: a version created meanwhile must not reset the draft being edited.
  return <Editor prompt={prompt} initialBase={versions[0] ?? null} />;
}

function Editor({ prompt, initialBase }: { prompt: Prompt; initialBase: PromptVersion | null }) {
  // The version this draft is based on, fixed when editing starts: saving sends it as
  // `parent_version`, so a newer version created meanwhile makes the save a conflict.
  const [base] = useState(initialBase);
  const newer = (prompt.latest_version ?? 0) > (base?.version ?? 0);
  const navigate = useNavigate();
  const [template, setTemplate] = useState<Template>(base?.template ?? '');
  const [format, setFormat] = useState<string>(base?.template_format ?? 'mustache');
  const [configText, setConfigText] = useState(
    canonicalJson(base?.config ?? { provider: 'mock', model: 'mock/echo' }),
  );
  const [message, setMessage] = useState('');
  const [values, setValues] = useValues();
  const analysis = useAnalysis(template, format, true);
  const config = parseConfig(configText);
  const save = useCreateVersion(prompt.name, (v) => navigate(`/prompt/${prompt.name}?tab=versions&v=${v.version}`));
  const variables = analysis.data?.variables ?? base?.variables ?? [];
  return (
    <div className="grid2">
      <form
        aria-label="New version"
        onSubmit={(e) => {
          e.preventDefault();
          save.mutate({
            template,
            template_format: format as 'mustache',
            config: config.value ?? {},
            commit_message: message || null,
            parent_version: base?.version ?? 0,
          });
        }}
      >
        <p className="hint">
          {base ? `Based on version ${base.version}.` : 'The first version of this prompt.'}
        </p>
        {newer && (
          <p className="notice warn" role="status" data-testid="newer-version">
            Version {prompt.latest_version} was created after you started editing: saving will be refused as a conflict.
            Copy your changes, then{' '}
            <Link to={`/prompt/${prompt.name}?tab=diff&from=${base?.version ?? 1}&to=${prompt.latest_version ?? 1}`}>
              see what changed
            </Link>
            .
          </p>
        )}
        <div className="row">
          <label className="inline">
            <span>Kind</span>
            <select
              value={Array.isArray(template) ? 'chat' : 'text'}
              onChange={(e) =>
                setTemplate(
                  e.target.value === 'chat'
                    ? [{ role: 'user', content: Array.isArray(template) ? '' : template }]
                    : Array.isArray(template)
                      ? template.map((m) => m.content).join('\n\n')
                      : template,
                )
              }
            >
              <option value="text">text</option>
              <option value="chat">chat</option>
            </select>
          </label>
          <label className="inline">
            <span>Template language</span>
            <select value={format} onChange={(e) => setFormat(e.target.value)}>
              <option value="mustache">mustache</option>
              <option value="jinja">jinja</option>
            </select>
          </label>
        </div>
        <TemplateEditor template={template} onChange={setTemplate} lints={analysis.data?.lints ?? []} />
        <p data-testid="detected-variables">
          Detected variables:{' '}
          {variables.length ? variables.map((v) => <code key={v}>{v} </code>) : <span className="hint">none</span>}
        </p>
        <div className="field">
          <label htmlFor="config">Config (JSON)</label>
          <textarea id="config" className="mono" rows={6} value={configText} onChange={(e) => setConfigText(e.target.value)} aria-invalid={!!config.error} />
          {config.error && <p className="error">{config.error}</p>}
        </div>
        <div className="field">
          <label htmlFor="commit">Commit message</label>
          <input id="commit" value={message} onChange={(e) => setMessage(e.target.value)} placeholder="What changed and why" />
        </div>
        <ErrorBox error={save.error} />
        <button type="submit" className="primary" disabled={save.isPending || !!config.error}>
          Save as version {(prompt.latest_version ?? 0) + 1}
        </button>
      </form>
      <div>
        <Preview template={template} format={format} variables={variables} values={values} onValues={setValues} />
        <Aids prompt={prompt} base={base} template={template} format={format} onTemplate={setTemplate} />
      </div>
    </div>
  );
}
