// The signed-in session, outside React so the API client can read it: the access token
// lives in memory only; the refresh token is an HttpOnly cookie the server set at login
// (`"session": "cookie"`), so a reload signs back in with one `POST /api/auth/refresh`.
//
// Refresh tokens are single use and a reused one signs the whole session out, so every
// refresh in this browser goes through one lock (the Web Locks API across tabs, a
// promise within this one).

/** What the console knows of the signed-in user. */
export interface SessionUser {
  id: string;
  email: string;
  name?: string | null;
}

interface TokenAnswer {
  access_token: string;
  expires_at: string;
  user: SessionUser;
}

type Listener = () => void;

const PROJECT_KEY = 'prompt-registry.project';
/** Refresh this long before the access token expires. */
const EARLY_MS = 30_000;

class Session {
  private token: string | null = null;
  private expiresAt = 0;
  private currentUser: SessionUser | null = null;
  private inflight: Promise<boolean> | null = null;
  private listeners = new Set<Listener>();
  private expired = false;

  /** The signed-in user, or null. */
  user(): SessionUser | null {
    return this.currentUser;
  }

  /** Whether the last session ended because it expired (shown on the sign-in page). */
  wasExpired(): boolean {
    return this.expired;
  }

  /** The project API calls are made in (`ORG/NAME`), or null before one is chosen. */
  project(): string | null {
    return localStorage.getItem(PROJECT_KEY);
  }

  setProject(p: string) {
    localStorage.setItem(PROJECT_KEY, p);
    this.emit();
  }

  subscribe(l: Listener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  private emit() {
    for (const l of this.listeners) l();
  }

  /** Keep the tokens of a login or refresh answer. */
  accept(answer: TokenAnswer) {
    this.token = answer.access_token;
    this.expiresAt = Date.parse(answer.expires_at);
    this.currentUser = answer.user;
    this.expired = false;
    this.emit();
  }

  /** A valid access token, refreshed first when it is about to expire; null when signed out. */
  async accessToken(): Promise<string | null> {
    if (this.token && Date.now() < this.expiresAt - EARLY_MS) return this.token;
    if (!this.token && !this.currentUser) return null;
    const ok = await this.refresh();
    return ok ? this.token : null;
  }

  /** Exchange the refresh cookie for a new access token (once at a time). */
  refresh(): Promise<boolean> {
    if (!this.inflight) {
      const run = (): Promise<boolean> => this.doRefresh();
      const locked: Promise<boolean> =
        typeof navigator !== 'undefined' && navigator.locks
          ? navigator.locks.request('prompt-registry.refresh', run).then((v) => v)
          : run();
      this.inflight = locked.finally(() => {
        this.inflight = null;
      });
    }
    return this.inflight;
  }

  private async doRefresh(): Promise<boolean> {
    const res = await fetch('/api/auth/refresh', {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'X-Requested-With': 'prompt-registry-console' },
    });
    if (!res.ok) {
      const hadSession = this.currentUser !== null;
      this.clear(hadSession);
      return false;
    }
    this.accept((await res.json()) as TokenAnswer);
    return true;
  }

  /** The server refused our token: the session is over. */
  unauthorized() {
    if (this.currentUser) this.clear(true);
  }

  /** Forget the session locally (after sign-out, or when it expired). */
  clear(expired = false) {
    this.token = null;
    this.expiresAt = 0;
    this.currentUser = null;
    this.expired = expired;
    this.emit();
  }

  /** Sign out on the server (the cookie's session) and here. */
  async signOut() {
    await fetch('/api/auth/logout', {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'X-Requested-With': 'prompt-registry-console' },
    }).catch(() => undefined);
    this.clear(false);
  }
}

/** The one session of this tab. */
export const session = new Session();
