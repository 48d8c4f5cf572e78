"""operando.denoise."""
