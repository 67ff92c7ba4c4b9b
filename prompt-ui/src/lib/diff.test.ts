import { canonicalJson, inline, messages, sideBySide, variableChanges } from './diff';

test('side by side pairs a changed line and marks the changed word', () => {
  const rows = sideBySide('Hello {{ name }}\nBe brief.\n', 'Hello {{ name }}\nBe very brief.\nThanks.\n');
  expect(rows.map((r) => r.kind)).toEqual(['same', 'changed', 'added']);
  const changed = rows[1];
  expect(changed?.words?.filter((w) => w.added).map((w) => w.value.trim())).toContain('very');
  expect(rows[2]?.right).toBe('Thanks.');
});

test('inline marks words, not whole lines', () => {
  const w = inline('the quick fox', 'the slow fox');
  expect(w.find((c) => c.removed)?.value).toBe('quick');
  expect(w.find((c) => c.added)?.value).toBe('slow');
});

test('chat messages: changed, added and removed, role included', () => {
  const a = [
    { role: 'system', content: 'You help.' },
    { role: 'user', content: '{{ q }}' },
  ];
  const b = [
    { role: 'developer', content: 'You help.' },
    { role: 'user', content: '{{ q }}' },
    { role: 'assistant', content: 'ok' },
  ];
  expect(messages(a, b).map((m) => m.kind)).toEqual(['changed', 'same', 'added']);
  expect(messages(b, a).map((m) => m.kind)).toEqual(['changed', 'same', 'removed']);
});

test('config diff is of canonical JSON: key order does not matter', () => {
  expect(canonicalJson({ b: 1, a: { d: 2, c: 3 } })).toBe(canonicalJson({ a: { c: 3, d: 2 }, b: 1 }));
});

test('variables added and removed', () => {
  expect(variableChanges(['a', 'b'], ['b', 'c'])).toEqual({ added: ['c'], removed: ['a'] });
});
