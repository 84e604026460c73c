/// The version `lodestar --version`, CH TXT version.bind, `lodestar_build_info` and the Debian
/// package report.
public enum SoftwareVersion {
    public static let current = "0.2.0"
}
