import { Link } from 'react-router';
import { useTitle } from '../components/ui';

export default function NotFound() {
  useTitle('Not found');
  return (
    <>
      <h1>Nothing here</h1>
      <p>
        This page does not exist. <Link to="/prompts">Back to the prompts</Link>
      </p>
    </>
  );
}
