// One prompt: versions timeline and detail, diff, new-version editor with authoring
// aids, labels and their history, playground, dashboard.
import { lazy, Suspense } from 'react';
import { useParams, useSearchParams } from 'react-router';
import { ErrorBox, Loading, Tabs, useTitle } from '../../components/ui';
import { useCan } from '../../lib/hooks';
import { usePrompt } from './data';
import { VersionsTab } from './VersionsTab';
import { LabelsTab } from './LabelsTab';

const DiffTab = lazy(() => import('./DiffTab'));
const EditTab = lazy(() => import('./EditTab'));
const PlaygroundTab = lazy(() => import('./PlaygroundTab'));
const DashboardView = lazy(() => import('../Dashboard').then((m) => ({ default: m.DashboardView })));

type Tab = 'versions' | 'diff' | 'edit' | 'labels' | 'playground' | 'dashboard';

export default function PromptPage() {
  const name = useParams()['*'] ?? '';
  useTitle(name);
  const [params, setParams] = useSearchParams();
  const canEdit = useCan('editor');
  const prompt = usePrompt(name);
  const tab = (params.get('tab') as Tab | null) ?? 'versions';
  const tabs: { id: Tab; label: string }[] = [
    { id: 'versions', label: 'Versions' },
    { id: 'diff', label: 'Diff' },
    ...(canEdit ? [{ id: 'edit' as Tab, label: 'New version' }] : []),
    { id: 'labels', label: 'Labels' },
    { id: 'playground', label: 'Playground' },
    { id: 'dashboard', label: 'Dashboard' },
  ];
  const setTab = (t: Tab) => {
    const next = new URLSearchParams(params);
    next.set('tab', t);
    setParams(next);
  };
  if (prompt.isPending) return <Loading what="Loading the prompt" />;
  if (prompt.error) return <ErrorBox error={prompt.error} />;
  const p = prompt.data;
  return (
    <>
      <h1>
        {p.name} {p.archived && <span className="badge">archived</span>}
      </h1>
      {p.description && <p className="hint">{p.description}</p>}
      <p>
        {Object.entries(p.labels).map(([l, v]) => (
          <span key={l} className="badge label" data-testid={`label-${l}`}>
            {l} → v{v}
          </span>
        ))}
        {p.tags.map((t) => (
          <span key={t} className="badge">
            {t}
          </span>
        ))}
      </p>
      <Tabs tabs={tabs} current={tab} onChange={setTab} label="Prompt sections" />
      <div role="tabpanel" id={`panel-${tab}`} aria-labelledby={`tab-${tab}`}>
        <Suspense fallback={<Loading />}>
          {tab === 'versions' && <VersionsTab prompt={p} />}
          {tab === 'diff' && <DiffTab prompt={p} />}
          {tab === 'edit' && canEdit && <EditTab prompt={p} />}
          {tab === 'labels' && <LabelsTab prompt={p} />}
          {tab === 'playground' && <PlaygroundTab prompt={p} />}
          {tab === 'dashboard' && <DashboardView prompt={p.name} />}
        </Suspense>
      </div>
    </>
  );
}
