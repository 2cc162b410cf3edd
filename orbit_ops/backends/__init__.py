"""Backends behind small capability Protocols (``base``): ``local`` (embedded) and ``azure``."""
