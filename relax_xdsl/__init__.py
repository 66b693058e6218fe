"""relax_xdsl: a Relax-style ML compiler with symbolic shapes, on xDSL."""
