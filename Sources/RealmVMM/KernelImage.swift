/// The 64-byte header at the start of an arm64 Linux `Image` (Documentation/arch/arm64/booting.rst).
public struct KernelImageHeader: Equatable, Sendable {
  /// Where in a 2 MiB-aligned base the image must be placed.
  public let textOffset: UInt64
  /// Bytes the loaded image occupies, BSS included (0 on kernels older than 3.17).
  public let imageSize: UInt64
  /// Flags: bit 0 big-endian, bits 1-2 page size, bit 3 placement anywhere in RAM.
  public let flags: UInt64

  /// The magic "ARM\x64" at offset 56.
  public static let magic: UInt32 = 0x644D_5241
  public static let size = 64

  /// Why a file is not a bootable arm64 Image.
  public enum ParseError: Error, Equatable, CustomStringConvertible {
    case tooShort(Int)
    case badMagic
    case bigEndian
    case imageSizeTooSmall(UInt64, fileSize: Int)

    public var description: String {
      switch self {
      case .tooShort(let size): return "\(size) bytes is too short for an arm64 Image header"
      case .badMagic: return "not an arm64 Linux Image (no \"ARM\\x64\" magic at offset 56)"
      case .bigEndian: return "big-endian arm64 Images are not supported"
      case .imageSizeTooSmall(let imageSize, let fileSize):
        return "header image_size \(imageSize) is smaller than the file (\(fileSize) bytes)"
      }
    }
  }

  /// Parses and checks the header of `image`.
  public init(parsing image: some Collection<UInt8>) throws(ParseError) {
    let bytes = Array(image.prefix(Self.size))
    guard bytes.count == Self.size else { throw .tooShort(bytes.count) }
    func word(_ offset: Int) -> UInt64 {
      (0..<8).reduce(0) { $0 | UInt64(bytes[offset + $1]) << (8 * UInt64($1)) }
    }
    guard UInt32(truncatingIfNeeded: word(56)) == Self.magic else { throw .badMagic }
    textOffset = word(8)
    flags = word(24)
    guard flags & 1 == 0 else { throw .bigEndian }
    // image_size 0 means an old kernel: the text offset was fixed at 0x80000 then.
    let declared = word(16)
    guard declared == 0 || declared >= UInt64(image.count) else {
      throw .imageSizeTooSmall(declared, fileSize: image.count)
    }
    imageSize = declared == 0 ? UInt64(image.count) : declared
  }
}
