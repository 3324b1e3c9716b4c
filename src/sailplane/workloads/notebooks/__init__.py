"""Notebooks: marimo notebooks on Sail, owned by a member and shared with teams."""
