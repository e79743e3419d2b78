/// This build's release, as `runwarden --version` prints it and a runner reports it to the
/// registry (SPEC §8).
public enum Release {
    public static let version = "0.16.0"
}
