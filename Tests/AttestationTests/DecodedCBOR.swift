import CLibCBOR
import Testing

/// A CBOR document decoded with libcbor's decoder (`cbor_load`), read back in tests through plain
/// Swift values: what a verifier would see, independent of how the encoder built it.
final class DecodedCBORDocument {
  let root: UnsafeMutablePointer<cbor_item_t>

  /// Decodes `bytes`, which must be exactly one well-formed item.
  init?(_ bytes: [UInt8]) {
    var result = cbor_load_result()
    let item = bytes.withUnsafeBufferPointer { cbor_load($0.baseAddress, $0.count, &result) }
    guard let item, result.error.code == CBOR_ERR_NONE, result.read == bytes.count else { return nil }
    root = item
  }

  deinit {
    var item: UnsafeMutablePointer<cbor_item_t>? = root
    cbor_decref(&item)
  }

  var value: DecodedCBOR { DecodedCBOR(root) }
}

/// A decoded item, as a tree of Swift values.
indirect enum DecodedCBOR: Equatable {
  case unsigned(UInt64)
  case negative(UInt64)
  case bytes([UInt8])
  case text(String)
  case array([DecodedCBOR])
  case map([(DecodedCBOR, DecodedCBOR)])
  case tag(UInt64, DecodedCBOR)
  case other

  init(_ item: UnsafeMutablePointer<cbor_item_t>) {
    switch cbor_typeof(item) {
    case CBOR_TYPE_UINT: self = .unsigned(cbor_get_int(item))
    case CBOR_TYPE_NEGINT: self = .negative(cbor_get_int(item))
    case CBOR_TYPE_BYTESTRING:
      self = .bytes(Array(UnsafeBufferPointer(start: cbor_bytestring_handle(item), count: cbor_bytestring_length(item))))
    case CBOR_TYPE_STRING:
      self = .text(String(decoding: UnsafeBufferPointer(start: cbor_string_handle(item), count: cbor_string_length(item)), as: UTF8.self))
    case CBOR_TYPE_ARRAY:
      self = .array((0..<cbor_array_size(item)).map { DecodedCBOR(cbor_array_handle(item)[$0]!) })
    case CBOR_TYPE_MAP:
      let pairs = cbor_map_handle(item)!
      self = .map((0..<cbor_map_size(item)).map { (DecodedCBOR(pairs[$0].key!), DecodedCBOR(pairs[$0].value!)) })
    case CBOR_TYPE_TAG:
      var content: UnsafeMutablePointer<cbor_item_t>? = cbor_tag_item(item)
      defer { cbor_decref(&content) }
      self = .tag(cbor_tag_value(item), DecodedCBOR(content!))
    default: self = .other
    }
  }

  static func == (a: DecodedCBOR, b: DecodedCBOR) -> Bool {
    switch (a, b) {
    case (.unsigned(let x), .unsigned(let y)), (.negative(let x), .negative(let y)): return x == y
    case (.bytes(let x), .bytes(let y)): return x == y
    case (.text(let x), .text(let y)): return x == y
    case (.array(let x), .array(let y)): return x == y
    case (.map(let x), .map(let y)): return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
    case (.tag(let n, let x), .tag(let m, let y)): return n == m && x == y
    case (.other, .other): return true
    default: return false
    }
  }

  /// The value under `key` in a map with unsigned keys.
  subscript(key: UInt64) -> DecodedCBOR? {
    guard case .map(let pairs) = self else { return nil }
    return pairs.first { $0.0 == .unsigned(key) }?.1
  }

  /// The value under a text key.
  subscript(text key: String) -> DecodedCBOR? {
    guard case .map(let pairs) = self else { return nil }
    return pairs.first { $0.0 == .text(key) }?.1
  }

  var keys: [DecodedCBOR] {
    guard case .map(let pairs) = self else { return [] }
    return pairs.map(\.0)
  }

  var elements: [DecodedCBOR] {
    guard case .array(let elements) = self else { return [] }
    return elements
  }

  /// The content of tag `number`, nil for anything else.
  func tagged(_ number: UInt64) -> DecodedCBOR? {
    guard case .tag(let n, let content) = self, n == number else { return nil }
    return content
  }
}

/// Checks RFC 8949 section 4.2.1 on a decoded document: definite lengths everywhere, integers in
/// their shortest form, every map's keys in the order of their encoded bytes, no duplicates; and
/// that libcbor re-encodes it to the same bytes (lengths and tag numbers shortest too).
func expectDeterministic(_ bytes: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) {
  guard let document = DecodedCBORDocument(bytes) else {
    Issue.record("not one well-formed CBOR item", sourceLocation: sourceLocation)
    return
  }
  var problems: [String] = []
  checkDeterministic(document.root, path: "$", problems: &problems)
  #expect(problems == [], sourceLocation: sourceLocation)
  #expect(encode(document.root) == bytes, "libcbor re-encodes it differently", sourceLocation: sourceLocation)
}

func encode(_ item: UnsafeMutablePointer<cbor_item_t>) -> [UInt8] {
  var buffer: UnsafeMutablePointer<UInt8>? = nil
  var capacity = 0
  let length = cbor_serialize_alloc(item, &buffer, &capacity)
  defer { free(buffer) }
  guard let buffer else { return [] }
  return Array(UnsafeBufferPointer(start: buffer, count: length))
}

private func checkDeterministic(_ item: UnsafeMutablePointer<cbor_item_t>, path: String, problems: inout [String]) {
  switch cbor_typeof(item) {
  case CBOR_TYPE_UINT, CBOR_TYPE_NEGINT:
    let value = cbor_get_int(item)
    let shortest = value <= 0xFF ? CBOR_INT_8 : value <= 0xFFFF ? CBOR_INT_16 : value <= 0xFFFF_FFFF ? CBOR_INT_32 : CBOR_INT_64
    if cbor_int_get_width(item) != shortest { problems.append("\(path): integer \(value) not in its shortest form") }
  case CBOR_TYPE_BYTESTRING:
    if !cbor_bytestring_is_definite(item) { problems.append("\(path): indefinite byte string") }
  case CBOR_TYPE_STRING:
    if !cbor_string_is_definite(item) { problems.append("\(path): indefinite text string") }
  case CBOR_TYPE_ARRAY:
    if !cbor_array_is_definite(item) { problems.append("\(path): indefinite array") }
    for i in 0..<cbor_array_size(item) { checkDeterministic(cbor_array_handle(item)[i]!, path: "\(path)[\(i)]", problems: &problems) }
  case CBOR_TYPE_MAP:
    if !cbor_map_is_definite(item) { problems.append("\(path): indefinite map") }
    let pairs = cbor_map_handle(item)!
    var previous: [UInt8]? = nil
    for i in 0..<cbor_map_size(item) {
      let key = encode(pairs[i].key!)
      if let previous, !previous.lexicographicallyPrecedes(key) {
        problems.append("\(path): map key \(i) not after the one before it in encoded order")
      }
      previous = key
      checkDeterministic(pairs[i].key!, path: "\(path).key\(i)", problems: &problems)
      checkDeterministic(pairs[i].value!, path: "\(path){\(i)}", problems: &problems)
    }
  case CBOR_TYPE_TAG:
    var content: UnsafeMutablePointer<cbor_item_t>? = cbor_tag_item(item)
    defer { cbor_decref(&content) }
    checkDeterministic(content!, path: "\(path)#\(cbor_tag_value(item))", problems: &problems)
  default:
    break
  }
}
