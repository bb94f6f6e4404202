"""The HTTP contract (DESIGN §5): response shapes and the one error-to-problem mapping."""
