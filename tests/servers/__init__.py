"""Real and deliberately broken servers on 127.0.0.1 for contract tests."""
