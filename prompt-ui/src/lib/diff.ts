// What changed between two versions, computed with the `diff` library (jsdiff): line
// hunks with word-level changes inside for texts, per message for chat templates, and
// the config as canonical JSON text. This module only arranges jsdiff's output into rows.
import { diffArrays, diffLines, diffWordsWithSpace, type Change } from 'diff';

/** One side's words of a changed line pair. */
export type Words = Change[];

/** A row of a side-by-side diff: left and right text (null = no line on that side). */
export interface Row {
  kind: 'same' | 'changed' | 'added' | 'removed';
  left: string | null;
  right: string | null;
  /** For a changed pair: the word-level changes (removed marks left, added marks right). */
  words?: Words;
}

const lines = (value: string) => {
  const ls = value.split('\n');
  if (ls.length > 1 && ls[ls.length - 1] === '') ls.pop();
  return ls;
};

/** Side-by-side rows of a line diff; removed and added runs are paired line by line. */
export function sideBySide(a: string, b: string): Row[] {
  const rows: Row[] = [];
  const parts = diffLines(a, b);
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i];
    if (!p) continue;
    if (!p.added && !p.removed) {
      for (const l of lines(p.value)) rows.push({ kind: 'same', left: l, right: l });
      continue;
    }
    const next = parts[i + 1];
    if (p.removed && next?.added) {
      const del = lines(p.value);
      const add = lines(next.value);
      const n = Math.max(del.length, add.length);
      for (let j = 0; j < n; j++) {
        const l = del[j];
        const r = add[j];
        if (l !== undefined && r !== undefined) {
          rows.push({ kind: 'changed', left: l, right: r, words: diffWordsWithSpace(l, r) });
        } else if (l !== undefined) rows.push({ kind: 'removed', left: l, right: null });
        else if (r !== undefined) rows.push({ kind: 'added', left: null, right: r });
      }
      i++;
      continue;
    }
    for (const l of lines(p.value)) {
      rows.push(p.added ? { kind: 'added', left: null, right: l } : { kind: 'removed', left: l, right: null });
    }
  }
  return rows;
}

/** Inline word-level changes of two texts. */
export function inline(a: string, b: string): Words {
  return diffWordsWithSpace(a, b);
}

/** A chat message, as templates hold them. */
export interface Message {
  role: string;
  content: string;
}

/** One message's fate between two chat templates. */
export interface MessageChange {
  kind: 'same' | 'changed' | 'added' | 'removed';
  before: Message | null;
  after: Message | null;
}

/**
 * Messages matched in order: jsdiff's array diff on (role, content) finds the unchanged
 * ones; a removed message followed by an added one at the same place is a change.
 */
export function messages(a: Message[], b: Message[]): MessageChange[] {
  const key = (m: Message) => `${m.role}\u0000${m.content}`;
  const parts = diffArrays(a.map(key), b.map(key));
  const out: MessageChange[] = [];
  let ia = 0;
  let ib = 0;
  const takeA = () => a[ia++] ?? null;
  const takeB = () => b[ib++] ?? null;
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i];
    if (!p) continue;
    const n = p.value.length;
    if (!p.added && !p.removed) {
      for (let k = 0; k < n; k++) out.push({ kind: 'same', before: takeA(), after: takeB() });
      continue;
    }
    const next = parts[i + 1];
    if (p.removed && next?.added) {
      const m = next.value.length;
      for (let k = 0; k < Math.max(n, m); k++) {
        const before = k < n ? takeA() : null;
        const after = k < m ? takeB() : null;
        out.push({ kind: before && after ? 'changed' : before ? 'removed' : 'added', before, after });
      }
      i++;
      continue;
    }
    for (let k = 0; k < n; k++) {
      if (p.added) out.push({ kind: 'added', before: null, after: takeB() });
      else out.push({ kind: 'removed', before: takeA(), after: null });
    }
  }
  return out;
}

/** JSON with sorted keys and two-space indent, so equal configs read equal. */
export function canonicalJson(v: unknown): string {
  const sort = (x: unknown): unknown =>
    Array.isArray(x)
      ? x.map(sort)
      : x && typeof x === 'object'
        ? Object.fromEntries(
            Object.keys(x as object)
              .sort()
              .map((k) => [k, sort((x as Record<string, unknown>)[k])]),
          )
        : x;
  return JSON.stringify(sort(v ?? {}), null, 2);
}

/** Variables only in `b` (added) and only in `a` (removed). */
export function variableChanges(a: string[], b: string[]) {
  return { added: b.filter((v) => !a.includes(v)), removed: a.filter((v) => !b.includes(v)) };
}
