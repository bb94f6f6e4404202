"""The HTTP contract (docs/http-api.md): response shapes and the one error-to-problem mapping."""
