import Foundation
import Yams

/// A run's resolved configuration: the common ``RunOptions`` and the chosen model's own
/// `Config`, nothing else. Saved as `config.json` and inside every checkpoint, printed at the
/// start of a run, and read back by `--config FILE`, `--resume` and `elbo eval`.
///
/// The file is one object: the run options at the top level, `"model": <name>`, and the
/// model's options under its name, e.g.
///
///     {"model": "<name>", "epochs": 10, "batchSize": 100, …, "<name>": {<the model's options>}}
///
/// A config file (YAML or JSON) may give any subset of these keys; the rest keep their values.
/// A key that is not an option of the run or of this model is an error naming the key and the
/// file, and so is a value of the wrong type.
public struct RunConfig<Config: ExperimentConfig>: Equatable {
  public let model: String
  public var options: RunOptions
  public var config: Config

  public init(model: String, options: RunOptions, config: Config) {
    self.model = model
    self.options = options
    self.config = config
  }

  // MARK: - Writing

  /// The config as one JSON object (see the type's documentation).
  public func jsonObject() throws -> [String: Any] {
    var object = try Self.object(encoding: options)
    object["model"] = model
    object[model] = try Self.object(encoding: config)
    return object
  }

  /// Pretty-printed JSON with sorted keys (stable and diffable).
  public func jsonData() throws -> Data {
    try JSONSerialization.data(withJSONObject: try jsonObject(),
                               options: [.sortedKeys, .prettyPrinted])
  }

  /// The config on one line (the run header prints it).
  public func compactJSON() throws -> String {
    String(decoding: try JSONSerialization.data(withJSONObject: try jsonObject(),
                                                options: [.sortedKeys]), as: UTF8.self)
  }

  // MARK: - Reading

  /// Reads a YAML or JSON file (JSON is YAML) and applies it over this config.
  /// - Parameter strict: a user's file (unknown keys are errors); false for configs Elbo wrote
  ///   itself, possibly by an older version (keys it no longer knows are dropped).
  public mutating func apply(file path: String, strict: Bool = true) throws {
    let text: String
    do {
      text = try String(contentsOfFile: path, encoding: .utf8)
    } catch {
      throw ElboError("--config \(path): cannot be read (\(error.localizedDescription))")
    }
    try apply(text: text, source: path, strict: strict)
  }

  /// Applies a YAML or JSON document's keys over this config; `source` names it in errors.
  public mutating func apply(text: String, source: String, strict: Bool = true) throws {
    let parsed: Any?
    do {
      parsed = try Yams.compose(yaml: text).map { try Self.plainValue($0, source: source) }
    } catch let e as ElboError {
      throw e
    } catch {
      throw ElboError("\(source): not valid YAML or JSON (\(error))")
    }
    guard let object = parsed as? [String: Any] else {
      if parsed == nil { return }  // an empty file changes nothing
      throw ElboError("\(source): must be a mapping of option names to values")
    }
    try apply(object, source: source, strict: strict)
  }

  /// A composed YAML node as plain values ([String: Any], [Any], scalars), the shape of JSON.
  ///
  /// Written here instead of `Yams.load`: that traps on a mapping key that is not a scalar
  /// (found by launch/fuzz), and expands aliases without bound. Here keys must be scalars, and
  /// a document may hold at most `maxNodes` nodes once aliases are expanded.
  static func plainValue(_ root: Node, source: String, maxNodes: Int = 100_000) throws -> Any {
    var nodes = 0
    func convert(_ node: Node, _ path: String) throws -> Any {
      nodes += 1
      if nodes > maxNodes {
        throw ElboError("\(source): more than \(maxNodes) values (a config is a small mapping)")
      }
      switch node {
      case .scalar:
        return node.any
      case .sequence(let items):
        return try items.enumerated().map { try convert($1, "\(path)[\($0)]") }
      case .mapping(let pairs):
        var object: [String: Any] = [:]
        for (key, value) in pairs {
          guard case .scalar = key, let name = key.string else {
            throw ElboError("\(source): \(path.isEmpty ? "a key" : "a key under \(path)") is "
              + "not a plain name")
          }
          let sub = path.isEmpty ? name : "\(path).\(name)"
          object[name] = try convert(value, sub)
        }
        return object
      }
    }
    return try convert(root, "")
  }

