"""operando.pde."""
