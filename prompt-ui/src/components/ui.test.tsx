import { render, screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { useState } from 'react';
import { ApiError } from '../api/client';
import { ConfirmButton, ErrorBox, Tabs } from './ui';

test('a conflict is explained, not shown as a bare status', () => {
  render(<ErrorBox error={new ApiError(409, 'conflict', 'the latest version is 4, not 3')} />);
  const alert = screen.getByRole('alert');
  expect(alert).toHaveTextContent('Conflict: the latest version is 4, not 3');
  expect(alert).toHaveTextContent('reload');
});

test('a field error names the field', () => {
  render(<ErrorBox error={new ApiError(422, 'invalid_input', 'must not be empty', { field: 'name' })} />);
  expect(screen.getByRole('alert')).toHaveTextContent('name: must not be empty');
});

test('tabs move with the arrow keys and keep one tab stop', async () => {
  function Host() {
    const [t, setT] = useState<'a' | 'b' | 'c'>('a');
    return (
      <Tabs
        label="Sections"
        current={t}
        onChange={setT}
        tabs={[
          { id: 'a', label: 'A' },
          { id: 'b', label: 'B' },
          { id: 'c', label: 'C' },
        ]}
      />
    );
  }
  render(<Host />);
  const user = userEvent.setup();
  const a = screen.getByRole('tab', { name: 'A' });
  expect(a).toHaveAttribute('aria-selected', 'true');
  expect(screen.getByRole('tab', { name: 'B' })).toHaveAttribute('tabindex', '-1');
  a.focus();
  await user.keyboard('{ArrowLeft}');
  expect(screen.getByRole('tab', { name: 'C' })).toHaveAttribute('aria-selected', 'true');
  expect(screen.getByRole('tab', { name: 'C' })).toHaveFocus();
});

test('a confirmation runs the action only when confirmed, and shows its error', async () => {
  // jsdom has no <dialog> methods.
  HTMLDialogElement.prototype.showModal = function () {
    this.setAttribute('open', '');
  };
  HTMLDialogElement.prototype.close = function () {
    this.removeAttribute('open');
  };
  const action = vi.fn().mockRejectedValueOnce(new ApiError(412, 'precondition_failed', 'production moved to v5 meanwhile'));
  render(
    <ConfirmButton label="Move" title="Move production?" onConfirm={action}>
      <p>Callers get v4.</p>
    </ConfirmButton>,
  );
  const user = userEvent.setup();
  await user.click(screen.getByRole('button', { name: 'Move' }));
  await user.click(screen.getByRole('button', { name: 'Cancel' }));
  expect(action).not.toHaveBeenCalled();
  await user.click(screen.getByRole('button', { name: 'Move' }));
  await user.click(screen.getByRole('button', { name: 'Confirm' }));
  expect(action).toHaveBeenCalledTimes(1);
  expect(await screen.findByRole('alert')).toHaveTextContent('Conflict: production moved to v5 meanwhile');
});

test('dates follow the language preference on <html lang>', async () => {
  const { when } = await import('./ui');
  document.documentElement.lang = 'de-DE';
  const de = when('2026-12-06T21:00:00Z');
  document.documentElement.lang = 'en-US';
  const en = when('2026-12-06T21:00:00Z');
  expect(de).not.toBe(en);
  expect(de).toContain('6.12.2026');
  document.documentElement.lang = 'not a tag!';
  expect(when('2026-12-06T21:00:00Z')).toBeTruthy();
  document.documentElement.lang = '';
});
