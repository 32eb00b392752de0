import Platform
import RealmVMM

/// Finds the firmware shipped with realm-run: `realm-fw.bin` next to the executable, then in
/// `PREFIX/share/realm-run/` for an executable installed in `PREFIX/bin`.
enum BundledFirmware {
  static let fileName = "realm-fw.bin"

  static func candidates(executable: String) -> [String] {
    let binDirectory = parent(executable)
    let prefix = parent(binDirectory)
    return ["\(binDirectory)/\(fileName)", "\(prefix)/share/realm-run/\(fileName)"]
  }

  static func locate() throws(VMMError) -> String {
    let places = candidates(executable: executablePath())
    for path in places where access(path, R_OK) == 0 {
      return path
    }
    throw .invalidImage(
      path: fileName,
      reason: "the bundled firmware is not at \(places.joined(separator: " or ")); pass --firmware or --kernel")
  }

  private static func executablePath() -> String {
    var buffer = [CChar](repeating: 0, count: 4096)
    let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
    guard count > 0 else { return CommandLine.arguments.first ?? "realm-run" }
    return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
  }

  private static func parent(_ path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return "." }
    return slash == path.startIndex ? "/" : String(path[..<slash])
  }
}