  /// Applies `overlay`'s keys over this config (see ``apply(file:strict:)``).
  public mutating func apply(_ overlay: [String: Any], source: String, strict: Bool) throws {
    var overlay = overlay
    if let named = overlay.removeValue(forKey: "model") {
      guard let name = named as? String, name == model else {
        throw ElboError("\(source): model '\(named)' does not match this command's '\(model)'")
      }
    }
    if !strict {
      // Keys Elbo no longer writes are dropped, not errors.
      overlay = overlay.filter { RunOptions.keys.contains($0.key) || $0.key == model }
    } else if let unknown = overlay.keys.sorted().first(where: {
      !RunOptions.keys.contains($0) && $0 != model
    }) {
      throw ElboError("\(source): unknown key '\(unknown)' (run options are "
        + RunOptions.keys.sorted().joined(separator: ", ") + "; the model's options go under '\(model)')")
    }
    let modelOverlay = overlay.removeValue(forKey: model)
    if let modelOverlay, !(modelOverlay is [String: Any]) {
      throw ElboError("\(source): '\(model)' must be a mapping of the model's options")
    }
    options = try Self.merge(options, overlay, source: source, path: "", strict: strict)
    config = try Self.merge(config, modelOverlay as? [String: Any] ?? [:], source: source,
                            path: model + ".", strict: strict)
  }

  /// `value` with `overlay`'s keys applied: merged over its JSON object, decoded, and checked
  /// (strict) that every key given survived the round trip — a key the type does not have is
  /// dropped by the decoder, so a missing one is an unknown key.
  static func merge<T: Codable>(_ value: T, _ overlay: [String: Any], source: String,
                                path: String, strict: Bool) throws -> T {
    guard !overlay.isEmpty else { return value }
    let base = try object(encoding: value)
    let merged = deepMerge(base, overlay)
    let decoded: T
    do {
      let data = try JSONSerialization.data(withJSONObject: merged)
      decoded = try JSONDecoder().decode(T.self, from: data)
    } catch let error as DecodingError {
      throw ElboError("\(source): \(describe(error, path: path))")
    }
    if strict {
      let back = try object(encoding: decoded)
      if let missing = firstMissingKey(overlay, in: back, path: path) {
        throw ElboError("\(source): unknown key '\(missing)'")
      }
    }
    return decoded
  }

  static func object<T: Encodable>(encoding value: T) throws -> [String: Any] {
    let data = try JSONEncoder().encode(value)
    return try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]
  }

  /// `overlay` over `base`, recursively for nested objects. YAML reads "1e-3" as a string; where
  /// the base holds a number, a numeric string becomes that number.
  static func deepMerge(_ base: [String: Any], _ overlay: [String: Any]) -> [String: Any] {
    var out = base
    for (key, value) in overlay {
      if value is NSNull { out[key] = nil; continue }
      if let b = base[key] as? [String: Any], let o = value as? [String: Any] {
        out[key] = deepMerge(b, o)
      } else if base[key] is NSNumber, !(base[key] is Bool), let s = value as? String,
                let number = Double(s) {
        out[key] = number
      } else {
        out[key] = value
      }
    }
    return out
  }

  /// The first non-null key path of `overlay` that `object` lacks.
  static func firstMissingKey(_ overlay: [String: Any], in object: [String: Any],
                              path: String) -> String? {
    for key in overlay.keys.sorted() {
      let value = overlay[key]!
      if value is NSNull { continue }
      guard let present = object[key] else { return path + key }
      if let o = value as? [String: Any], let p = present as? [String: Any],
         let missing = firstMissingKey(o, in: p, path: path + key + ".") {
        return missing
      }
    }
    return nil
  }

  static func describe(_ error: DecodingError, path: String) -> String {
    func keyPath(_ context: DecodingError.Context) -> String {
      path + context.codingPath.map(\.stringValue).joined(separator: ".")
    }
    switch error {
    case .typeMismatch(let type, let c):
      return "key '\(keyPath(c))' must be \(typeName(type))"
    case .valueNotFound(let type, let c):
      return "key '\(keyPath(c))' must be \(typeName(type))"
    case .keyNotFound(let key, let c):
      return "key '\(keyPath(c))\(c.codingPath.isEmpty ? "" : ".")\(key.stringValue)' is missing"
    case .dataCorrupted(let c):
      return "key '\(keyPath(c))': \(c.debugDescription)"
    @unknown default:
      return "\(error)"
    }
  }

  static func typeName(_ type: Any.Type) -> String {
    switch type {
    case is Int.Type, is UInt64.Type, is Int64.Type: return "an integer"
    case is Float.Type, is Double.Type: return "a number"
    case is Bool.Type: return "true or false"
    case is String.Type: return "a string"
    default: return "a \(type)"
    }
  }
}
