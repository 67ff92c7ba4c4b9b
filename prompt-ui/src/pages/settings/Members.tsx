import { useState } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, unwrap } from '../../api/client';
import { ConfirmButton, ErrorBox, Loading, when } from '../../components/ui';
import { useProject, useUser } from '../../lib/hooks';
import { orgOf, Settings } from './SettingsNav';

const ORG_ROLES = ['owner', 'admin', 'member', 'viewer'] as const;
type OrgRole = (typeof ORG_ROLES)[number];

/** The organization's members and their roles, and its invitations. */
export default function Members() {
  const org = orgOf(useProject());
  const me = useUser();
  const qc = useQueryClient();
  const members = useQuery({
    queryKey: ['members', org],
    queryFn: () => unwrap(api.GET('/api/v1/orgs/{org}/members', { params: { path: { org } } })),
  });
  const myRole = members.data?.items.find((m) => m.user_id === me?.id)?.role;
  const manage = myRole === 'owner' || myRole === 'admin';
  const invitations = useQuery({
    queryKey: ['members', org, 'invitations'],
    enabled: manage,
    queryFn: () => unwrap(api.GET('/api/v1/orgs/{org}/invitations', { params: { path: { org } } })),
  });
  const [email, setEmail] = useState('');
  const [role, setRole] = useState<OrgRole>('member');
  const invite = useMutation({
    mutationFn: () => unwrap(api.POST('/api/v1/orgs/{org}/invitations', { params: { path: { org } }, body: { email, role } })),
    onSuccess: () => {
      setEmail('');
      void qc.invalidateQueries({ queryKey: ['members', org] });
    },
  });
  const patch = useMutation({
    mutationFn: (v: { user: string; role: OrgRole }) =>
      unwrap(api.PATCH('/api/v1/orgs/{org}/members/{user}', { params: { path: { org, user: v.user } }, body: { role: v.role } })),
    onSettled: () => qc.invalidateQueries({ queryKey: ['members', org] }),
  });
  return (
    <Settings title={`Members of ${org}`}>
      <ErrorBox error={members.error ?? patch.error} />
      {members.isPending ? (
        <Loading />
      ) : (
        <table>
          <thead>
            <tr>
              <th scope="col">Email</th>
              <th scope="col">Name</th>
              <th scope="col">Role</th>
              <th scope="col">Since</th>
              {manage && <th scope="col">Actions</th>}
            </tr>
          </thead>
          <tbody>
            {members.data?.items.map((m) => (
              <tr key={m.user_id}>
                <td>{m.email}</td>
                <td>{m.name}</td>
                <td>
                  {manage ? (
                    <select aria-label={`Role of ${m.email}`} value={m.role} onChange={(e) => patch.mutate({ user: m.user_id, role: e.target.value as OrgRole })}>
                      {ORG_ROLES.map((r) => (
                        <option key={r} value={r}>
                          {r}
                        </option>
                      ))}
                    </select>
                  ) : (
                    m.role
                  )}
                  {m.project_roles.length > 0 && <span className="hint"> ({m.project_roles.length} project overrides)</span>}
                </td>
                <td>{when(m.created_at)}</td>
                {manage && (
                  <td>
                    {m.user_id !== me?.id && (
                      <ConfirmButton
                        label="Remove"
                        title={`Remove ${m.email} from ${org}?`}
                        danger
                        confirmLabel="Remove"
                        onConfirm={async () => {
                          await unwrap(api.DELETE('/api/v1/orgs/{org}/members/{user}', { params: { path: { org, user: m.user_id } } }));
                          await qc.invalidateQueries({ queryKey: ['members', org] });
                        }}
                      />
                    )}
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {manage && (
        <>
          <h2>Invitations</h2>
          <form
            className="row card"
            onSubmit={(e) => {
              e.preventDefault();
              invite.mutate();
            }}
          >
            <label className="inline">
              <span>Email</span>
              <input type="email" aria-label="Email of the invited person" required value={email} onChange={(e) => setEmail(e.target.value)} />
            </label>
            <label className="inline">
              <span>Role</span>
              <select aria-label="Role of the invited person" value={role} onChange={(e) => setRole(e.target.value as OrgRole)}>
                {ORG_ROLES.map((r) => (
                  <option key={r} value={r}>
                    {r}
                  </option>
                ))}
              </select>
            </label>
            <button type="submit" className="primary" disabled={invite.isPending}>
              Invite
            </button>
          </form>
          <ErrorBox error={invite.error ?? invitations.error} />
          {invite.data && (
            <p className="notice" role="status">
              Invitation sent to {invite.data.email}. The link is emailed (or logged by the server when no mail is configured).
            </p>
          )}
          <table>
            <thead>
              <tr>
                <th scope="col">Email</th>
                <th scope="col">Role</th>
                <th scope="col">Invited by</th>
                <th scope="col">Expires</th>
                <th scope="col">Status</th>
                <th scope="col">Actions</th>
              </tr>
            </thead>
            <tbody>
              {invitations.data?.items.map((i) => (
                <tr key={i.id}>
                  <td>{i.email}</td>
                  <td>{i.role}</td>
                  <td>{i.invited_by}</td>
                  <td>{when(i.expires_at)}</td>
                  <td>{i.accepted_at ? 'accepted' : i.revoked_at ? 'revoked' : 'pending'}</td>
                  <td>
                    {!i.accepted_at && !i.revoked_at && (
                      <ConfirmButton
                        label="Revoke"
                        title={`Revoke the invitation of ${i.email}?`}
                        danger
                        confirmLabel="Revoke"
                        onConfirm={async () => {
                          await unwrap(api.DELETE('/api/v1/orgs/{org}/invitations/{id}', { params: { path: { org, id: i.id } } }));
                          await qc.invalidateQueries({ queryKey: ['members', org] });
                        }}
                      />
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </Settings>
  );
}
