/** Teams to share a resource with, as checkboxes (keyboard-usable), with the API's `teamIds` error beside them. */
import type { ReactNode } from "react";
import type { components } from "./api/schema";

type TeamItem = components["schemas"]["TeamItem"];

export function TeamPicker({ teams, selected, onChange, error }: {
  teams: TeamItem[]; selected: string[]; onChange: (ids: string[]) => void; error: ReactNode;
}) {
  const toggle = (id: string, on: boolean) =>
    onChange(on ? [...selected, id] : selected.filter((x) => x !== id));
  return (
    <fieldset aria-describedby={error ? "teamIds-error" : undefined}>
      <legend>Shared with teams</legend>
      {teams.map(({ team }) => (
        <label key={team.id}><input type="checkbox" name="teamIds" value={team.id} checked={selected.includes(team.id)}
          onChange={(e) => toggle(team.id, e.target.checked)} /> {team.name}</label>
      ))}
      {error}
    </fieldset>
  );
}
