"""Job types: Python code registered by name (DESIGN §3). Adding a type is one module here."""
