"""A small framework on hal's public API: an MLP trained on any device (``hal demo``), and
micro-benchmarks with rooflines (``hal bench``). README.md explains operator placement."""
