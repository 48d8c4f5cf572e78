"""operando.enhance."""
