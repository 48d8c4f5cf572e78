"""operando.pipelines."""
