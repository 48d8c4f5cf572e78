"""operando.modalities."""
