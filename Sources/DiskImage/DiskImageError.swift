/// Why a disk image could not be created.
public enum DiskImageError: Error, Equatable, CustomStringConvertible {
  /// An input file could not be read.
  case cannotRead(path: String, reason: String)
  /// The output could not be written.
  case cannotWrite(path: String, reason: String)
  /// The output exists and the caller did not ask to replace it (`image create --force`).
  case outputExists(path: String)
  /// The output is the same file (device and inode) as an input: writing it would destroy the
  /// input. `role` is "kernel", "initrd" or "rootfs".
  case outputIsInput(output: String, role: String, input: String)
  /// The kernel is not an arm64 Linux Image.
  case notAnArm64Image(path: String, reason: String)
  /// The inputs do not fit the FAT32 volume computed for them (internal sizing error).
  case volumeTooSmall
  /// An input is too large for the image format.
  case tooLarge(path: String)
  /// The title or command line contains a line break.
  case invalidText(field: String)

  public var description: String {
    switch self {
    case .cannotRead(let path, let reason): return "cannot read \(path): \(reason)"
    case .cannotWrite(let path, let reason): return "cannot write \(path): \(reason)"
    case .outputExists(let path): return "\(path) exists (add --force to replace it)"
    case .outputIsInput(let output, let role, let input):
      return "\(output) is the same file as the \(role) \(input) (choose another output)"
    case .notAnArm64Image(let path, let reason): return "\(path) is not an arm64 Linux Image: \(reason)"
    case .volumeTooSmall: return "the EFI system partition is too small for its files"
    case .tooLarge(let path): return "\(path) is too large"
    case .invalidText(let field): return "the \(field) must be a single line"
    }
  }
}
