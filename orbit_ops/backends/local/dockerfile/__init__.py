"""The local builder's Dockerfile reader: read (parse), evaluate (image settings), expand (words)."""
