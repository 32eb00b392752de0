import Foundation

/// A fresh directory under the system's temporary directory, removed with the value.
public final class ScratchDirectory {
  public let path: String

  public init() {
    path = NSTemporaryDirectory() + "realm-run-test-\(UUID().uuidString)"
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
  }

  deinit { try? FileManager.default.removeItem(atPath: path) }

  /// The path of `name` in the directory.
  public func path(_ name: String) -> String { path + "/" + name }

  /// Writes `bytes` to `name`; returns its path.
  @discardableResult
  public func file(_ name: String, _ bytes: [UInt8]) -> String {
    FileManager.default.createFile(atPath: path(name), contents: Data(bytes))
    return path(name)
  }

  /// The contents of `name` (empty when it cannot be read).
  public func read(_ name: String) -> [UInt8] { Array(FileManager.default.contents(atPath: path(name)) ?? Data()) }
}
