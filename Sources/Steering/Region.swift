/// A place traffic can go: a data centre or cloud region, with coordinates for distance ordering.
public struct Region: Sendable, Equatable {
    public var name: String
    public var latitude: Double?
    public var longitude: Double?
    /// Geoproximity bias, −99…99 (Route 53's): positive draws clients from farther away.
    public var bias: Double = 0

    public init(name: String, latitude: Double? = nil, longitude: Double? = nil, bias: Double = 0) {
        self.name = name
        self.latitude = latitude
        self.longitude = longitude
        self.bias = bias
    }
}
