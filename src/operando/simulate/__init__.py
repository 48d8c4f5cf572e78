"""operando.simulate."""
