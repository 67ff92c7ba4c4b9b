// Dashboards, per project or per prompt: requests, error rate, latency p50/p95/p99,
// tokens and cost over time, optionally split by version, label or model. Figures come
// from the stats endpoint in time buckets; charts are recharts.
import { useMemo, useState } from 'react';
import { useQuery } from '@tanstack/react-query';
import {
  Area,
  AreaChart,
  Bar,
  BarChart,
  CartesianGrid,
  Legend,
  Line,
  LineChart,
  ResponsiveContainer,
  Tooltip,
  XAxis,
  YAxis,
} from 'recharts';
import { api, unwrap } from '../api/client';
import { ErrorBox, Loading, useTitle } from '../components/ui';
import { series, type Bucket, type StatsRow } from '../lib/series';

const RANGES: { id: string; label: string; ms: number; bucket: Bucket }[] = [
  { id: '1h', label: 'Last hour', ms: 3_600_000, bucket: 'minute' },
  { id: '24h', label: 'Last 24 hours', ms: 86_400_000, bucket: 'hour' },
  { id: '7d', label: 'Last 7 days', ms: 7 * 86_400_000, bucket: 'hour' },
  { id: '30d', label: 'Last 30 days', ms: 30 * 86_400_000, bucket: 'day' },
];
const DAY = { id: '24h', label: 'Last 24 hours', ms: 86_400_000, bucket: 'hour' as Bucket };
const COLORS = ['#3b5bdb', '#e8590c', '#2b8a3e', '#ae3ec9', '#c92a2a', '#0c8599', '#f08c00', '#5c940d'];

export default function Dashboard() {
  useTitle('Dashboard');
  return (
    <>
      <h1>Project dashboard</h1>
      <DashboardView prompt={null} />
    </>
  );
}

export function DashboardView({ prompt }: { prompt: string | null }) {
  const [range, setRange] = useState('24h');
  const [groupBy, setGroupBy] = useState<'' | 'version' | 'label' | 'model'>('');
  const r = RANGES.find((x) => x.id === range) ?? DAY;
  // The window is fixed when the range is chosen, so the query key is stable.
  const [now] = useState(() => Date.now());
  const until = now + 60_000;
  const since = until - r.ms;
  const stats = useQuery({
    queryKey: prompt ? ['prompt', prompt, 'stats', range, groupBy] : ['stats', range, groupBy],
    queryFn: () =>
      unwrap(
        api.GET('/api/v1/stats', {
          params: {
            query: {
              prompt: prompt ?? undefined,
              since: new Date(since).toISOString(),
              until: new Date(until).toISOString(),
              bucket: r.bucket,
              group_by: groupBy || undefined,
            },
          },
        }),
      ),
  });
  const rows = useMemo(() => (stats.data?.groups ?? []) as StatsRow[], [stats.data]);
  const total = rows.reduce((n, x) => n + x.count, 0);
  return (
    <section aria-label="Dashboard">
      <div className="row">
        <label className="inline">
          <span>Range</span>
          <select value={range} onChange={(e) => setRange(e.target.value)}>
            {RANGES.map((x) => (
              <option key={x.id} value={x.id}>
                {x.label}
              </option>
            ))}
          </select>
        </label>
        <label className="inline">
          <span>Split by</span>
          <select value={groupBy} onChange={(e) => setGroupBy(e.target.value as typeof groupBy)}>
            <option value="">nothing</option>
            <option value="version">version</option>
            <option value="label">label</option>
            <option value="model">model</option>
          </select>
        </label>
        <span className="hint" data-testid="dashboard-total">
          {total} runs in range
        </span>
      </div>
      <ErrorBox error={stats.error} />
      {stats.isPending ? (
        <Loading what="Loading statistics" />
      ) : (
        <div className="charts">
          <Chart title="Requests" rows={rows} since={since} until={until} bucket={r.bucket} field={(x) => x.count} zero kind="area" />
          <Chart title="Error rate (%)" rows={rows} since={since} until={until} bucket={r.bucket} field={(x) => (x.count ? x.error_rate * 100 : null)} kind="line" />
          <LatencyChart rows={rows} since={since} until={until} bucket={r.bucket} grouped={groupBy !== ''} />
          <Chart title="Tokens (in + out)" rows={rows} since={since} until={until} bucket={r.bucket} field={(x) => x.input_tokens + x.output_tokens} zero kind="bar" />
          <Chart title="Cost (USD)" rows={rows} since={since} until={until} bucket={r.bucket} field={(x) => Number(x.cost_usd)} zero kind="area" />
        </div>
      )}
    </section>
  );
}

