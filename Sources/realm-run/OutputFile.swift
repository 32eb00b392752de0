import Platform
import RealmVMM
import VirtIO

/// A file realm-run writes for the user (`--corim`, `--measurement-log`), written as `image
/// create` writes its output: never over one of the machine's input files, over an existing file
/// only when asked, and whole or not at all (a new file beside it, then linked or, when replacing,
/// renamed into place).
struct OutputFile {
  var path: String
  /// The option that named it, for messages.
  var option: String

  func write(_ bytes: [UInt8], inputs: [String], replace: Bool) throws(OutputFileError) {
    if let output = BlockFile.identity(of: path),
      let input = inputs.first(where: { BlockFile.identity(of: $0).map { $0 == output } ?? false })
    {
      throw OutputFileError(option: option, problem: "\(path) is one of the machine's files (\(input)); not replacing it")
    }
    let temporary = "\(path).\(getpid()).partial"
    let file: FileDescriptor
    do throws(Errno) { file = try FileDescriptor.open(temporary, O_WRONLY | O_CREAT | O_EXCL) } catch {
      throw OutputFileError(option: option, problem: "\(temporary): \(error)")
    }
    defer { unlink(temporary) }
    var failure: Errno?
    bytes.withUnsafeBytes { buffer in
      do throws(Errno) {
        try file.write(buffer)
        try file.sync()
      } catch { failure = error }
    }
    file.close()
    if let failure { throw OutputFileError(option: option, problem: "\(temporary): \(failure)") }
    // link() fails on an existing path, where rename() would replace it
    guard (replace ? rename(temporary, path) : link(temporary, path)) == 0 else {
      let error = Errno.current
      throw OutputFileError(option: option, problem: error.rawValue == EEXIST ? "\(path) exists (--force replaces it)" : "\(path): \(error)")
    }
  }
}

/// Why an output file was not written: "--corim: out.cbor exists (--force replaces it)".
struct OutputFileError: Error, CustomStringConvertible {
  var option: String
  var problem: String
  var description: String { "\(option): \(problem)" }
}

extension MachineConfig {
  /// The files the machine is built from: kernel and initrd or firmware, and the disks.
  var inputFiles: [String] {
    let boot: [String]
    switch self.boot {
    case .kernel(let path, let initrd): boot = [path] + (initrd.map { [$0] } ?? [])
    case .firmware(let path): boot = [path]
    }
    return boot + disks.map(\.path)
  }
}
