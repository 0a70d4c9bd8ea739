import Checkpoints
import Foundation
import JSON
import Tensors
import TestSupport
import XCTest

/// `model/save` of quantized models through the real daemon: loquat reloads bit-identically,
/// bnb is the bitsandbytes layout our reader reads, GGUF re-encodes the dequantized weights
/// exactly as the block codec does, and what a format cannot hold is refused by name.
final class QuantizeSaveTests: XCTestCase {
    private var directory = ""
    override func setUp() { directory = makeTemporaryDirectory("quantize-save") }
    override func tearDown() { try? FileManager.default.removeItem(atPath: directory) }


    /// The dequantized weights of `model`, as the daemon's F32 safetensors export writes them.
    private func dequantized(_ session: DaemonSession, _ model: String, _ file: String) throws -> SafetensorsFile {
        let path = directory + "/" + file
        _ = try session.result("model/save", ["model": .string(model), "path": .string(path), "dtype": "F32"])
        return try SafetensorsFile(path: path)
    }

    func testLoquatReloadsBitIdentically() throws {
        let session = try sampleModelSession()
        let methods = try session.implementedQuantizers().filter { $0 != "gptq" }
        // Every method on MiniLM; SmolLM2 (a GGUF source with Q4_1 tensors kept as blocks) once,
        // since each comparison writes its 540 MB F32 export twice.
        var runs: [(String, String, JSONValue, JSONObject)] = methods.map { ($0, "mini", .null, [:]) }
            + methods.prefix(1).map { ($0, "smol", ["model.layers.0.*"], [:]) }
        if methods.contains("int") {
            runs.append(("int", "mini", .null, ["rotate": ["kind": "hadamard", "seed": 11], "outliers": ["fraction": 0.005]]))
        }
        for (index, (method, source, targets, extra)) in runs.enumerated() {
            do {
                let handle = "\(source)-\(method)-\(index)", label = "\(source) \(method) \(extra)"
                var params: JSONObject = ["model": .string(source), "method": .string(method), "name": .string(handle)]
                if targets != .null { params["targets"] = targets }
                for (key, value) in extra { params[key] = value }
                let quantized = try session.result("quantize", .object(params))
                let saved = try session.result("model/save", ["model": .string(handle), "path": .string("\(directory)/\(handle)"), "format": "loquat"])
                XCTAssertEqual(saved["format"], "loquat", label)
                let provenance = try JSON.parse(String(contentsOfFile: "\(directory)/\(handle)/loquat.json", encoding: .utf8))
                XCTAssertEqual(provenance["layers"], quantized["layers"], "\(label): loquat.json carries the ledger")
                let loaded = try session.result("model/load", ["path": .string("\(directory)/\(handle)"), "name": .string(handle + "-again")])
                XCTAssertEqual(loaded["source"], .null, label)
                XCTAssertEqual(loaded["quantization"]?["layerCount"]?.intValue, quantized.ledger.count, label)
                XCTAssertEqual(loaded["byteCount"], try session.result("model/info", ["model": .string(handle)])["byteCount"], label)
                let infoBefore = try session.result("model/info", ["model": .string(handle)])["tensors"]
                let infoAfter = try session.result("model/info", ["model": .string(handle + "-again")])["tensors"]
                XCTAssertEqual(infoAfter, infoBefore, "\(label): same tensors, dtypes (GGUF blocks too) and methods after the reload")

                let before = try dequantized(session, handle, "\(handle)-before.safetensors")
                let after = try dequantized(session, handle + "-again", "\(handle)-after.safetensors")
                XCTAssertEqual(before.names.sorted(), after.names.sorted(), label)
                for name in before.names {
                    let a = try before.requireTensor(named: name), b = try after.requireTensor(named: name)
                    XCTAssertEqual(a.dtype, b.dtype, "\(label) \(name)")
                    XCTAssertTrue(Data(a.storage.bytes) == Data(b.storage.bytes), "\(label) \(name): not bit-identical after the loquat round trip")
                }
                for model in [handle + "-again", handle] { _ = try session.result("model/unload", ["model": .string(model)]) }
            }
        }
        XCTAssertEqual(session.finish(), 0)
    }

