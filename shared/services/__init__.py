"""Use cases of Tether: they take a store (and later gateways) and return domain models."""
