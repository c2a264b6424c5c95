"""Map layers: one module per layer, each a pure rows -> GeoJSON/props transform."""
