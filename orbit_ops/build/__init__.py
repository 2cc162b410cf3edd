"""The build pipeline: a release tag's worktree, its packed context, and the build operation."""
