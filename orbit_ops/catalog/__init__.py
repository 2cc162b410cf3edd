"""What has been released: the components' git tags and the release records."""
