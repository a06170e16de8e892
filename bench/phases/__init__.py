"""The benchmark's phases, one module each; bench/__main__.py registers them."""
