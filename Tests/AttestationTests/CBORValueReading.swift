import CLibCBOR
import Testing
@testable import Attestation

/// Reading a decoded item the way a verifier looks things up in it.
extension CBORValue {
  /// The value under `key` in a map with unsigned keys.
  subscript(key: UInt64) -> CBORValue? {
    guard case .map(let pairs) = self else { return nil }
    return pairs.first { $0.key == .unsigned(key) }?.value
  }

  /// The value under a text key.
  subscript(text key: String) -> CBORValue? {
    guard case .map(let pairs) = self else { return nil }
    return pairs.first { $0.key == .text(key) }?.value
  }

  /// A map's keys, in the order decoded.
  var keys: [CBORValue] {
    guard case .map(let pairs) = self else { return [] }
    return pairs.map(\.key)
  }

  /// An array's elements (none for anything else).
  var elements: [CBORValue] {
    guard case .array(let elements) = self else { return [] }
    return elements
  }

  /// The content of tag `number`, nil for anything else.
  func content(ofTag number: UInt64) -> CBORValue? {
    guard case .tagged(let n, let content) = self, n == number else { return nil }
    return content
  }
}

/// Checks RFC 8949 section 4.2.1 on a decoded document: definite lengths everywhere, integers in
/// their shortest form, every map's keys in the order of their encoded bytes, no duplicates; and
/// that libcbor re-encodes it to the same bytes (lengths and tag numbers shortest too).
/// libcbor's own item tree is read here (not ``CBORValue``, which keeps no integer widths).
func expectDeterministic(_ bytes: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) {
  var result = cbor_load_result()
  let item = bytes.withUnsafeBufferPointer { cbor_load($0.baseAddress, $0.count, &result) }
  guard let item, result.error.code == CBOR_ERR_NONE, result.read == bytes.count else {
    Issue.record("not one well-formed CBOR item", sourceLocation: sourceLocation)
    return
  }
  defer {
    var reference: UnsafeMutablePointer<cbor_item_t>? = item
    cbor_decref(&reference)
  }
  var problems: [String] = []
  checkDeterministic(item, path: "$", problems: &problems)
  #expect(problems == [], sourceLocation: sourceLocation)
  #expect(encode(item) == bytes, "libcbor re-encodes it differently", sourceLocation: sourceLocation)
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
