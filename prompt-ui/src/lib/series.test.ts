import { series, type StatsRow } from './series';

const row = (bucket: string, group: string | null, count: number): StatsRow => ({
  bucket,
  group,
  count,
  failed: 0,
  error_rate: 0,
  input_tokens: 0,
  output_tokens: 0,
  cost_usd: '0',
});

test('one point per bucket, gaps filled, one key per group', () => {
  const since = Date.parse('2026-12-01T10:00:00Z');
  const until = Date.parse('2026-12-01T13:00:00Z');
  const rows = [row('2026-12-01T10:00:00Z', '1', 3), row('2026-12-01T12:00:00Z', '2', 5)];
  const { points, groups } = series(rows, (r) => r.count, since, until, 'hour', true);
  expect(groups).toEqual(['1', '2']);
  expect(points.map((p) => [p['1'], p['2']])).toEqual([
    [3, 0],
    [0, 0],
    [0, 5],
  ]);
});

test('measured figures stay null where there were no runs', () => {
  const since = Date.parse('2026-12-01T10:00:00Z');
  const { points } = series([], (r) => r.latency_p50_ms, since, since + 120_000, 'minute', false);
  expect(points).toHaveLength(2);
  expect(points[0]?.all).toBeUndefined();
});
