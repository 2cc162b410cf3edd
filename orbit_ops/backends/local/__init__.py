"""The local backend: an OCI image layout as registry, a Dockerfile reader and builder, and a SQLite platform."""
