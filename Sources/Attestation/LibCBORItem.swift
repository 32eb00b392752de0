import CLibCBOR

/// Why libcbor could not build or encode an item.
public enum CBOREncodingError: Error, Equatable, CustomStringConvertible {
  /// libcbor could not allocate an item or its encoding.
  case outOfMemory

  public var description: String { "libcbor: out of memory" }
}

/// A CBOR data item built with libcbor, for deterministic encoding (RFC 8949 section 4.2.1):
/// definite lengths only, integers in their shortest form, map keys sorted by their encoded bytes.
///
/// libcbor keeps map pairs in insertion order and an integer in the width it was built with, so
/// ``map(_:)`` sorts the pairs and ``unsigned(_:)`` picks the narrowest width; the rest of the
/// shortest-form rule (lengths, tag numbers) is libcbor's encoder's own.
final class LibCBORItem {
  /// The libcbor item this object holds one reference to.
  let raw: UnsafeMutablePointer<cbor_item_t>

  private init(_ raw: UnsafeMutablePointer<cbor_item_t>?) throws(CBOREncodingError) {
    guard let raw else { throw .outOfMemory }
    self.raw = raw
  }

  deinit {
    var item: UnsafeMutablePointer<cbor_item_t>? = raw
    cbor_decref(&item)
  }

  /// An unsigned integer (major type 0) in the narrowest width that holds it.
  static func unsigned(_ value: UInt64) throws(CBOREncodingError) -> LibCBORItem {
    switch value {
    case 0...0xFF: return try LibCBORItem(cbor_build_uint8(UInt8(value)))
    case 0...0xFFFF: return try LibCBORItem(cbor_build_uint16(UInt16(value)))
    case 0...0xFFFF_FFFF: return try LibCBORItem(cbor_build_uint32(UInt32(value)))
    default: return try LibCBORItem(cbor_build_uint64(value))
    }
  }

  /// A byte string (major type 2).
  static func bytes(_ value: [UInt8]) throws(CBOREncodingError) -> LibCBORItem {
    try LibCBORItem(value.withUnsafeBufferPointer { cbor_build_bytestring($0.baseAddress, $0.count) })
  }

  /// A UTF-8 text string (major type 3).
  static func text(_ value: String) throws(CBOREncodingError) -> LibCBORItem {
    let utf8 = Array(value.utf8)
    return try LibCBORItem(utf8.withUnsafeBufferPointer { buffer in
      buffer.withMemoryRebound(to: CChar.self) { cbor_build_stringn($0.baseAddress, $0.count) }
    })
  }

  /// `number(content)` (major type 6).
  static func tag(_ number: UInt64, _ content: LibCBORItem) throws(CBOREncodingError) -> LibCBORItem {
    try LibCBORItem(cbor_build_tag(number, content.raw))
  }

  /// A definite-length array (major type 4).
  static func array(_ elements: [LibCBORItem]) throws(CBOREncodingError) -> LibCBORItem {
    let array = try LibCBORItem(cbor_new_definite_array(elements.count))
    for element in elements {
      guard cbor_array_push(array.raw, element.raw) else { throw .outOfMemory }
    }
    return array
  }

  /// A definite-length map (major type 5), its pairs sorted by the bytes of their encoded keys.
  static func map(_ pairs: [(LibCBORItem, LibCBORItem)]) throws(CBOREncodingError) -> LibCBORItem {
    var keyed: [(key: [UInt8], pair: (LibCBORItem, LibCBORItem))] = []
    for pair in pairs { keyed.append((try pair.0.encoded(), pair)) }
    keyed.sort { $0.key.lexicographicallyPrecedes($1.key) }
    let map = try LibCBORItem(cbor_new_definite_map(pairs.count))
    for entry in keyed {
      guard cbor_map_add(map.raw, cbor_pair(key: entry.pair.0.raw, value: entry.pair.1.raw)) else { throw .outOfMemory }
    }
    return map
  }

  /// A map with unsigned integer keys.
  static func map(_ pairs: [(UInt64, LibCBORItem)]) throws(CBOREncodingError) -> LibCBORItem {
    var items: [(LibCBORItem, LibCBORItem)] = []
    for (key, value) in pairs { items.append((try .unsigned(key), value)) }
    return try map(items)
  }

  /// The item's encoding (libcbor's `cbor_serialize_alloc`).
  func encoded() throws(CBOREncodingError) -> [UInt8] {
    var buffer: UnsafeMutablePointer<UInt8>? = nil
    var capacity = 0
    let length = cbor_serialize_alloc(raw, &buffer, &capacity)
    defer { free(buffer) }
    guard length > 0, let buffer else { throw .outOfMemory }
    return Array(UnsafeBufferPointer(start: buffer, count: length))
  }
}
