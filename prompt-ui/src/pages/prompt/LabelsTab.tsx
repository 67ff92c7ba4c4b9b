// Labels: where each points, moving and removing them (with a confirmation and a
// compare-and-set on the version the user saw, so a concurrent move is refused rather
// than overwritten), protected labels marked, and each label's history.
import { useState } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, unwrap } from '../../api/client';
import { ConfirmButton, ErrorBox, QueryView, when } from '../../components/ui';
import { useCan, useWhoami } from '../../lib/hooks';
import { useVersions, type Prompt } from './data';

export function LabelsTab({ prompt }: { prompt: Prompt }) {
  const who = useWhoami();
  const canEdit = useCan('editor');
  const isAdmin = useCan('admin');
  const protectedLabels = who.data?.protected_labels ?? [];
  const { versions } = useVersions(prompt.name);
  const [newLabel, setNewLabel] = useState('');
  const [newVersion, setNewVersion] = useState<number | ''>('');
  const qc = useQueryClient();
  const add = useMutation({
    mutationFn: () =>
      unwrap(
        api.PUT('/api/v1/prompts/{name}/labels/{label}', {
          params: { path: { name: prompt.name, label: newLabel } },
          body: { version: Number(newVersion), expected_version: null },
        }),
      ),
    onSuccess: () => {
      setNewLabel('');
      void qc.invalidateQueries({ queryKey: ['prompt', prompt.name] });
    },
  });
  const entries = Object.entries(prompt.labels);
  const mayMove = (l: string) => canEdit && (!protectedLabels.includes(l) || isAdmin);
  return (
    <section aria-label="Labels">
      <table>
        <thead>
          <tr>
            <th scope="col">Label</th>
            <th scope="col">Version</th>
            <th scope="col">Actions</th>
          </tr>
        </thead>
        <tbody>
          {entries.map(([label, version]) => (
            <LabelRow
              key={label}
              prompt={prompt.name}
              label={label}
              version={version}
              versions={versions.map((v) => v.version)}
              isProtected={protectedLabels.includes(label)}
              mayMove={mayMove(label)}
            />
          ))}
          {entries.length === 0 && (
            <tr>
              <td colSpan={3} className="hint">
                No label yet.
              </td>
            </tr>
          )}
        </tbody>
      </table>
      {canEdit && versions.length > 0 && (
        <form
          className="row card"
          onSubmit={(e) => {
            e.preventDefault();
            add.mutate();
          }}
        >
          <label className="inline">
            <span>New label</span>
            <input required value={newLabel} onChange={(e) => setNewLabel(e.target.value)} placeholder="staging" />
          </label>
          <label className="inline">
            <span>on version</span>
            <select required value={newVersion} onChange={(e) => setNewVersion(Number(e.target.value))}>
              <option value="">choose</option>
              {versions.map((v) => (
                <option key={v.version} value={v.version}>
                  v{v.version}
                </option>
              ))}
            </select>
          </label>
          <button type="submit" disabled={newLabel !== '' && !mayMove(newLabel)}>
            Add label
          </button>
          <ErrorBox error={add.error} />
        </form>
      )}
      {entries.map(([label]) => (
        <History key={label} prompt={prompt.name} label={label} />
      ))}
    </section>
  );
}

function LabelRow({
  prompt,
  label,
  version,
  versions,
  isProtected,
  mayMove,
}: {
  prompt: string;
  label: string;
  version: number;
  versions: number[];
  isProtected: boolean;
  mayMove: boolean;
}) {
  const qc = useQueryClient();
  const [target, setTarget] = useState<number>(versions[0] ?? version);
  // The version the user saw when opening a confirmation: the compare-and-set sends it,
  // so a move made meanwhile by someone else is refused (412), not silently replaced.
  const [seen, setSeen] = useState(version);
  const refresh = () => qc.invalidateQueries({ queryKey: ['prompt', prompt] });
  return (
    <tr data-testid={`label-row-${label}`}>
      <td>
        <span className={`badge label${isProtected ? ' protected' : ''}`}>{label}</span>
        {isProtected && <span className="hint"> protected: admins only</span>}
      </td>
      <td>v{version}</td>
      <td>
        {mayMove ? (
          <div className="row">
            <label className="inline">
              <span className="sr-only">Move {label} to version</span>
              <select value={target} onChange={(e) => setTarget(Number(e.target.value))} aria-label={`Move ${label} to version`}>
                {versions.map((v) => (
                  <option key={v} value={v}>
                    v{v}
                  </option>
                ))}
              </select>
            </label>
            <ConfirmButton
              label="Move"
              title={`Move ${label} from v${seen} to v${target}?`}
              disabled={target === version}
              onOpen={() => setSeen(version)}
              confirmLabel="Move"
              onConfirm={async () => {
                await unwrap(
                  api.PUT('/api/v1/prompts/{name}/labels/{label}', {
                    params: { path: { name: prompt, label } },
                    body: { version: target, expected_version: seen },
                  }),
                );
                await refresh();
              }}
            >
              <p>Callers resolving {label} get version {target} from now on.</p>
            </ConfirmButton>
            <ConfirmButton
              label="Remove"
              title={`Remove ${label} (on v${seen})?`}
              onOpen={() => setSeen(version)}
              danger
              confirmLabel="Remove"
              onConfirm={async () => {
                await unwrap(
                  api.DELETE('/api/v1/prompts/{name}/labels/{label}', {
                    params: { path: { name: prompt, label }, query: { expected_version: seen } },
                  }),
                );
                await refresh();
              }}
            >
              <p>Callers resolving {label} will get a 404 until it is set again.</p>
            </ConfirmButton>
          </div>
        ) : (
          <span className="hint">{isProtected ? 'Only admins may move this label.' : 'Read only'}</span>
        )}
      </td>
    </tr>
  );
}

function History({ prompt, label }: { prompt: string; label: string }) {
  const h = useQuery({
    queryKey: ['prompt', prompt, 'history', label],
    queryFn: () =>
      unwrap(
        api.GET('/api/v1/prompts/{name}/labels/{label}/history', {
          params: { path: { name: prompt, label }, query: { limit: 50 } },
        }),
      ),
  });
  return (
    <details className="card">
      <summary>History of {label}</summary>
      <QueryView query={h}>
        {(data) => (
        <table>
          <thead>
            <tr>
              <th scope="col">When</th>
              <th scope="col">From</th>
              <th scope="col">To</th>
              <th scope="col">By</th>
            </tr>
          </thead>
          <tbody>
            {data.items.map((m) => (
              <tr key={m.id}>
                <td>{when(m.moved_at)}</td>
                <td>{m.from_version ? `v${m.from_version}` : '—'}</td>
                <td>{m.to_version ? `v${m.to_version}` : 'removed'}</td>
                <td>{m.moved_by ?? '—'}</td>
              </tr>
            ))}
          </tbody>
        </table>
        )}
      </QueryView>
    </details>
  );
}
