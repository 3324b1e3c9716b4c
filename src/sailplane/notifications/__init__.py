"""Notifications to people: email today."""
