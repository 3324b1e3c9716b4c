"""Notifications: event types, channels, rules and the deliveries outbox with its sender; email (mailer)."""
