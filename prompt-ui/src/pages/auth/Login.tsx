import { useState, type FormEvent } from 'react';
import { Link, useNavigate, useSearchParams } from 'react-router';
import { useQuery } from '@tanstack/react-query';
import { api, unwrap } from '../../api/client';
import { session } from '../../lib/session';
import { ErrorBox } from '../../components/ui';
import { AuthFrame, EmailField, safeNext, signIn } from './AuthFrame';

const SOCIAL_LABELS: Record<string, string> = { google: 'Google', wechat: 'WeChat' };

export default function Login() {
  const [params] = useSearchParams();
  const navigate = useNavigate();
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const next = safeNext(params.get('next'));
  const social = useQuery({
    queryKey: ['social'],
    queryFn: () => unwrap(api.GET('/api/auth/social')),
    retry: false,
  });

  async function submit(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await signIn(email, password);
      navigate(next, { replace: true });
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  return (
    <AuthFrame title="Sign in">
      {session.wasExpired() && (
        <p className="notice warn" role="status">
          Your session has expired. Sign in again.
        </p>
      )}
      <form onSubmit={submit} className="card">
        <EmailField value={email} onChange={setEmail} autoComplete="username" />
        <div className="field">
          <label htmlFor="password">Password</label>
          <input id="password" type="password" autoComplete="current-password" required value={password} onChange={(e) => setPassword(e.target.value)} />
        </div>
        <ErrorBox error={error} />
        <button type="submit" className="primary" disabled={busy}>
          Sign in
        </button>
      </form>
      {social.data && social.data.items.length > 0 && (
        <div className="card">
          <p className="hint">Or sign in with</p>
          <div className="row">
            {social.data.items.map((p) => (
              <a
                key={p}
                className="button"
                href={`/api/auth/social/${encodeURIComponent(p)}/start?redirect_to=${encodeURIComponent(next)}`}
              >
                {SOCIAL_LABELS[p] ?? p}
              </a>
            ))}
          </div>
        </div>
      )}
      <p>
        No account? <Link to="/signup">Sign up</Link> · <Link to="/reset-password">Forgot your password?</Link>
      </p>
    </AuthFrame>
  );
}
