/// A memory size from the command line: a whole number of MiB, or a number with a K, M, G or T
/// suffix (binary units; "KiB"/"KB" spellings accepted), as kvmtool and QEMU take `-m`.
struct MemorySize: Equatable {
  let bytes: UInt64

  struct ParseError: Error, Equatable, CustomStringConvertible {
    let description: String
  }

  init(parsing text: String) throws(ParseError) {
    let digits = text.prefix { $0.isASCII && $0.isNumber }
    var suffix = text.dropFirst(digits.count).uppercased()
    for unit in ["IB", "B"] where suffix.count > unit.count && suffix.hasSuffix(unit) {
      suffix.removeLast(unit.count)
      break
    }
    let shift: UInt64
    switch suffix {
    case "K": shift = 10
    case "", "M": shift = 20
    case "G": shift = 30
    case "T": shift = 40
    default:
      throw ParseError(description: "'\(text)' is not a memory size (use a number with K, M, G or T, e.g. 512M)")
    }
    guard !digits.isEmpty, let value = UInt64(digits) else {
      throw ParseError(description: "'\(text)' is not a memory size (use a number with K, M, G or T, e.g. 512M)")
    }
    guard value <= UInt64.max >> shift else {
      throw ParseError(description: "memory size '\(text)' is too large")
    }
    bytes = value << shift
  }
}
