/// TLS to etcd: the CA that signs its certificate, and the client certificate and key it asks for.
package struct TLSSettings: Sendable, Equatable {
    package var caFile: String?
    package var certFile: String?
    package var keyFile: String?

    package init(caFile: String? = nil, certFile: String? = nil, keyFile: String? = nil) {
        self.caFile = caFile
        self.certFile = certFile
        self.keyFile = keyFile
    }
}
