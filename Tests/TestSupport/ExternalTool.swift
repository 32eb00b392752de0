import Foundation
import Testing

/// Runs a system tool (mkfs.fat, mtools, sgdisk, fsck.fat) and returns its status and output, or
/// `nil` when it is not installed. Where the project's test command runs the tests
/// (`REALM_RUN_REQUIRE_ASSETS=1`), a missing tool is a failure: Scripts/setup-host installs them,
/// and a check that quietly skips there would be a check that cannot fail.
public func runTool(_ tool: String, _ arguments: [String]) -> (status: Int32, output: String)? {
  guard let executable = findTool(tool) else { return nil }
  let process = Process()
  process.executableURL = URL(fileURLWithPath: executable)
  process.arguments = arguments
  let pipe = Pipe()
  process.standardOutput = pipe
  process.standardError = pipe
  do { try process.run() } catch { return nil }
  let data = pipe.fileHandleForReading.readDataToEndOfFile()
  process.waitUntilExit()
  return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// The path of a system tool, or `nil` when it is not installed (a failure where the test command
/// runs the tests, as for ``runTool(_:_:)``).
public func findTool(_ tool: String) -> String? {
  let candidates = ["/usr/sbin/", "/sbin/", "/usr/bin/", "/bin/"].map { $0 + tool }
  guard let executable = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
    if ProcessInfo.processInfo.environment["REALM_RUN_REQUIRE_ASSETS"] == "1" {
      Issue.record("\(tool) is not installed (Scripts/setup-host installs it)")
    }
    return nil
  }
  return executable
}

/// Runs a system tool that must succeed: its output, or `nil` when it is not installed (see
/// ``findTool(_:)``) or when it failed, which is recorded as a test failure with what it printed.
/// A check built on the tool's work then cannot pass without it having run.
public func runToolSucceeding(_ tool: String, _ arguments: [String]) -> String? {
  guard let (status, output) = runTool(tool, arguments) else { return nil }
  guard status == 0 else {
    Issue.record("\(tool) \(arguments.joined(separator: " ")) failed with status \(status): \(output)")
    return nil
  }
  return output
}