    func testBitsAndBytesExportIsTheBitsAndBytesLayout() throws {
        let session = try sampleModelSession()
        guard try session.implementedQuantizers().contains("nf4") else { throw XCTSkip("nf4 is not implemented") }
        for doubleQuant in [false, true] {
            let handle = "mini-nf4-\(doubleQuant ? "dq" : "plain")"
            let result = try session.result("quantize", ["model": "mini", "method": "nf4", "doubleQuant": .bool(doubleQuant), "name": .string(handle)])
            let path = "\(directory)/\(handle)-bnb"
            XCTAssertEqual(try session.result("model/save", ["model": .string(handle), "path": .string(path), "format": "bnb"])["format"], "bnb")
            let file = try SafetensorsFile(path: path + "/model.safetensors")
            let config = try JSON.parse(String(contentsOfFile: path + "/config.json", encoding: .utf8))
            let quantization = try XCTUnwrap(config["quantization_config"])
            XCTAssertEqual(quantization["quant_method"], "bitsandbytes")
            XCTAssertEqual(quantization["bnb_4bit_quant_type"], "nf4")
            XCTAssertEqual(quantization["bnb_4bit_use_double_quant"], .bool(doubleQuant))
            XCTAssertEqual(quantization["llm_int8_skip_modules"], ["pooler.dense"], "the unquantized Linear is skipped")
            let reference = try dequantized(session, handle, "\(handle).safetensors")
            for layer in result.ledger {
                let name = try XCTUnwrap(layer["name"]?.stringValue)
                let packed = try file.requireTensor(named: name)
                XCTAssertEqual(packed.dtype, .u8, name)
                let count = (layer["shape"]?.arrayValue ?? []).compactMap(\.intValue).reduce(1, *)
                XCTAssertEqual(packed.shape, [(count + 1) / 2, 1], name)
                let state = try JSON.parse(Array(try file.requireTensor(named: name + ".quant_state.bitsandbytes__nf4").storage.bytes))
                XCTAssertEqual(state["quant_type"], "nf4")
                XCTAssertEqual(state["blocksize"], 64)
                XCTAssertEqual(state["shape"], layer["shape"])
                XCTAssertEqual(file.contains(name + ".nested_absmax"), doubleQuant, name)
                guard !doubleQuant else { continue }
                // x[i] = quant_map[code_i] · absmax[i / 64], high nibble first: bit for bit the daemon's dequantization.
                let quantMap = try file.requireTensor(named: name + ".quant_map").decodedFloat32()
                let absmax = try file.requireTensor(named: name + ".absmax").decodedFloat32()
                let bytes = Array(packed.storage.bytes)
                var values = [Float](repeating: 0, count: count)
                for index in 0..<count {
                    let byte = bytes[index / 2]
                    let code = index % 2 == 0 ? byte >> 4 : byte & 0x0F
                    values[index] = quantMap[Int(code)] * absmax[index / 64]
                }
                let expected = try reference.requireTensor(named: name).decodedFloat32()
                XCTAssertTrue(values.map(\.bitPattern) == expected.map(\.bitPattern), "\(name): bnb bytes dequantize to the daemon's weights")
            }
            XCTAssertNotNil(file.tensor(named: "embeddings.word_embeddings.weight"), "untouched tensors travel along")
        }
        XCTAssertEqual(session.finish(), 0)
    }

