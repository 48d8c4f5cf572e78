"""operando.inverse."""
