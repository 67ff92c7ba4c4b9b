// The theme preference (light / dark / system) and language, applied to <html>. Kept
// in localStorage so the first paint is right; the user's stored preferences on the
// server are the source of truth and are copied here when loaded.

export type Theme = 'light' | 'dark' | 'system';
const KEY = 'prompt-registry.theme';

/** The theme stored in this browser. */
export function storedTheme(): Theme {
  const t = localStorage.getItem(KEY);
  return t === 'light' || t === 'dark' ? t : 'system';
}

/** Remember and apply a theme. */
export function setTheme(t: Theme) {
  localStorage.setItem(KEY, t);
  applyTheme();
}

/** Apply the stored theme (following the system's when `system`). */
export function applyTheme() {
  const t = storedTheme();
  const dark =
    t === 'dark' ||
    (t === 'system' && typeof matchMedia !== 'undefined' && matchMedia('(prefers-color-scheme: dark)').matches);
  document.documentElement.dataset.theme = dark ? 'dark' : 'light';
}

/** Apply a language tag to the document (dates and numbers follow it). */
export function setLanguage(lang: string | null | undefined) {
  if (lang) document.documentElement.lang = lang;
}
