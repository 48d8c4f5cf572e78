"""operando.cli."""
