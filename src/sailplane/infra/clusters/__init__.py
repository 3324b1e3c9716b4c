"""Clusters users can run workloads on: the built-in `local` cluster (and, later, provisioned ones)."""
