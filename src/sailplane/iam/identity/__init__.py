"""Email-based identity flows: one-time sign-in codes, email verification, extra addresses, password reset."""
