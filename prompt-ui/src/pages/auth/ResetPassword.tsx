import { useState, type FormEvent } from 'react';
import { Link, useSearchParams } from 'react-router';
import { api, unwrap } from '../../api/client';
import { ErrorBox } from '../../components/ui';
import { AuthFrame } from './AuthFrame';

/** Without a token: ask for a reset link. With one (from the email): set a new password. */
export default function ResetPassword() {
  const [params] = useSearchParams();
  const token = params.get('token');
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [done, setDone] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setError(null);
    try {
      if (token) {
        await unwrap(api.POST('/api/auth/password-reset/confirm', { body: { token, password } }));
        setDone('Your password is set. Sign in with it.');
      } else {
        await unwrap(api.POST('/api/auth/password-reset', { body: { email } }));
        setDone('If this email has an account, a link to set a new password is on its way.');
      }
    } catch (err) {
      setError(err);
    }
  }

  return (
    <AuthFrame title={token ? 'Set a new password' : 'Reset your password'}>
      {done ? (
        <p className="notice" role="status">
          {done} <Link to="/login">Sign in</Link>
        </p>
      ) : (
        <form onSubmit={submit} className="card">
          {token ? (
            <div className="field">
              <label htmlFor="password">New password</label>
              <input id="password" type="password" autoComplete="new-password" required minLength={10} value={password} onChange={(e) => setPassword(e.target.value)} />
            </div>
          ) : (
            <div className="field">
              <label htmlFor="email">Email</label>
              <input id="email" type="email" required value={email} onChange={(e) => setEmail(e.target.value)} />
            </div>
          )}
          <ErrorBox error={error} />
          <button type="submit" className="primary">
            {token ? 'Set password' : 'Send the link'}
          </button>
        </form>
      )}
    </AuthFrame>
  );
}
