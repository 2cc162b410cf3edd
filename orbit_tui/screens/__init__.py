"""The console screens: one module a screen, modals together in ``modals``."""
