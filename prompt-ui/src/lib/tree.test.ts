import { folderTree } from './tree';

test('names with slashes make nested folders with counts', () => {
  const t = folderTree(['support/triage', 'support/en/reply', 'greeting', 'sales/pitch']);
  expect(t.count).toBe(4);
  expect(t.folders.map((f) => f.name)).toEqual(['sales', 'support']);
  const support = t.folders[1];
  expect(support?.path).toBe('support/');
  expect(support?.count).toBe(2);
  expect(support?.folders[0]?.path).toBe('support/en/');
});
