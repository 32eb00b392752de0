/// Why a compressed stream (gzip/DEFLATE here, zstd alongside) could not be decompressed. Shared by
/// every decompressor the firmware runs on untrusted disk data, so the loader reports them alike.
public enum DecompressionError: Error, Equatable {
  /// The input ends before the stream does.
  case truncated
  /// Malformed data found at this byte offset of the input (bad header, invalid code, impossible
  /// distance, broken table description).
  case corrupt(offset: Int)
  /// The output would not fit in the `capacity` bytes given.
  case outputTooSmall(capacity: Int)
  /// The stream's check value (CRC-32 for gzip) differs from that of the bytes produced.
  case checksumMismatch(expected: UInt32, computed: UInt32)
  /// The stream's recorded uncompressed size (gzip ISIZE, mod 2^32) differs from the bytes produced.
  case lengthMismatch(expected: UInt64, produced: UInt64)
  /// A valid stream using a feature this decoder does not implement (e.g. a zstd dictionary).
  case unsupported(feature: String)

  /// The same error with a `corrupt` offset counted from `start` bytes earlier (a container's
  /// start rather than its compressed data's).
  public func shifted(by start: Int) -> DecompressionError {
    if case .corrupt(let offset) = self { return .corrupt(offset: offset + start) }
    return self
  }
}
