"""operando.io."""
