import { Link } from "react-router";

export default function NotFound() {
  return (
    <section>
      <h1>Page not found</h1>
      <p className="empty">There is no page here. Go to <Link to="/teams">your teams</Link>.</p>
    </section>
  );
}
