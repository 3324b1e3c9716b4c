"""Cloud connections: an organization's AWS account, reached through a cross-account role it deploys."""
