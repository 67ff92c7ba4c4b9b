// The routes. Every screen but the shell is loaded on demand, so the first page loads
// only what it shows (the charts and the diff come with the screens that use them).
import { createBrowserRouter, Navigate } from 'react-router';
import { Shell } from './components/Shell';

type Mod = { default: React.ComponentType };
const page = (load: () => Promise<Mod>) => async () => ({ Component: (await load()).default });

export const router = createBrowserRouter([
  { path: '/login', lazy: page(() => import('./pages/auth/Login')) },
  { path: '/signup', lazy: page(() => import('./pages/auth/Signup')) },
  { path: '/accept-invitation', lazy: page(() => import('./pages/auth/AcceptInvitation')) },
  { path: '/reset-password', lazy: page(() => import('./pages/auth/ResetPassword')) },
  { path: '/set-password', lazy: page(() => import('./pages/auth/ResetPassword')) },
  { path: '/verify-email', lazy: page(() => import('./pages/auth/VerifyEmail')) },
  {
    path: '/',
    Component: Shell,
    children: [
      { index: true, element: <Navigate to="/prompts" replace /> },
      { path: 'prompts', lazy: page(() => import('./pages/Prompts')) },
      { path: 'prompt/*', lazy: page(() => import('./pages/prompt/PromptPage')) },
      { path: 'runs', lazy: page(() => import('./pages/Runs')) },
      { path: 'runs/:id', lazy: page(() => import('./pages/RunDetail')) },
      { path: 'dashboard', lazy: page(() => import('./pages/Dashboard')) },
      { path: 'settings', element: <Navigate to="/settings/keys" replace /> },
      { path: 'settings/keys', lazy: page(() => import('./pages/settings/Keys')) },
      { path: 'settings/providers', lazy: page(() => import('./pages/settings/Providers')) },
      { path: 'settings/members', lazy: page(() => import('./pages/settings/Members')) },
      { path: 'settings/protected-labels', lazy: page(() => import('./pages/settings/ProtectedLabels')) },
      { path: 'settings/preferences', lazy: page(() => import('./pages/settings/Preferences')) },
      { path: 'settings/audit', lazy: page(() => import('./pages/settings/Audit')) },
      { path: '*', lazy: page(() => import('./pages/NotFound')) },
    ],
  },
]);
