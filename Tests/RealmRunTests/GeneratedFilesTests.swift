import ArgumentParser
import Foundation
import Testing
@testable import realm_run

/// The shell completions in completions/ are generated from the CLI definitions; this fails when
/// they are stale (regenerate with Scripts/generate-docs). The man page is checked by
/// Scripts/check-generated, which runs ArgumentParser's generate-manual plugin.
@Suite struct GeneratedFilesTests {
  static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("../..").standardized

  @Test(arguments: [(CompletionShell.bash, "realm-run.bash"), (.zsh, "_realm-run"), (.fish, "realm-run.fish")])
  func completionsAreCurrent(shell: CompletionShell, file: String) throws {
    let path = Self.root.appendingPathComponent("completions/\(file)")
    let checkedIn = try String(contentsOf: path, encoding: .utf8)
    // `--generate-completion-script` prints the script and a newline.
    #expect(checkedIn == RealmRun.completionScript(for: shell) + "\n", "completions/\(file) is stale: run Scripts/generate-docs")
  }
}
