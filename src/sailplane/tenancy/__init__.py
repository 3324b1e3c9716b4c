"""The organization: membership, teams, invitations, policies, service accounts and the audit log."""
