/** Light/dark theme: the system's preference (prefers-color-scheme) unless the person picked one, which this
 * browser remembers (localStorage). Applied as `data-theme` on <html> before the first render. */
import { useState } from "react";

export type Theme = "system" | "light" | "dark";
const KEY = "sailplane.theme";
const NEXT: Record<Theme, Theme> = { system: "light", light: "dark", dark: "system" };
const LABEL: Record<Theme, string> = { system: "System", light: "Light", dark: "Dark" };

export function loadTheme(): Theme {
  try {
    const saved = localStorage.getItem(KEY);
    return saved === "light" || saved === "dark" ? saved : "system";
  } catch {
    return "system";
  }
}

export function applyTheme(theme: Theme): void {
  if (theme === "system") document.documentElement.removeAttribute("data-theme");
  else document.documentElement.setAttribute("data-theme", theme);
}

/** A button that cycles System → Light → Dark and remembers the choice. */
export function ThemeToggle() {
  const [theme, setTheme] = useState<Theme>(loadTheme);
  const change = () => {
    const next = NEXT[theme];
    try {
      if (next === "system") localStorage.removeItem(KEY);
      else localStorage.setItem(KEY, next);
    } catch {
      // storage refused (private mode): the choice lasts for this page only
    }
    applyTheme(next);
    setTheme(next);
  };
  return (
    <button type="button" className="link" onClick={change} title="Colour theme: system, light or dark"
      aria-label={`Theme: ${LABEL[theme]} (change)`}>
      Theme: {LABEL[theme]}
    </button>
  );
}
