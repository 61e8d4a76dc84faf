"""The lowered network (typed nodes and graph), its structural verifier and the shape pass."""
