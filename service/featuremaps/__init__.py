"""Pure-numpy feature-map math: filter norms, deconvnet projections and image grids."""
