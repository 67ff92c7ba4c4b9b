import { useState } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, unwrap } from '../../api/client';
import { ErrorBox, Loading } from '../../components/ui';
import { setLanguage, setTheme, type Theme } from '../../lib/theme';
import { Settings } from './SettingsNav';

interface Prefs {
  theme?: Theme;
  language?: string;
  default_provider?: string;
  default_model?: string;
}

/** The user's preferences, stored on the server (they follow the user across browsers). */
export default function Preferences() {
  const prefs = useQuery({ queryKey: ['preferences'], queryFn: () => unwrap(api.GET('/api/users/me/preferences')) });
  if (prefs.isPending) return <Loading />;
  if (prefs.error) return <ErrorBox error={prefs.error} />;
  return <Form initial={prefs.data as Prefs} />;
}

function Form({ initial }: { initial: Prefs }) {
  const qc = useQueryClient();
  const [theme, setThemeValue] = useState<Theme>(initial.theme ?? 'system');
  const [language, setLang] = useState(initial.language ?? '');
  const [provider, setProvider] = useState(initial.default_provider ?? '');
  const [model, setModel] = useState(initial.default_model ?? '');
  const save = useMutation({
    mutationFn: () =>
      unwrap(
        api.PATCH('/api/users/me/preferences', {
          body: { theme, language: language || null, default_provider: provider || null, default_model: model || null },
        }),
      ),
    onSuccess: (p) => {
      setTheme(theme);
      setLanguage((p as Prefs).language);
      qc.setQueryData(['preferences'], p);
    },
  });
  return (
    <Settings title="Preferences">
      <form
        className="card"
        onSubmit={(e) => {
          e.preventDefault();
          save.mutate();
        }}
      >
        <fieldset>
          <legend>Theme</legend>
          {(['light', 'dark', 'system'] as const).map((t) => (
            <label key={t} className="inline">
              <input type="radio" name="theme" value={t} checked={theme === t} onChange={() => setThemeValue(t)} /> {t}
            </label>
          ))}
        </fieldset>
        <div className="field">
          <label htmlFor="lang">Language (dates and numbers)</label>
          <input id="lang" value={language} onChange={(e) => setLang(e.target.value)} placeholder="en, fr, zh-CN" />
        </div>
        <div className="field">
          <label htmlFor="provider">Default provider (the playground's, when a version names none)</label>
          <input id="provider" value={provider} onChange={(e) => setProvider(e.target.value)} placeholder="openai" />
        </div>
        <div className="field">
          <label htmlFor="model">Default model</label>
          <input id="model" value={model} onChange={(e) => setModel(e.target.value)} placeholder="openai/gpt-4o-mini" />
        </div>
        <ErrorBox error={save.error} />
        <button type="submit" className="primary" disabled={save.isPending}>
          Save
        </button>
        {save.isSuccess && (
          <span className="success" role="status">
            {' '}
            Saved.
          </span>
        )}
      </form>
    </Settings>
  );
}
