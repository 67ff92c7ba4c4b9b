import { useInfiniteQuery } from '@tanstack/react-query';
import { api, unwrap } from '../../api/client';
import { ErrorBox, Loading, when } from '../../components/ui';
import { useProject } from '../../lib/hooks';
import { orgOf, Settings } from './SettingsNav';

/** The organization's audit log, newest first. */
export default function Audit() {
  const org = orgOf(useProject());
  const log = useInfiniteQuery({
    queryKey: ['audit', org],
    initialPageParam: undefined as string | undefined,
    queryFn: ({ pageParam }) =>
      unwrap(api.GET('/api/v1/orgs/{org}/audit', { params: { path: { org }, query: { limit: 100, cursor: pageParam } } })),
    getNextPageParam: (last) => last.next_cursor ?? undefined,
  });
  const items = log.data?.pages.flatMap((p) => p.items) ?? [];
  return (
    <Settings title={`Audit log of ${org}`}>
      <ErrorBox error={log.error} />
      {log.isPending ? (
        <Loading />
      ) : (
        <table>
          <thead>
            <tr>
              <th scope="col">When</th>
              <th scope="col">Who</th>
              <th scope="col">Action</th>
              <th scope="col">From</th>
              <th scope="col">Details</th>
            </tr>
          </thead>
          <tbody>
            {items.map((a) => (
              <tr key={a.id}>
                <td>{when(a.at)}</td>
                <td>{a.actor}</td>
                <td>
                  <code>{a.action}</code>
                </td>
                <td>{a.ip ?? '—'}</td>
                <td>
                  <code>{JSON.stringify(a.data)}</code>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {log.hasNextPage && (
        <button type="button" onClick={() => log.fetchNextPage()}>
          Older entries
        </button>
      )}
    </Settings>
  );
}
