"""Multi-factor authentication: TOTP, recovery codes, sign-in challenges and trusted devices."""
