import { useState } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, unwrap } from '../../api/client';
import { ConfirmButton, ErrorBox, QueryView, when } from '../../components/ui';
import { canonicalJson } from '../../lib/json';
import { useCan } from '../../lib/hooks';
import { parseConfig } from '../prompt/Draft';
import { Settings } from './SettingsNav';

const KINDS = ['openai', 'anthropic', 'gemini', 'openai_compatible'] as const;

/** The project's stored provider credentials: set, replace, remove. Secrets are never shown. */
export default function Providers() {
  const isAdmin = useCan('admin');
  const qc = useQueryClient();
  const list = useQuery({ queryKey: ['providers'], queryFn: () => unwrap(api.GET('/api/v1/providers')) });
  const [name, setName] = useState('');
  const [kind, setKind] = useState<(typeof KINDS)[number]>('openai');
  const [baseUrl, setBaseUrl] = useState('');
  const [apiKey, setApiKey] = useState('');
  const [params, setParams] = useState('{}');
  const parsed = parseConfig(params);
  const put = useMutation({
    mutationFn: () =>
      unwrap(
        api.PUT('/api/v1/providers/{name}', {
          params: { path: { name } },
          body: { kind, base_url: baseUrl || null, api_key: apiKey, default_params: parsed.value ?? {} },
        }),
      ),
    onSuccess: () => {
      setApiKey('');
      void qc.invalidateQueries({ queryKey: ['providers'] });
    },
  });
  return (
    <Settings title="Provider credentials">
      {isAdmin ? (
        <form
          className="card"
          onSubmit={(e) => {
            e.preventDefault();
            put.mutate();
          }}
        >
          <p className="hint">Setting an existing name replaces it. The API key is stored encrypted and never shown again.</p>
          <div className="row">
            <label className="inline">
              <span>Name</span>
              <input required value={name} onChange={(e) => setName(e.target.value)} />
            </label>
            <label className="inline">
              <span>Kind</span>
              <select value={kind} onChange={(e) => setKind(e.target.value as typeof kind)}>
                {KINDS.map((k) => (
                  <option key={k} value={k}>
                    {k}
                  </option>
                ))}
              </select>
            </label>
            <label className="inline">
              <span>Base URL</span>
              <input value={baseUrl} onChange={(e) => setBaseUrl(e.target.value)} placeholder="vendor default" />
            </label>
          </div>
          <div className="field">
            <label htmlFor="pk">API key</label>
            <input id="pk" type="password" autoComplete="off" required value={apiKey} onChange={(e) => setApiKey(e.target.value)} />
          </div>
          <div className="field">
            <label htmlFor="pp">Default parameters (JSON)</label>
            <textarea id="pp" className="mono" rows={3} value={params} onChange={(e) => setParams(e.target.value)} />
            {parsed.error && <p className="error">{parsed.error}</p>}
          </div>
          <ErrorBox error={put.error} />
          <button type="submit" className="primary" disabled={put.isPending || !!parsed.error}>
            Save
          </button>
        </form>
      ) : (
        <p className="notice">Changing credentials needs the admin role.</p>
      )}
      <QueryView query={list}>
        {(data) => (
        <table>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Kind</th>
              <th scope="col">Base URL</th>
              <th scope="col">Key</th>
              <th scope="col">Defaults</th>
              <th scope="col">Updated</th>
              {isAdmin && <th scope="col">Actions</th>}
            </tr>
          </thead>
          <tbody>
            {data.items.map((p) => (
              <tr key={p.name}>
                <td>{p.name}</td>
                <td>{p.kind}</td>
                <td>{p.base_url ?? 'vendor default'}</td>
                <td>
                  <code>{p.api_key}</code>
                </td>
                <td>
                  <code>{canonicalJson(p.default_params)}</code>
                </td>
                <td>{when(p.updated_at)}</td>
                {isAdmin && (
                  <td>
                    <ConfirmButton
                      label="Remove"
                      title={`Remove ${p.name}?`}
                      danger
                      confirmLabel="Remove"
                      onConfirm={async () => {
                        await unwrap(api.DELETE('/api/v1/providers/{name}', { params: { path: { name: p.name } } }));
                        await qc.invalidateQueries({ queryKey: ['providers'] });
                      }}
                    >
                      <p>Prompts configured with this provider fail until it is set again.</p>
                    </ConfirmButton>
                  </td>
                )}
              </tr>
            ))}
            {data.items.length === 0 && (
              <tr>
                <td colSpan={7} className="hint">
                  No stored credential: the server's environment (e.g. OPENAI_API_KEY) and the mock provider are used.
                </td>
              </tr>
            )}
          </tbody>
        </table>
        )}
      </QueryView>
    </Settings>
  );
}
