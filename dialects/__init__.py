"""xDSL dialect definitions: relax (graph), tir (tensor programs), lib (library calls)."""
