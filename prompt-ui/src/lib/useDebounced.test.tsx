import { act, renderHook } from '@testing-library/react';
import { useDebounced } from './useDebounced';

test('settles after the delay even when the value is rebuilt on every render', () => {
  vi.useFakeTimers();
  const { result, rerender } = renderHook(({ v }) => useDebounced(v, 300), { initialProps: { v: { a: '1' } } });
  rerender({ v: { a: '2' } });
  act(() => vi.advanceTimersByTime(200));
  rerender({ v: { a: '2' } }); // same content, new object: the wait goes on
  act(() => vi.advanceTimersByTime(150));
  expect(result.current).toEqual({ a: '2' });
  vi.useRealTimers();
});
