import { useState, type FormEvent } from 'react';
import { Link, useNavigate, useSearchParams } from 'react-router';
import { api, unwrap } from '../../api/client';
import { ErrorBox } from '../../components/ui';
import { AuthFrame, EmailField, signIn } from './AuthFrame';

/** Sign up (with an invitation token when one is in the URL), then sign in at once. */
export default function Signup() {
  const [params] = useSearchParams();
  const invitation = params.get('invitation');
  const navigate = useNavigate();
  const [email, setEmail] = useState(params.get('email') ?? '');
  const [name, setName] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await unwrap(
        api.POST('/api/auth/register', {
          body: { email, password, name: name || null, invitation },
        }),
      );
      // The answer is the same whether or not the email was free (no enumeration): try
      // to sign in; a taken email fails here like a wrong password.
      await signIn(email, password);
      navigate('/prompts', { replace: true });
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  return (
    <AuthFrame title={invitation ? 'Join your team' : 'Create your account'}>
      <form onSubmit={submit} className="card">
        <EmailField value={email} onChange={setEmail} autoComplete="email" />
        <div className="field">
          <label htmlFor="name">Name (optional)</label>
          <input id="name" autoComplete="name" value={name} onChange={(e) => setName(e.target.value)} />
        </div>
        <div className="field">
          <label htmlFor="password">Password</label>
          <input id="password" type="password" autoComplete="new-password" required minLength={10} aria-describedby="pw-hint" value={password} onChange={(e) => setPassword(e.target.value)} />
          <p id="pw-hint" className="hint">
            At least 10 characters; a few unrelated words work well.
          </p>
        </div>
        <ErrorBox error={error} />
        <button type="submit" className="primary" disabled={busy}>
          Sign up
        </button>
      </form>
      <p>
        Have an account? <Link to="/login">Sign in</Link>
      </p>
    </AuthFrame>
  );
}
