import Adapters
import Checkpoints
import JSON
import Tensors

/// LoRAAdapter ⇄ the PEFT adapter directory (formats.md §3), with PEFT 0.21's config keys.
enum PEFTAdapterConversion {
    /// `adapter_config.json` as PEFT 0.21.2 writes it for a `LoraConfig` (the key set of
    /// Tests/AdaptersTests/Fixtures/peft/smollm2-manifest.json), filled from the adapter.
    static func config(of adapter: LoRAAdapter, architecture: String?, baseModelNameOrPath: String?) -> JSONObject {
        let autoMapping: JSONValue
        switch architecture {
        case "llama": autoMapping = ["base_model_class": "LlamaForCausalLM", "parent_library": "transformers.models.llama.modeling_llama"]
        case "bert": autoMapping = ["base_model_class": "BertModel", "parent_library": "transformers.models.bert.modeling_bert"]
        default: autoMapping = .null
        }
        func number(_ value: Double) -> JSONValue { value == value.rounded() && abs(value) < 1e15 ? .int(Int(value)) : .double(value) }
        let pairs: [(String, JSONValue)] = [
            ("alora_invocation_tokens", .null),
            ("alpha_pattern", .object(JSONObject(adapter.alphaPattern.sorted { $0.key < $1.key }.map { (key: $0.key, value: number($0.value)) }))),
            ("arrow_config", .null),
            ("auto_mapping", autoMapping),
            ("base_model_name_or_path", baseModelNameOrPath.map(JSONValue.string) ?? .null),
            ("bias", "none"),
            ("corda_config", .null),
            ("ensure_weight_tying", false),
            ("eva_config", .null),
            ("exclude_modules", .null),
            ("fan_in_fan_out", false),
            ("inference_mode", true),
            // The weights are in the file; `true` (Kaiming A, zero B) is the one init PEFT runs at
            // load without touching the base (pissa/olora would re-decompose it, loftq needs a
            // loftq_config). The method that made the adapter is in loquat.json.
            ("init_lora_weights", adapter.initMethod == "gaussian" ? "gaussian" : true),
            ("kasa_config", .null),
            ("layer_replication", .null),
            ("layers_pattern", .null),
            ("layers_to_transform", .null),
            ("loftq_config", .object(JSONObject())),
            ("lora_alpha", number(adapter.alpha)),
            ("lora_bias", false),
            ("lora_dropout", .double(0)),
            ("lora_ga_config", .null),
            ("megatron_config", .null),
            ("megatron_core", "megatron.core"),
            ("modules_to_save", adapter.modulesToSave.isEmpty ? .null : .strings(moduleNames(adapter.modulesToSave))),
            ("monteclora_config", .null),
            ("peft_type", "LORA"),
            ("peft_version", "0.21.2"),
            ("qalora_group_size", 16),
            ("r", .int(adapter.rank)),
            ("rank_pattern", .object(JSONObject(adapter.rankPattern.sorted { $0.key < $1.key }.map { (key: $0.key, value: JSONValue.int($0.value)) }))),
            ("revision", .null),
            ("target_modules", .strings(adapter.targetModules)),
            ("target_parameters", .null),
            ("task_type", .null),
            ("trainable_token_indices", .null),
            ("use_bdlora", .null),
            ("use_dora", .bool(adapter.useDoRA)),
            ("use_qalora", false),
            ("use_rslora", .bool(adapter.useRSLoRA)),
            ("velora_config", .null),
        ]
        return JSONObject(pairs.map { (key: $0.0, value: $0.1) })
    }

    /// The tensors, Float32, PEFT keys. A QA-LoRA layer is written with its pooling expanded
    /// into A (`A_dense[k, i] = A[k, i / L] / L`), which gives the same ΔW as a plain LoRA any
    /// PEFT version loads.
    /// `model.norm.weight` → `model.norm`, distinct, in order.
    static func moduleNames(_ tensors: [Tensor]) -> [String] {
        var names: [String] = []
        for tensor in tensors {
            let name = PEFTAdapterFiles.moduleName(ofTensor: tensor.name)
            if !names.contains(name) { names.append(name) }
        }
        return names
    }

    static func tensors(of adapter: LoRAAdapter) -> [Tensor] {
        adapter.modulesToSave.map { $0.renamed(PEFTAdapterFiles.keyPrefix + $0.name) } + adapter.layers.flatMap { layer -> [Tensor] in
            let a = layer.denseLoraA
            var tensors = [
                Tensor(name: PEFTAdapterFiles.key(module: layer.module, role: .loraA), shape: a.shape, float32: a.values),
                Tensor(name: PEFTAdapterFiles.key(module: layer.module, role: .loraB), shape: layer.loraB.shape, float32: layer.loraB.values),
            ]
            if let magnitude = layer.magnitude {
                tensors.append(Tensor(name: PEFTAdapterFiles.key(module: layer.module, role: .magnitude), shape: [magnitude.count], float32: magnitude))
            }
            return tensors
        }
    }
}
