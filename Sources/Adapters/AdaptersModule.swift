/// LoRA adapters (PEFT vocabulary), their initialisations, merging and extraction.
public enum AdaptersModule {
    /// Initialisation methods `initAdapter` runs; `initialize` reports this list.
    public static let initMethods: [String] = AdapterInitMethod.allCases.map(\.rawValue)
}
