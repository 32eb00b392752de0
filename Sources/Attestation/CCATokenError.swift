/// Why bytes are not a CCA attestation token realm-run can read: each case says where, in one line.
public enum CCATokenError: Error, Equatable, Sendable, CustomStringConvertible {
  /// More bytes than any token holds (``CCAToken/maximumSize``).
  case tooLarge(Int)
  /// Not one well-formed, definite-length CBOR item within the decoder's bounds.
  case malformedCBOR(String)
  /// A tag other than the one the structure needs there (nil: no tag at all).
  case wrongTag(context: String, found: UInt64?, expected: String)
  /// An item of the wrong type, size or value.
  case invalid(context: String, problem: String)
  /// A mandatory claim or field is absent.
  case missing(context: String, key: Int64, name: String)
  /// A map has the same key twice.
  case duplicateKey(context: String, key: String)

  public var description: String {
    switch self {
    case .tooLarge(let size): return "token of \(size) bytes: larger than any CCA token (at most \(CCAToken.maximumSize))"
    case .malformedCBOR(let problem): return "malformed CBOR: \(problem)"
    case .wrongTag(let context, let found, let expected):
      return "\(context): \(found.map { "tag \($0)" } ?? "no tag"), expected \(expected)"
    case .invalid(let context, let problem): return "\(context): \(problem)"
    case .missing(let context, let key, let name): return "\(context): no \(name) (key \(key))"
    case .duplicateKey(let context, let key): return "\(context): key \(key) appears twice"
    }
  }
}
