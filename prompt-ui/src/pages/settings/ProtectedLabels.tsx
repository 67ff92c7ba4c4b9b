// The project's protected labels: only admins may move or remove them on any prompt.
// Everyone sees the list (it explains why a Move button is missing); admins add and
// remove entries. The list is the project's own (`/api/v1/protected-labels`); the
// server's `--protected-labels` only seeds it for projects that never changed it.
import { useState } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, unwrap } from '../../api/client';
import { ConfirmButton, ErrorBox, QueryView, when } from '../../components/ui';
import { useCan } from '../../lib/hooks';
import { Settings } from './SettingsNav';

export default function ProtectedLabels() {
  const isAdmin = useCan('admin');
  const qc = useQueryClient();
  const list = useQuery({
    queryKey: ['protected-labels'],
    queryFn: () => unwrap(api.GET('/api/v1/protected-labels')),
  });
  // The whoami answer carries the list the labels tab reads: refresh both.
  const refresh = async () => {
    await qc.invalidateQueries({ queryKey: ['protected-labels'] });
    await qc.invalidateQueries({ queryKey: ['whoami'] });
  };
  const [label, setLabel] = useState('');
  const add = useMutation({
    mutationFn: () =>
      unwrap(api.PUT('/api/v1/protected-labels/{label}', { params: { path: { label: label.trim() } } })),
    onSuccess: async () => {
      setLabel('');
      await refresh();
    },
  });
  return (
    <Settings title="Protected labels">
      <p className="hint">
        A protected label can be moved or removed only by an admin, on every prompt of this project.
      </p>
      {isAdmin ? (
        <form
          className="row card"
          onSubmit={(e) => {
            e.preventDefault();
            add.mutate();
          }}
        >
          <label className="inline">
            <span>Label</span>
            <input required value={label} onChange={(e) => setLabel(e.target.value)} placeholder="production" />
          </label>
          <button type="submit" className="primary" disabled={add.isPending}>
            Protect
          </button>
        </form>
      ) : (
        <p className="notice">Changing this list needs the admin role in this project.</p>
      )}
      <ErrorBox error={add.error} />
      <QueryView query={list}>
        {(data) => (
          <table data-testid="protected-labels">
            <thead>
              <tr>
                <th scope="col">Label</th>
                <th scope="col">Protected by</th>
                <th scope="col">Since</th>
                {isAdmin && <th scope="col">Actions</th>}
              </tr>
            </thead>
            <tbody>
              {data.items.map((p) => (
                <tr key={p.label} data-testid={`protected-${p.label}`}>
                  <td>
                    <span className="badge label protected">{p.label}</span>
                  </td>
                  <td>{p.created_by ?? 'server default'}</td>
                  <td>{when(p.created_at)}</td>
                  {isAdmin && (
                    <td>
                      <ConfirmButton
                        label="Unprotect"
                        title={`Stop protecting ${p.label}?`}
                        danger
                        confirmLabel="Unprotect"
                        onConfirm={async () => {
                          await unwrap(
                            api.DELETE('/api/v1/protected-labels/{label}', { params: { path: { label: p.label } } }),
                          );
                          await refresh();
                        }}
                      >
                        <p>Editors will be able to move and remove {p.label} on every prompt.</p>
                      </ConfirmButton>
                    </td>
                  )}
                </tr>
              ))}
              {data.items.length === 0 && (
                <tr>
                  <td colSpan={isAdmin ? 4 : 3} className="hint">
                    No protected label: editors may move every label.
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
