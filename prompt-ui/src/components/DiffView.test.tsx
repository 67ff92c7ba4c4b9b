import { render, screen } from '@testing-library/react';
import { HunksView, PatchView, type Hunk } from './DiffView';

// As the server answers `GET …/diff` for "Be brief.\nSay hi." → "Be very brief.\nSay hi.\nBye."
const hunks: Hunk[] = [
  {
    old_start: 1,
    old_lines: 2,
    new_start: 1,
    new_lines: 3,
    lines: [
      {
        op: 'change',
        old_line: 1,
        new_line: 1,
        old_text: 'Be brief.',
        new_text: 'Be very brief.',
        segments: [
          { op: 'equal', text: 'Be ' },
          { op: 'insert', text: 'very ' },
          { op: 'equal', text: 'brief.' },
        ],
      },
      { op: 'equal', old_line: 2, new_line: 2, text: 'Say hi.' },
      { op: 'insert', new_line: 3, text: 'Bye.' },
    ],
  },
];

test('side by side: words marked on their side, added lines only on the right', () => {
  const { container } = render(<HunksView hunks={hunks} mode="split" label="Template" />);
  expect(screen.getByRole('table', { name: 'Template' })).toBeInTheDocument();
  expect(container.querySelector('ins')?.textContent).toBe('very ');
  const rows = container.querySelectorAll('tbody tr');
  expect(rows).toHaveLength(4); // the hunk header and three lines
  expect(rows[3]?.querySelectorAll('td')[0]?.textContent).toBe('');
  expect(rows[3]?.querySelectorAll('td')[1]?.textContent).toBe('Bye.');
  expect(screen.getByText('@@ −1,2 +1,3 @@')).toBeInTheDocument();
});

test('inline: one column, insertions and deletions in place', () => {
  const { container } = render(<HunksView hunks={hunks} mode="inline" label="Template" />);
  expect([...container.querySelectorAll('ins')].map((e) => e.textContent)).toEqual(['very ', 'Bye.']);
});

test('no hunks: no change', () => {
  render(<HunksView hunks={[]} mode="split" label="Template" />);
  expect(screen.getByText('Template: no change.')).toBeInTheDocument();
});

test('the config patch as a table', () => {
  render(<PatchView patch={[{ op: 'replace', path: '/model', value: 'gpt-4.1' }, { op: 'remove', path: '/temperature' }]} />);
  expect(screen.getByRole('table', { name: 'Config changes (JSON Patch)' })).toHaveTextContent('replace/model"gpt-4.1"');
});
