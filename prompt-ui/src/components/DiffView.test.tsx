import { render, screen } from '@testing-library/react';
import { TextDiff } from './DiffView';

test('side by side: the changed words are marked on each side', () => {
  const { container } = render(<TextDiff a={'Be brief.\nSay hi.'} b={'Be very brief.\nSay hi.'} mode="split" label="Template" />);
  expect(screen.getByRole('table', { name: 'Template' })).toBeInTheDocument();
  expect(container.querySelector('ins')?.textContent).toContain('very');
  expect(container.querySelectorAll('tbody tr')).toHaveLength(2);
});

test('inline: insertions and deletions in one text', () => {
  const { container } = render(<TextDiff a="the quick fox" b="the slow fox" mode="inline" label="Template" />);
  expect(container.querySelector('del')?.textContent).toBe('quick');
  expect(container.querySelector('ins')?.textContent).toBe('slow');
});

test('equal texts say so', () => {
  render(<TextDiff a="x" b="x" mode="split" label="Config" />);
  expect(screen.getByText('Config: no change.')).toBeInTheDocument();
});
