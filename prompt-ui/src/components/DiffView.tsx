// Rendering of a diff (computed by src/lib/diff.ts with jsdiff): side by side with word
// marks inside changed lines, or inline.
import type { Row, Words } from '../lib/diff';
import { inline, sideBySide } from '../lib/diff';

function WordSpans({ words, side }: { words: Words; side: 'left' | 'right' }) {
  return (
    <>
      {words.map((w, i) =>
        w.added ? (
          side === 'right' ? <ins key={i}>{w.value}</ins> : null
        ) : w.removed ? (
          side === 'left' ? <del key={i}>{w.value}</del> : null
        ) : (
          <span key={i}>{w.value}</span>
        ),
      )}
    </>
  );
}

function Cell({ row, side }: { row: Row; side: 'left' | 'right' }) {
  const text = side === 'left' ? row.left : row.right;
  const cls =
    row.kind === 'same' || text === null
      ? undefined
      : side === 'left'
        ? 'del'
        : 'add';
  return (
    <td className={cls}>
      {text === null ? '' : row.words ? <WordSpans words={row.words} side={side} /> : text}
    </td>
  );
}

/** Two texts compared: `mode` side-by-side or inline. */
export function TextDiff({ a, b, mode, label }: { a: string; b: string; mode: 'split' | 'inline'; label: string }) {
  if (a === b) return <p className="hint">{label}: no change.</p>;
  if (mode === 'inline') {
    return (
      <div className="diff" aria-label={label} data-testid="diff-inline">
        <pre style={{ background: 'none' }}>
          {inline(a, b).map((w, i) =>
            w.added ? <ins key={i}>{w.value}</ins> : w.removed ? <del key={i}>{w.value}</del> : <span key={i}>{w.value}</span>,
          )}
        </pre>
      </div>
    );
  }
  const rows = sideBySide(a, b);
  return (
    <div className="diff" data-testid="diff-split">
      <table aria-label={label}>
        <thead>
          <tr>
            <th scope="col">Before</th>
            <th scope="col">After</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((r, i) => (
            <tr key={i}>
              <Cell row={r} side="left" />
              <Cell row={r} side="right" />
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
