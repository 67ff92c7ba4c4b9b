// The prompt list: name search, tag filter, folders (`/` in names), pages; create;
// archive.
import { useEffect, useMemo, useRef, useState, type FormEvent } from 'react';
import { Link, useNavigate, useSearchParams } from 'react-router';
import { useInfiniteQuery, useMutation, useQueryClient } from '@tanstack/react-query';
import { api, unwrap } from '../api/client';
import { useCan } from '../lib/hooks';
import { folderTree, type Folder } from '../lib/tree';
import { ConfirmButton, ErrorBox, Loading, useTitle, when } from '../components/ui';

const PAGE = 100;

export default function Prompts() {
  useTitle('Prompts');
  const [params, setParams] = useSearchParams();
  const q = params.get('q') ?? '';
  const tag = params.get('tag') ?? '';
  const canEdit = useCan('editor');
  const qc = useQueryClient();
  const list = useInfiniteQuery({
    queryKey: ['prompts', { q, tag }],
    initialPageParam: undefined as string | undefined,
    queryFn: ({ pageParam }) =>
      unwrap(
        api.GET('/api/v1/prompts', {
          params: { query: { q: q || undefined, tag: tag || undefined, limit: PAGE, cursor: pageParam } },
        }),
      ),
    getNextPageParam: (last) => last.next_cursor ?? undefined,
  });
  const items = useMemo(() => list.data?.pages.flatMap((p) => p.items) ?? [], [list.data]);
  const tree = useMemo(() => folderTree(items.map((p) => p.name)), [items]);
  useEffect(() => {
    // For e2e/bench.mjs: when the list is on screen.
    if (items.length > 0) performance.mark('prompt-list-rendered');
  }, [items.length]);
  const archive = useMutation({
    mutationFn: (name: string) =>
      unwrap(api.DELETE('/api/v1/prompts/{name}', { params: { path: { name } } })),
    onSuccess: () => qc.invalidateQueries({ queryKey: ['prompts'] }),
  });
  const set = (k: string, v: string) => {
    const next = new URLSearchParams(params);
    if (v) next.set(k, v);
    else next.delete(k);
    setParams(next, { replace: true });
  };

  return (
    <>
      <div className="row">
        <h1 className="grow">Prompts</h1>
        {canEdit && <CreatePrompt />}
      </div>
      <div className="layout-side">
        <aside className="tree card" aria-label="Folders">
          <h2>Folders</h2>
          <ul>
            <li>
              <button type="button" aria-current={q === ''} onClick={() => set('q', '')}>
                All prompts
              </button>
            </li>
          </ul>
          <FolderList folders={tree.folders} current={q} onPick={(p) => set('q', p)} />
        </aside>
        <section aria-label="Prompt list">
          <div className="row" role="search">
            <label className="inline">
              <span>Name starts with</span>
              <input type="search" value={q} onChange={(e) => set('q', e.target.value)} placeholder="support/" />
            </label>
            <label className="inline">
              <span>Tag</span>
              <input value={tag} onChange={(e) => set('tag', e.target.value)} placeholder="any" />
            </label>
          </div>
          <ErrorBox error={list.error ?? archive.error} />
          {list.isPending ? (
            <Loading what="Loading prompts" />
          ) : (
            <table data-testid="prompt-table">
              <caption className="sr-only">Prompts</caption>
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Labels</th>
                  <th scope="col">Latest</th>
                  <th scope="col">Tags</th>
                  <th scope="col">Updated</th>
                  {canEdit && <th scope="col">Actions</th>}
                </tr>
              </thead>
              <tbody>
                {items.map((p) => (
                  <tr key={p.id}>
                    <td>
                      <Link to={`/prompt/${p.name}`}>{p.name}</Link>
                      {p.description && <div className="hint">{p.description}</div>}
                    </td>
                    <td>
                      {Object.entries(p.labels).map(([l, v]) => (
                        <span key={l} className="badge label">
                          {l}: v{v}
                        </span>
                      ))}
                    </td>
                    <td>{p.latest_version ? `v${p.latest_version}` : '—'}</td>
                    <td>
                      {p.tags.map((t) => (
                        <button key={t} type="button" className="badge" onClick={() => set('tag', t)}>
                          {t}
                        </button>
                      ))}
                    </td>
                    <td>{when(p.updated_at)}</td>
                    {canEdit && (
                      <td>
                        <ConfirmButton
                          label="Archive"
                          title={`Archive ${p.name}?`}
                          danger
                          confirmLabel="Archive"
                          onConfirm={() => archive.mutateAsync(p.name)}
                        >
                          <p>It disappears from lists and can no longer be resolved; its versions and runs are kept.</p>
                        </ConfirmButton>
                      </td>
                    )}
                  </tr>
                ))}
                {items.length === 0 && (
                  <tr>
                    <td colSpan={6} className="hint">
                      No prompt matches.
                    </td>
                  </tr>
                )}
              </tbody>
            </table>
          )}
          <p className="hint" data-testid="prompt-count">
            {items.length} shown
          </p>
          {list.hasNextPage && (
            <button type="button" onClick={() => list.fetchNextPage()} disabled={list.isFetchingNextPage}>
              Load more
            </button>
          )}
        </section>
      </div>
    </>
  );
}

