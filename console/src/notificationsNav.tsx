/** The notifications pages' own tabs: channels, rules, deliveries (each its own URL). */
import { NavLink } from "react-router";

export function NotificationsNav() {
  return (
    <nav className="tabs" aria-label="Notifications">
      <NavLink to="/notifications" end>Channels</NavLink>
      <NavLink to="/notifications/rules">Rules</NavLink>
      <NavLink to="/notifications/deliveries">Deliveries</NavLink>
    </nav>
  );
}
