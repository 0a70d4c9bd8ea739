import Adapters
import Checkpoints
import JSON
import JSONRPC
import Tensors

/// Reads a PEFT LoRA adapter directory into a `LoRAAdapter`: rank and alpha per module from
/// `r`/`lora_alpha` and the patterns (PEFT's matching), `use_rslora`, `use_dora`, F32/F16/BF16
/// tensors. Features that would change ΔW and that Loquat does not model are refused by name.
enum PEFTAdapterReading {
    static func read(path: String) throws -> (adapter: LoRAAdapter, directory: String) {
        let (directory, config, file) = try PEFTAdapterFiles.read(path: path)
        func fail(_ reason: String) -> RPCError {
            RPCError(code: RPCError.Code.ioError, message: "Invalid PEFT adapter: \(reason)",
                     data: ["file": .string(directory), "reason": .string(reason)])
        }
        if let type = config["peft_type"]?.stringValue, type != "LORA" { throw fail("peft_type is \(type); only LORA adapters are supported") }
        if config["fan_in_fan_out"]?.boolValue == true { throw fail("fan_in_fan_out (GPT-2 Conv1D layers) is not supported") }
        if config["lora_bias"]?.boolValue == true { throw fail("lora_bias is not supported") }
        if config["use_qalora"]?.boolValue == true { throw fail("PEFT's QALoRA layout is not supported; Loquat writes qa-lora adapters as plain LoRA") }
        let rank = config["r"]?.intValue ?? 8                       // PEFT's dataclass defaults
        let alpha = config["lora_alpha"]?.doubleValue ?? 8
        let useRSLoRA = config["use_rslora"]?.boolValue ?? false
        let useDoRA = config["use_dora"]?.boolValue ?? false
        func pattern(_ key: String) throws -> [(String, Double)] {
            guard case let .object(members)? = config[key] else { return [] }
            return try members.map { name, value in
                guard let number = value.doubleValue else { throw fail("\(key).\(name) is not a number") }
                return (name, number)
            }
        }
        let rankPairs = try pattern("rank_pattern"), alphaPairs = try pattern("alpha_pattern")
        let alphaPattern = try AdapterPatterns(alphaPairs, param: "alpha_pattern")

        var parts: [String: [PEFTAdapterFiles.Role: Tensor]] = [:]
        var order: [String] = []
        var saved: [Tensor] = []
        let modulesToSave = Set(config["modules_to_save"]?.arrayValue?.compactMap(\.stringValue) ?? [])
        for tensor in file.tensors {
            guard let (module, role) = PEFTAdapterFiles.parse(key: tensor.name) else {
                // modules_to_save: whole tensors under the plain module path.
                let name = tensor.name.hasPrefix(PEFTAdapterFiles.keyPrefix) ? String(tensor.name.dropFirst(PEFTAdapterFiles.keyPrefix.count)) : tensor.name
                let module = PEFTAdapterFiles.moduleName(ofTensor: name)
                if modulesToSave.contains(where: { module == $0 || module.hasSuffix("." + $0) }) {
                    saved.append(tensor.renamed(name))
                    continue
                }
                throw fail("\(tensor.name) is not a lora_A/lora_B/lora_magnitude_vector tensor nor in modules_to_save (embedding LoRA and lora_bias are not supported)")
            }
            guard [.f32, .f16, .bf16].contains(tensor.dtype) else { throw fail("\(tensor.name) has dtype \(tensor.dtype.rawValue); expected F32, F16 or BF16") }
            if parts[module] == nil { order.append(module) }
            parts[module, default: [:]][role] = tensor
        }
        guard !order.isEmpty || !saved.isEmpty else { throw fail("adapter_model.safetensors holds no LoRA tensors") }
        let layers = try order.map { module -> LoRALayer in
            let roles = parts[module]!
            guard let aTensor = roles[.loraA], let bTensor = roles[.loraB] else { throw fail("\(module) lacks lora_A or lora_B") }
            guard aTensor.shape.count == 2, bTensor.shape.count == 2, aTensor.shape[0] == bTensor.shape[1] else {
                throw fail("\(module): lora_A \(aTensor.shape) and lora_B \(bTensor.shape) do not share a rank")
            }
            let a = try aTensor.float32Matrix(), b = try bTensor.float32Matrix()
            var magnitude: [Float]?
            if let m = roles[.magnitude] {
                guard m.elementCount == b.rowCount else { throw fail("\(module): lora_magnitude_vector has \(m.elementCount) values for \(b.rowCount) outputs") }
                magnitude = try m.decodedFloat32()
            } else if useDoRA {
                throw fail("\(module): use_dora is set but lora_magnitude_vector is missing")
            }
            return LoRALayer(module: module, alpha: alphaPattern.value(for: module) ?? alpha, loraA: a, loraB: b, magnitude: magnitude)
        }
        var adapter = LoRAAdapter(layers: layers, rank: rank, alpha: alpha, useRSLoRA: useRSLoRA, useDoRA: useDoRA,
                                  rankPattern: Dictionary(rankPairs.map { ($0.0, Int($0.1)) }, uniquingKeysWith: { a, _ in a }),
                                  alphaPattern: Dictionary(alphaPairs, uniquingKeysWith: { a, _ in a }),
                                  targetModules: config["target_modules"]?.arrayValue?.compactMap(\.stringValue),
                                  baseModelNameOrPath: config["base_model_name_or_path"]?.stringValue,
                                  initMethod: "peft")
        adapter.modulesToSave = saved
        return (adapter, directory)
    }
}