function FolderList({ folders, current, onPick }: { folders: Folder[]; current: string; onPick: (p: string) => void }) {
  if (folders.length === 0) return null;
  return (
    <ul>
      {folders.map((f) => (
        <li key={f.path}>
          <button type="button" aria-current={current === f.path} onClick={() => onPick(f.path)}>
            📁 {f.name} <span className="hint">({f.count})</span>
          </button>
          <FolderList folders={f.folders} current={current} onPick={onPick} />
        </li>
      ))}
    </ul>
  );
}

function CreatePrompt() {
  const ref = useRef<HTMLDialogElement>(null);
  const navigate = useNavigate();
  const qc = useQueryClient();
  const [name, setName] = useState('');
  const [description, setDescription] = useState('');
  const [tags, setTags] = useState('');
  const create = useMutation({
    mutationFn: () =>
      unwrap(
        api.POST('/api/v1/prompts', {
          body: {
            name,
            description: description || undefined,
            tags: tags
              .split(',')
              .map((t) => t.trim())
              .filter(Boolean),
          },
        }),
      ),
    onSuccess: (p) => {
      void qc.invalidateQueries({ queryKey: ['prompts'] });
      ref.current?.close();
      navigate(`/prompt/${p.name}?tab=edit`);
    },
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    create.mutate();
  };
  return (
    <>
      <button type="button" className="primary" onClick={() => ref.current?.showModal()}>
        New prompt
      </button>
      <dialog ref={ref} aria-labelledby="new-prompt-title">
        <form onSubmit={submit}>
          <h2 id="new-prompt-title">New prompt</h2>
          <div className="field">
            <label htmlFor="np-name">Name</label>
            <input id="np-name" required value={name} onChange={(e) => setName(e.target.value)} aria-describedby="np-name-hint" />
            <p id="np-name-hint" className="hint">
              Use <code>/</code> for folders, e.g. <code>support/triage</code>.
            </p>
          </div>
          <div className="field">
            <label htmlFor="np-desc">Description</label>
            <input id="np-desc" value={description} onChange={(e) => setDescription(e.target.value)} />
          </div>
          <div className="field">
            <label htmlFor="np-tags">Tags (comma-separated)</label>
            <input id="np-tags" value={tags} onChange={(e) => setTags(e.target.value)} />
          </div>
          <ErrorBox error={create.error} />
          <div className="row" style={{ justifyContent: 'flex-end' }}>
            <button type="button" onClick={() => ref.current?.close()}>
              Cancel
            </button>
            <button type="submit" className="primary" disabled={create.isPending}>
              Create
            </button>
          </div>
        </form>
      </dialog>
    </>
  );
}
