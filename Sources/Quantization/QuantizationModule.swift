/// What the Quantization module implements; `initialize` reports it. Each family registers
/// its method here when it lands.
public enum QuantizationModule {
    public static var methods: [String] { Quantizer.implementedMethods.map { $0.rawValue } }
}
