import Foundation
import Testing

/// The arm64 files Scripts/fetch-arm64-assets downloads (Debian's kernel, shim, GRUB, systemd-boot),
/// found through the variables of its assets.env: from the environment, else from
/// `$NESTED_DIR/assets.env` or the repository's .build-nested/assets.env. Absent, the tests on them
/// are skipped, unless `REALM_RUN_REQUIRE_ASSETS=1` (the project's test command), where they fail.
public enum Arm64Assets {
  public static let environment = ProcessInfo.processInfo.environment
  public static let required = environment["REALM_RUN_REQUIRE_ASSETS"] == "1"

  static let assetsFile: [String: String] = {
    let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent().path  // Tests/TestSupport/ → the repository
    let directory = environment["NESTED_DIR"] ?? repository + "/.build-nested"
    guard let text = try? String(contentsOfFile: directory + "/assets.env", encoding: .utf8) else { return [:] }
    var values: [String: String] = [:]
    for line in text.split(separator: "\n") where !line.hasPrefix("#") {
      guard let eq = line.firstIndex(of: "=") else { continue }
      // printf %q quoting: only backslash escapes occur in these paths.
      values[String(line[..<eq])] = String(line[line.index(after: eq)...]).replacingOccurrences(of: "\\", with: "")
    }
    return values
  }()

  /// The file a variable names, when it exists.
  public static func path(_ variable: String) -> String? {
    guard let path = environment[variable] ?? assetsFile[variable], FileManager.default.fileExists(atPath: path)
    else { return nil }
    return path
  }

  public static var available: Bool { path("GRUB_EFI") != nil || required }

  /// The file's bytes; a recorded failure (REALM_RUN_REQUIRE_ASSETS=1) or nil when absent.
  public static func load(_ variable: String) throws -> [UInt8]? {
    guard let path = path(variable) else {
      if required { Issue.record("\(variable) not found: run Scripts/fetch-arm64-assets") }
      return nil
    }
    return [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
  }
}
