"""The workspace's files: orbit.yaml, solution files, their secrets and the pins Orbit edits."""
