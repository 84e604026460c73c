enum GeoPlaceholder {}