    func testGGUFReencodeLoadsBackAndMatchesTheBlockCodec() throws {
        let session = try sampleModelSession()
        guard let method = try session.implementedQuantizers().first(where: { $0 == "nf4" || $0 == "int" }) else {
            throw XCTSkip("needs nf4 or int")
        }
        let quantized = try session.result("quantize", ["model": "smol", "method": .string(method), "targets": ["model.layers.0.*"], "name": "q"])
        let reference = try dequantized(session, "q", "q.safetensors")
        for (dtype, budget) in [(DType.q8_0, 0.01), (.q4_0, 0.2)] {
            let path = "\(directory)/q-\(dtype.rawValue).gguf"
            let saved = try session.result("model/save", ["model": "q", "path": .string(path), "dtype": .string(dtype.rawValue)])
            XCTAssertEqual(saved["reencoded"], true)
            XCTAssertEqual(try session.result("model/load", ["path": .string(path), "name": .string("q-\(dtype.rawValue)")])["tensorCount"], 272)
            let loaded = try CheckpointLoader.load(path: path)
            for layer in quantized.ledger {
                let name = try XCTUnwrap(layer["name"]?.stringValue)
                let tensor = try XCTUnwrap(loaded.tensor(named: name), name)
                XCTAssertEqual(tensor.dtype, dtype, name)
                let weights = try reference.requireTensor(named: name).decodedFloat32()
                let columns = tensor.shape[1]
                let expected = try GGMLBlockCodec.decode(try Tensor(
                    name: name, dtype: dtype, shape: tensor.shape,
                    storage: .bytes(try GGMLBlockCodec.encode(weights, rowCount: weights.count / columns, columnCount: columns, as: dtype))))
                let stored = try tensor.float32Values()
                XCTAssertTrue(stored.map(\.bitPattern) == expected.map(\.bitPattern), "\(name): the GGUF holds exactly the \(dtype.rawValue) encoding of the dequantized weights")
                XCTAssertLessThan(relativeDistance(stored, weights), budget, "\(name) \(dtype.rawValue)")
            }
        }
        XCTAssertEqual(session.finish(), 0)
    }

    func testFormatsRefuseWhatTheyCannotHold() throws {
        let session = try sampleModelSession()
        let methods = try session.implementedQuantizers()
        guard methods.contains("int") else { throw XCTSkip("int is not implemented") }
        _ = try session.result("quantize", ["model": "mini", "method": "int", "bits": 3, "name": "mini-int3"])
        let bnb = try session.error("model/save", ["model": "mini-int3", "path": .string(directory + "/bnb"), "format": "bnb"], code: -32002, param: "format")
        XCTAssertNotNil(bnb["data"]?["layer"]?.stringValue, "the refusal names a layer")
        XCTAssertTrue(bnb["data"]?["reason"]?.stringValue?.contains("nf4") ?? false)
        try session.error("model/save", ["model": "mini-int3", "path": .string(directory + "/x"), "format": "loquat", "dtype": "F16"],
                          code: -32602, param: "dtype")
        try session.error("model/save", ["model": "mini-int3", "path": .string(directory + "/x.safetensors"), "dtype": "Q8_0"],
                          code: -32602, param: "dtype")
        try session.error("model/save", ["model": "mini-int3", "path": .string(directory + "/x.gguf")], code: -32002)
        _ = try session.result("quantize", ["model": "smol", "method": "int", "targets": ["model.layers.0.*"], "name": "smol-int4"])
        let gguf = try session.error("model/save", ["model": "smol-int4", "path": .string(directory + "/y.gguf"), "dtype": "IQ4_NL"],
                                     code: -32002, param: "dtype")
        XCTAssertTrue(gguf["data"]?["reason"]?.stringValue?.contains("re-encodes") ?? false, "the error says it is a re-encode")
        try session.error("model/save", ["model": "smol-int4", "path": .string(directory + "/y.gguf"), "dtype": "Q9_9"], code: -32602, param: "dtype")
        XCTAssertEqual(FileManager.default.fileExists(atPath: directory + "/bnb"), false, "a refused save writes nothing")
        XCTAssertEqual(session.finish(), 0)
    }
}
