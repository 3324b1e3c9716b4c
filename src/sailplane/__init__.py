"""Sailplane: a self-hostable control plane for Sail."""
