"""Emulators the Azure backend tests start on 127.0.0.1: Azurite (blob) and an HTTPS ARM/Files emulator."""
