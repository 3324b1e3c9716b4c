"""Single sign-on: the identity provider type catalog and an organization's OIDC identity providers."""
