import { useEffect, useState } from 'react';
import { Link, useSearchParams } from 'react-router';
import { api, unwrap } from '../../api/client';
import { ErrorBox, Loading } from '../../components/ui';
import { AuthFrame } from './AuthFrame';

/** The link of a verification email. */
export default function VerifyEmail() {
  const [params] = useSearchParams();
  const token = params.get('token') ?? '';
  const [state, setState] = useState<'working' | 'done' | unknown>('working');
  useEffect(() => {
    unwrap(api.POST('/api/auth/verify-email', { body: { token } })).then(
      () => setState('done'),
      (e: unknown) => setState(e),
    );
  }, [token]);
  return (
    <AuthFrame title="Verify your email">
      {state === 'working' ? (
        <Loading what="Verifying" />
      ) : state === 'done' ? (
        <p className="notice" role="status">
          Your email is verified. <Link to="/prompts">Continue</Link>
        </p>
      ) : (
        <ErrorBox error={state} />
      )}
    </AuthFrame>
  );
}
