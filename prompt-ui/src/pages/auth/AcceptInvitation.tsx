import { useState } from 'react';
import { Link, useNavigate, useSearchParams } from 'react-router';
import { api, unwrap } from '../../api/client';
import { session } from '../../lib/session';
import { useUser } from '../../lib/hooks';
import { ErrorBox } from '../../components/ui';
import { AuthFrame } from './AuthFrame';

/** The link of an invitation email: accept it signed in, or sign up with it. */
export default function AcceptInvitation() {
  const [params] = useSearchParams();
  const token = params.get('token') ?? '';
  const user = useUser();
  const navigate = useNavigate();
  const [error, setError] = useState<unknown>(null);
  const [checked, setChecked] = useState(false);

  if (!checked && user === null) {
    void session.refresh().finally(() => setChecked(true));
  }

  if (!token) {
    return (
      <AuthFrame title="Invitation">
        <p className="error">This link has no invitation token.</p>
      </AuthFrame>
    );
  }
  return (
    <AuthFrame title="Accept the invitation">
      {user ? (
        <div className="card">
          <p>
            Signed in as <strong>{user.email}</strong>.
          </p>
          <ErrorBox error={error} />
          <button
            type="button"
            className="primary"
            onClick={async () => {
              try {
                await unwrap(api.POST('/api/v1/invitations/accept', { body: { token } }));
                navigate('/prompts');
              } catch (e) {
                setError(e);
              }
            }}
          >
            Accept and join
          </button>
        </div>
      ) : (
        <div className="card">
          <p>Sign up with this invitation, or sign in first if you already have an account.</p>
          <div className="row">
            <Link className="button primary" to={`/signup?invitation=${encodeURIComponent(token)}`}>
              Sign up
            </Link>
            <Link className="button" to={`/login?next=${encodeURIComponent(`/accept-invitation?token=${token}`)}`}>
              Sign in
            </Link>
          </div>
        </div>
      )}
    </AuthFrame>
  );
}
