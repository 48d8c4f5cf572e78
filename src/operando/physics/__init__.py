"""operando.physics."""
