"""The Azure backend: ACR Tasks builds, Container Apps and Files through ARM, and their shared transport."""
