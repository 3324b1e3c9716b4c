"""Workload configs, compute instances and interactive Spark Connect sessions."""
