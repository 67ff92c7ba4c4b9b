import { useState } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, unwrap } from '../../api/client';
import { ConfirmButton, ErrorBox, QueryView, when } from '../../components/ui';
import { useCan } from '../../lib/hooks';
import { Settings } from './SettingsNav';

/** The project's API keys: a new key's secret is shown once; revoking is immediate. */
export default function Keys() {
  const isAdmin = useCan('admin');
  const qc = useQueryClient();
  const keys = useQuery({ queryKey: ['keys'], queryFn: () => unwrap(api.GET('/api/v1/keys')), enabled: isAdmin });
  const [name, setName] = useState('');
  const [role, setRole] = useState<'viewer' | 'editor' | 'admin'>('editor');
  const create = useMutation({
    mutationFn: () => unwrap(api.POST('/api/v1/keys', { body: { name, role } })),
    onSuccess: () => {
      setName('');
      void qc.invalidateQueries({ queryKey: ['keys'] });
    },
  });
  if (!isAdmin) {
    return (
      <Settings title="API keys">
        <p className="notice">Managing API keys needs the admin role in this project.</p>
      </Settings>
    );
  }
  return (
    <Settings title="API keys">
      <form
        className="row card"
        onSubmit={(e) => {
          e.preventDefault();
          create.mutate();
        }}
      >
        <label className="inline">
          <span>Name</span>
          <input required value={name} onChange={(e) => setName(e.target.value)} />
        </label>
        <label className="inline">
          <span>Role</span>
          <select value={role} onChange={(e) => setRole(e.target.value as typeof role)}>
            <option value="viewer">viewer</option>
            <option value="editor">editor</option>
            <option value="admin">admin</option>
          </select>
        </label>
        <button type="submit" className="primary" disabled={create.isPending}>
          Create key
        </button>
      </form>
      <ErrorBox error={create.error} />
      {create.data && (
        <div className="notice" role="status" data-testid="new-key">
          <p>
            <strong>Copy this key now: it is shown once and never again.</strong>
          </p>
          <pre data-testid="new-key-secret">{create.data.key}</pre>
        </div>
      )}
      <QueryView query={keys}>
        {(data) => (
        <table data-testid="keys-table">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Role</th>
              <th scope="col">Prefix</th>
              <th scope="col">Created</th>
              <th scope="col">Status</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {data.items.map((k) => (
              <tr key={k.id} data-testid={`key-${k.name}`}>
                <td>{k.name}</td>
                <td>{k.role}</td>
                <td>
                  <code>{k.prefix}…</code>
                </td>
                <td>{when(k.created_at)}</td>
                <td>{k.revoked_at ? `revoked ${when(k.revoked_at)}` : 'active'}</td>
                <td>
                  {!k.revoked_at && (
                    <ConfirmButton
                      label="Revoke"
                      title={`Revoke ${k.name}?`}
                      danger
                      confirmLabel="Revoke"
                      onConfirm={async () => {
                        await unwrap(api.DELETE('/api/v1/keys/{id}', { params: { path: { id: k.id } } }));
                        await qc.invalidateQueries({ queryKey: ['keys'] });
                      }}
                    >
                      <p>Every request with this key fails from now on.</p>
                    </ConfirmButton>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        )}
      </QueryView>
    </Settings>
  );
}
