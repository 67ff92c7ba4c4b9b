import { useEffect, useState } from 'react';

/**
 * `value`, once it has stopped changing for `ms`. Values are compared by their JSON, so
 * an object rebuilt with the same content on every render does not restart the wait.
 */
export function useDebounced<T>(value: T, ms: number): T {
  const json = JSON.stringify(value);
  const [v, setV] = useState(json);
  useEffect(() => {
    const t = setTimeout(() => setV(json), ms);
    return () => clearTimeout(t);
  }, [json, ms]);
  return JSON.parse(v) as T;
}
