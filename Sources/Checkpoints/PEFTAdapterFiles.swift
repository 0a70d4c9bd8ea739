import JSON
import LoquatSupport
import Tensors

/// A PEFT LoRA adapter directory (formats.md §3): `adapter_config.json` and
/// `adapter_model.safetensors` with keys `base_model.model.<module>.lora_A.weight` `[r, in]`,
/// `….lora_B.weight` `[out, r]` and, for DoRA, `….lora_magnitude_vector` `[out]`.
public enum PEFTAdapterFiles {
    public static let configFileName = "adapter_config.json"
    public static let weightsFileName = "adapter_model.safetensors"
    public static let keyPrefix = "base_model.model."

    /// What a tensor key holds.
    public enum Role: String, Sendable { case loraA = "lora_A", loraB = "lora_B", magnitude = "lora_magnitude_vector" }

    /// The on-disk key of `module`'s tensor.
    public static func key(module: String, role: Role) -> String {
        role == .magnitude ? "\(keyPrefix)\(module).\(role.rawValue)" : "\(keyPrefix)\(module).\(role.rawValue).weight"
    }

    /// The module a whole tensor belongs to (`model.norm.weight` → `model.norm`), as PEFT's
    /// `modules_to_save` names it.
    public static func moduleName(ofTensor name: String) -> String {
        for suffix in [".weight", ".bias"] where name.hasSuffix(suffix) { return String(name.dropLast(suffix.count)) }
        return name
    }

    /// `(module, role)` of a key, accepting keys with or without `base_model.model.` and a stray
    /// `.default` adapter name (written by some non-PEFT trainers); nil for other tensors.
    public static func parse(key: String) -> (module: String, role: Role)? {
        var name = key.hasPrefix(keyPrefix) ? String(key.dropFirst(keyPrefix.count)) : key
        if name.hasSuffix(".weight") { name = String(name.dropLast(".weight".count)) }
        if name.hasSuffix(".default") { name = String(name.dropLast(".default".count)) }
        for role in [Role.loraA, .loraB, .magnitude] where name.hasSuffix("." + role.rawValue) {
            return (String(name.dropLast(role.rawValue.count + 1)), role)
        }
        return nil
    }

    /// Writes the config (keys sorted, two-space indent, as PEFT's `json.dumps(indent=2,
    /// sort_keys=True)`) and the tensors (metadata `{"format": "pt"}`), each atomically.
    /// Returns the paths written.
    public static func write(config: JSONObject, tensors: [Tensor], to directory: String, overwrite: Bool) throws -> [String] {
        let weightsPath = FileSystem.join(directory, weightsFileName)
        try SafetensorsWriter.write(tensors: tensors, metadata: ["format": "pt"], to: weightsPath, overwrite: overwrite)
        let configPath = FileSystem.join(directory, configFileName)
        try AtomicFileWriter.write(Array(PrettyJSON.render(.object(config)).utf8) + [0x0A], to: configPath, overwrite: overwrite)
        return [weightsPath, configPath]
    }

    /// Reads a directory (or the directory of a given `adapter_model.safetensors` /
    /// `adapter_config.json`). `adapter_model.bin` (a pickle) is refused without being opened.
    public static func read(path: String) throws -> (directory: String, config: JSONObject, file: SafetensorsFile) {
        var directory = path
        if FileSystem.kind(of: path) == .file { directory = FileSystem.directoryName(of: path) }
        guard FileSystem.kind(of: directory) == .directory else { throw CheckpointError.notFound(path: path) }
        let configPath = FileSystem.join(directory, configFileName)
        let weightsPath = FileSystem.join(directory, weightsFileName)
        guard FileSystem.kind(of: configPath) == .file else {
            throw CheckpointError.unrecognized(path: directory, reason: "no \(configFileName): not a PEFT adapter directory")
        }
        guard FileSystem.kind(of: weightsPath) == .file else {
            if FileSystem.kind(of: FileSystem.join(directory, "adapter_model.bin")) == .file {
                throw CheckpointError.pickleRefused(path: FileSystem.join(directory, "adapter_model.bin"))
            }
            throw CheckpointError.unrecognized(path: directory, reason: "no \(weightsFileName)")
        }
        let configBytes = try MappedFile(path: configPath).withBytes { Array($0) }
        guard case let .object(config) = try JSON.parse(configBytes) else {
            throw CheckpointError.unrecognized(path: configPath, reason: "adapter_config.json is not a JSON object")
        }
        return (directory, config, try SafetensorsFile(path: weightsPath))
    }
}

/// JSON with two-space indentation and sorted object keys (Python's `json.dumps(indent=2,
/// sort_keys=True)` layout), built on `JSON.serialize` for scalars.
public enum PrettyJSON {
    public static func render(_ value: JSONValue, indent: Int = 0) throws -> String {
        let pad = String(repeating: " ", count: indent + 2), closing = String(repeating: " ", count: indent)
        switch value {
        case let .object(members):
            if members.keys.isEmpty { return "{}" }
            let lines = try members.keys.sorted().map { key in
                "\(pad)\(try JSON.serializeToString(.string(key))): \(try render(members[key]!, indent: indent + 2))"
            }
            return "{\n" + lines.joined(separator: ",\n") + "\n\(closing)}"
        case let .array(items):
            if items.isEmpty { return "[]" }
            return "[\n" + (try items.map { "\(pad)\(try render($0, indent: indent + 2))" }).joined(separator: ",\n") + "\n\(closing)]"
        default:
            return try JSON.serializeToString(value)
        }
    }
}
