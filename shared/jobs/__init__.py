"""Job types: Python code registered by name. Adding a type is one module here."""