const tick = (bucket: Bucket) => (t: number) => {
  const d = new Date(t);
  return bucket === 'day' ? d.toLocaleDateString() : d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
};

function Chart({
  title,
  rows,
  since,
  until,
  bucket,
  field,
  zero = false,
  kind,
}: {
  title: string;
  rows: StatsRow[];
  since: number;
  until: number;
  bucket: Bucket;
  field: (r: StatsRow) => number | null | undefined;
  zero?: boolean;
  kind: 'area' | 'line' | 'bar';
}) {
  const { points, groups } = useMemo(() => series(rows, field, since, until, bucket, zero), [rows, field, since, until, bucket, zero]);
  const common = { data: points, margin: { top: 8, right: 8, bottom: 0, left: 0 } };
  const axes = (
    <>
      <CartesianGrid strokeDasharray="3 3" />
      <XAxis dataKey="t" type="number" domain={['dataMin', 'dataMax']} scale="time" tickFormatter={tick(bucket)} />
      <YAxis width={48} />
      <Tooltip labelFormatter={(t) => new Date(Number(t)).toLocaleString()} />
      {groups.length > 1 && <Legend />}
    </>
  );
  return (
    <figure className="card chart-card" aria-label={title} data-testid={`chart-${title}`}>
      <figcaption>
        <h3>{title}</h3>
      </figcaption>
      <div className="chart">
        <ResponsiveContainer width="100%" height="100%">
          {kind === 'bar' ? (
            <BarChart {...common}>
              {axes}
              {groups.map((g, i) => (
                <Bar key={g} dataKey={g} stackId="a" fill={COLORS[i % COLORS.length]} isAnimationActive={false} />
              ))}
            </BarChart>
          ) : kind === 'area' ? (
            <AreaChart {...common}>
              {axes}
              {groups.map((g, i) => (
                <Area key={g} dataKey={g} stackId="a" stroke={COLORS[i % COLORS.length]} fill={COLORS[i % COLORS.length]} isAnimationActive={false} />
              ))}
            </AreaChart>
          ) : (
            <LineChart {...common}>
              {axes}
              {groups.map((g, i) => (
                <Line key={g} dataKey={g} stroke={COLORS[i % COLORS.length]} dot={{ r: 2 }} connectNulls isAnimationActive={false} />
              ))}
            </LineChart>
          )}
        </ResponsiveContainer>
      </div>
    </figure>
  );
}

/** p50 / p95 / p99 as three lines; when split, the p95 of each group. */
function LatencyChart({ rows, since, until, bucket, grouped }: { rows: StatsRow[]; since: number; until: number; bucket: Bucket; grouped: boolean }) {
  const data = useMemo(() => {
    if (grouped) return null;
    const pick = (f: (r: StatsRow) => number | null | undefined) => series(rows, f, since, until, bucket, false).points;
    const p50 = pick((r) => r.latency_p50_ms);
    const p95 = pick((r) => r.latency_p95_ms);
    const p99 = pick((r) => r.latency_p99_ms);
    return p50.map((p, i) => ({ t: p.t, p50: p.all ?? null, p95: p95[i]?.all ?? null, p99: p99[i]?.all ?? null }));
  }, [rows, since, until, bucket, grouped]);
  if (grouped) {
    return <Chart title="Latency p95 (ms)" rows={rows} since={since} until={until} bucket={bucket} field={(r) => r.latency_p95_ms} kind="line" />;
  }
  return (
    <figure className="card chart-card" aria-label="Latency (ms)" data-testid="chart-Latency">
      <figcaption>
        <h3>Latency p50 / p95 / p99 (ms)</h3>
      </figcaption>
      <div className="chart">
        <ResponsiveContainer width="100%" height="100%">
          <LineChart data={data ?? []} margin={{ top: 8, right: 8, bottom: 0, left: 0 }}>
            <CartesianGrid strokeDasharray="3 3" />
            <XAxis dataKey="t" type="number" domain={['dataMin', 'dataMax']} scale="time" tickFormatter={tick(bucket)} />
            <YAxis width={48} />
            <Tooltip labelFormatter={(t) => new Date(Number(t)).toLocaleString()} />
            <Legend />
            {(['p50', 'p95', 'p99'] as const).map((k, i) => (
              <Line key={k} dataKey={k} stroke={COLORS[i]} dot={{ r: 2 }} connectNulls isAnimationActive={false} />
            ))}
          </LineChart>
        </ResponsiveContainer>
      </div>
    </figure>
  );
}
