"""Long-running infrastructure operations: rows with a lease, driven step by step by the server's runner."""
