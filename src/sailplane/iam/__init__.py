"""Identity and access: who you are (password, one-time code, SSO, MFA) and what you may do (authz)."""
