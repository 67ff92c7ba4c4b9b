// Rendering of the server's diff (`GET /api/v1/prompts/{name}/diff`, computed once, in
// prompt-core, with the `similar` crate): hunks of lines side by side, changed lines with
// their word-level segments marked on each side, or the same hunks inline.
import type { components } from '../api/schema';

export type Hunk = components['schemas']['Hunk'];
type Segment = components['schemas']['Segment'];

function Segments({ segments, side }: { segments: Segment[]; side: 'old' | 'new' | 'both' }) {
  return (
    <>
      {segments.map((s, i) =>
        s.op === 'equal' ? (
          <span key={i}>{s.text}</span>
        ) : s.op === 'insert' ? (
          side !== 'old' ? <ins key={i}>{s.text}</ins> : null
        ) : side !== 'new' ? (
          <del key={i}>{s.text}</del>
        ) : null,
      )}
    </>
  );
}

const header = (h: Hunk) => `@@ −${h.old_start},${h.old_lines} +${h.new_start},${h.new_lines} @@`;

/** Hunks side by side (`split`) or inline. */
export function HunksView({ hunks, mode, label }: { hunks: Hunk[]; mode: 'split' | 'inline'; label: string }) {
  if (hunks.length === 0) return <p className="hint">{label}: no change.</p>;
  if (mode === 'inline') {
    return (
      <div className="diff" aria-label={label} data-testid="diff-inline">
        {hunks.map((h, i) => (
          <div key={i}>
            <div className="msghead">{header(h)}</div>
            {h.lines.map((l, j) =>
              l.op === 'equal' ? (
                <span key={j} className="line">
                  {l.text}
                </span>
              ) : l.op === 'delete' ? (
                <span key={j} className="line del">
                  <del>{l.text}</del>
                </span>
              ) : l.op === 'insert' ? (
                <span key={j} className="line add">
                  <ins>{l.text}</ins>
                </span>
              ) : (
                <span key={j} className="line">
                  <Segments segments={l.segments} side="both" />
                </span>
              ),
            )}
          </div>
        ))}
      </div>
    );
  }
  return (
    <div className="diff" data-testid="diff-split">
      <table aria-label={label}>
        <thead>
          <tr>
            <th scope="col">Before</th>
            <th scope="col">After</th>
          </tr>
        </thead>
        {hunks.map((h, i) => (
          <tbody key={i}>
            <tr>
              <td colSpan={2} className="msghead">
                {header(h)}
              </td>
            </tr>
            {h.lines.map((l, j) => (
              <tr key={j}>
                {l.op === 'equal' ? (
                  <>
                    <td>{l.text}</td>
                    <td>{l.text}</td>
                  </>
                ) : l.op === 'delete' ? (
                  <>
                    <td className="del">{l.text}</td>
                    <td />
                  </>
                ) : l.op === 'insert' ? (
                  <>
                    <td />
                    <td className="add">{l.text}</td>
                  </>
                ) : (
                  <>
                    <td className="del">
                      <Segments segments={l.segments} side="old" />
                    </td>
                    <td className="add">
                      <Segments segments={l.segments} side="new" />
                    </td>
                  </>
                )}
              </tr>
            ))}
          </tbody>
        ))}
      </table>
    </div>
  );
}

/** An RFC 6902 JSON Patch (the config's changes) as a table. */
export function PatchView({ patch }: { patch: Record<string, unknown>[] }) {
  if (patch.length === 0) return <p className="hint">Config: no change.</p>;
  return (
    <table aria-label="Config changes (JSON Patch)" data-testid="config-patch">
      <thead>
        <tr>
          <th scope="col">Operation</th>
          <th scope="col">Path</th>
          <th scope="col">Value</th>
        </tr>
      </thead>
      <tbody>
        {patch.map((op, i) => (
          <tr key={i}>
            <td>{String(op.op)}</td>
            <td>
              <code>{String(op.path)}</code>
            </td>
            <td>
              <code>{'value' in op ? JSON.stringify(op.value) : op.from !== undefined ? `from ${String(op.from)}` : '—'}</code>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
