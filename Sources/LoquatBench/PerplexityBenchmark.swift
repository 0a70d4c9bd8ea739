// `LoquatBench perplexity --model <gguf|hf dir> [--tokens ids.txt] [--context 512] [--chunks 4]
// [--threads 2] [--scoring second-half|all]`: tokens/s of the Llama forward pass inside
// `Perplexity.evaluate` (issue 5: SmolLM2 F32, ctx 512, 2 threads; llama.cpp ≈ 288 tokens/s).
// Tokens come from a file of integer ids (whitespace, comma or bracket separated, e.g. the
// output of `llama-tokenize --ids`), or are synthetic (ids i·7919 mod vocab) when none is given.
// One JSON line on stdout; the OpenBLAS core and threads go to stderr and into the line.
import Foundation
import LinearAlgebra
import Tensors
import Checkpoints
import Models

func runPerplexityBenchmark(_ arguments: [String]) throws {
    var modelPath: String?, tokenPath: String?
    var context = 512, chunks = 4, threads = 2
    var scoring = PerplexityScoring.secondHalf
    var index = 0
    while index < arguments.count {
        let value = index + 1 < arguments.count ? arguments[index + 1] : ""
        switch arguments[index] {
        case "--model": modelPath = value
        case "--tokens": tokenPath = value
        case "--context": context = Int(value) ?? context
        case "--chunks": chunks = Int(value) ?? chunks
        case "--threads": threads = Int(value) ?? threads
        case "--scoring": scoring = PerplexityScoring(rawValue: value) ?? scoring
        default: throw PerplexityBenchmarkError.usage("unknown argument \(arguments[index])")
        }
        index += 2
    }
    guard let modelPath else { throw PerplexityBenchmarkError.usage("--model is required") }
    Parallel.workerCount = threads
    BLASRuntime.threadCount = threads
    let clock = ContinuousClock()
    func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) * 1e-18
    }

    var model: LlamaModel?
    let loadTime = try clock.measure { model = try LlamaModel(checkpoint: CheckpointLoader.load(path: modelPath)) }
    let vocabulary = model!.configuration.vocabularySize
    var tokens: [Int]
    if let tokenPath {
        let text = try String(contentsOfFile: tokenPath, encoding: .utf8)
        tokens = text.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }
    } else {
        tokens = (0..<(context * chunks)).map { ($0 * 7919 + 13) % vocabulary }
    }
    FileHandle.standardError.write(Data("perplexity: OpenBLAS core \(BLASRuntime.coreName), \(threads) threads, model loaded in \(String(format: "%.2f", seconds(loadTime))) s\n".utf8))

    var result: PerplexityResult?
    let elapsed = try clock.measure {
        result = try Perplexity.evaluate(model: model!, tokens: tokens, contextLength: context, scoring: scoring,
                                         maxChunks: chunks) { progress in
            FileHandle.standardError.write(Data("[\(progress.chunkIndex + 1)]\(String(format: "%.4f", progress.perplexity)) ".utf8))
        }
    }
    FileHandle.standardError.write(Data("\n".utf8))
    // Tokens through the forward pass (the last `.all` window may be short).
    let evaluated = scoring == .all ? min(tokens.count, result!.chunkCount * context) : result!.chunkCount * context
    let rate = Double(evaluated) / seconds(elapsed)
    print("{\"benchmark\":\"perplexity\",\"implementation\":\"loquat\",\"context\":\(context),\"chunks\":\(result!.chunkCount),"
          + "\"scoring\":\"\(scoring.rawValue)\",\"tokensPerSecond\":\(String(format: "%.1f", rate)),"
          + "\"seconds\":\(String(format: "%.3f", seconds(elapsed))),\"perplexity\":\(String(format: "%.6f", result!.perplexity)),"
          + "\"standardError\":\(String(format: "%.6f", result!.standardError)),\"core\":\"\(BLASRuntime.coreName)\",\"threads\":\(threads)}")
}

enum PerplexityBenchmarkError: Error, CustomStringConvertible {
    case usage(String)
    var description: String {
        switch self {
        case let .usage(message): return "perplexity: \(message)"
        }
    }
}
