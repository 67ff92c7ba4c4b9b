// Stats rows (one per bucket and group, empty buckets omitted by the server) turned
// into chart series: one point per bucket from `since` to `until`, gaps filled.

export type Bucket = 'minute' | 'hour' | 'day';
export const BUCKET_MS: Record<Bucket, number> = { minute: 60_000, hour: 3_600_000, day: 86_400_000 };

/** The figures of one stats row the charts use. */
export interface StatsRow {
  bucket?: string | null;
  group?: string | null;
  count: number;
  failed: number;
  error_rate: number;
  latency_p50_ms?: number | null;
  latency_p95_ms?: number | null;
  latency_p99_ms?: number | null;
  input_tokens: number;
  output_tokens: number;
  cost_usd: string;
}

export type Point = Record<string, number | null> & { t: number };

/** The start of the bucket holding `t` (UTC). */
export function bucketStart(t: number, bucket: Bucket): number {
  return Math.floor(t / BUCKET_MS[bucket]) * BUCKET_MS[bucket];
}

/**
 * One point per bucket in [since, until); each group's `field` under its name (`all`
 * without grouping). Counting fields are 0 in empty buckets, measured ones null.
 */
export function series(
  rows: StatsRow[],
  field: (r: StatsRow) => number | null | undefined,
  since: number,
  until: number,
  bucket: Bucket,
  zeroWhenEmpty: boolean,
): { points: Point[]; groups: string[] } {
  const groups = [...new Set(rows.map((r) => r.group ?? 'all'))].sort();
  const byT = new Map<number, Point>();
  for (let t = bucketStart(since, bucket); t < until; t += BUCKET_MS[bucket]) {
    const p: Point = { t };
    for (const g of groups) p[g] = zeroWhenEmpty ? 0 : null;
    byT.set(t, p);
  }
  for (const r of rows) {
    if (!r.bucket) continue;
    const t = Date.parse(r.bucket);
    const p = byT.get(t);
    if (p) p[r.group ?? 'all'] = field(r) ?? null;
  }
  return { points: [...byT.values()], groups };
}
