/// The version every tool prints and every report and dataset index records.
public enum MoLAVersion {
    public static let string = "0.1.0"
}
