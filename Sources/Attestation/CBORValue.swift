import CLibCBOR

/// A CBOR data item as plain values: what ``decode(_:)`` reads from untrusted input (an attestation
/// token) and what ``encoded()`` writes deterministically (a CoRIM, a Sig_structure), both with libcbor.
///
/// ``decode(_:)`` checks the encoding with libcbor's streaming decoder before `cbor_load` builds
/// anything: one item that spans the whole input, definite lengths only, no container claiming more
/// items than the bytes left, nesting at most ``maximumDepth``. So `cbor_load` never allocates more
/// than a small multiple of the input, and every byte string here is the received bytes.
public indirect enum CBORValue: Equatable, Sendable {
  case unsigned(UInt64)
  /// A negative integer -1 - n, holding n (CBOR major type 1).
  case negative(UInt64)
  case bytes([UInt8])
  case text(String)
  case array([CBORValue])
  /// Key-value pairs in the order received or built (keys may repeat; readers reject that);
  /// ``encoded()`` writes them sorted by key.
  case map([(key: CBORValue, value: CBORValue)])
  case tagged(UInt64, CBORValue)
  /// false, true, null, undefined, floats: nothing a token claim may be.
  case other

  /// The deepest nesting ``decode(_:)`` accepts (a CCA token needs 6: tag, map, array, tag, array, map).
  public static let maximumDepth = 16

  /// The item `bytes` encode, all of them.
  public static func decode(_ bytes: [UInt8]) throws(CCATokenError) -> CBORValue {
    // libcbor 0.8 (Debian bookworm) refuses the one-byte tag heads of tags 6-20 (unassigned in
    // RFC 7049), among them COSE_Sign1's 18, which starts every signed token: read that head here.
    if let head = bytes.first, (0xc6...0xd4).contains(head) {
      return .tagged(UInt64(head & 0x1f), try load(Array(bytes.dropFirst())))
    }
    return try load(bytes)
  }

  /// The item libcbor loads from `bytes`, once they are checked.
  private static func load(_ bytes: [UInt8]) throws(CCATokenError) -> CBORValue {
    try checkWellFormed(bytes)
    var result = cbor_load_result()
    guard let item = bytes.withUnsafeBufferPointer({ cbor_load($0.baseAddress, $0.count, &result) }) else {
      throw .malformedCBOR("libcbor error \(result.error.code.rawValue) at offset \(result.error.position)")
    }
    defer { release(item) }
    guard result.read == bytes.count else { throw .malformedCBOR("\(bytes.count - result.read) bytes after the item") }
    return try CBORValue(item, depth: 0)
  }

  /// Converts a libcbor item (checked by ``checkWellFormed(_:)``) into values.
  private init(_ item: UnsafeMutablePointer<cbor_item_t>, depth: Int) throws(CCATokenError) {
    guard depth <= Self.maximumDepth else { throw .malformedCBOR("nested deeper than \(Self.maximumDepth)") }
    switch cbor_typeof(item) {
    case CBOR_TYPE_UINT: self = .unsigned(cbor_get_int(item))
    case CBOR_TYPE_NEGINT: self = .negative(cbor_get_int(item))
    case CBOR_TYPE_BYTESTRING:
      guard cbor_bytestring_is_definite(item) else { throw .malformedCBOR("an indefinite-length byte string") }
      self = .bytes(Array(UnsafeBufferPointer(start: cbor_bytestring_handle(item), count: cbor_bytestring_length(item))))
    case CBOR_TYPE_STRING:
      guard cbor_string_is_definite(item) else { throw .malformedCBOR("an indefinite-length text string") }
      let utf8 = Array(UnsafeBufferPointer(start: cbor_string_handle(item), count: cbor_string_length(item)))
      guard let text = String(validating: utf8, as: UTF8.self) else { throw .malformedCBOR("a text string that is not UTF-8") }
      self = .text(text)
    case CBOR_TYPE_ARRAY:
      guard cbor_array_is_definite(item) else { throw .malformedCBOR("an indefinite-length array") }
      var elements: [CBORValue] = []
      let handle = cbor_array_handle(item)
      for index in 0..<cbor_array_size(item) {
        guard let element = handle?[index] else { throw .malformedCBOR("an incomplete array") }
        elements.append(try CBORValue(element, depth: depth + 1))
      }
      self = .array(elements)
    case CBOR_TYPE_MAP:
      guard cbor_map_is_definite(item) else { throw .malformedCBOR("an indefinite-length map") }
      var pairs: [(key: CBORValue, value: CBORValue)] = []
      let handle = cbor_map_handle(item)
      for index in 0..<cbor_map_size(item) {
        guard let pair = handle?[index], let key = pair.key, let value = pair.value else {
          throw .malformedCBOR("an incomplete map")
        }
        pairs.append((try CBORValue(key, depth: depth + 1), try CBORValue(value, depth: depth + 1)))
      }
      self = .map(pairs)
    case CBOR_TYPE_TAG:
      guard let content = cbor_tag_item(item) else { throw .malformedCBOR("a tag without content") }
      defer { Self.release(content) }  // cbor_tag_item took a reference
      self = .tagged(cbor_tag_value(item), try CBORValue(content, depth: depth + 1))
    default: self = .other
    }
  }

  public static func == (a: CBORValue, b: CBORValue) -> Bool {
    switch (a, b) {
    case (.unsigned(let x), .unsigned(let y)), (.negative(let x), .negative(let y)): return x == y
    case (.bytes(let x), .bytes(let y)): return x == y
    case (.text(let x), .text(let y)): return x == y
    case (.array(let x), .array(let y)): return x == y
    case (.map(let x), .map(let y)):
      return x.count == y.count && zip(x, y).allSatisfy { $0.key == $1.key && $0.value == $1.value }
    case (.tagged(let t, let x), .tagged(let u, let y)): return t == u && x == y
    case (.other, .other): return true
    default: return false
    }
  }
}

// MARK: - Well-formedness check (libcbor's streaming decoder, no allocation)

extension CBORValue {
  /// What the streaming decoder has seen so far: items still owed to each open container.
  private struct Scan {
    var owed: [UInt64] = []
    /// Items begun at the top level.
    var topLevelItems = 0
    var remainingBytes = 0
    var problem: String?

    /// One data item (or the head of a container or tag) was decoded. A container stays on the
    /// stack until its last child is complete, so the stack's height is libcbor's nesting depth.
    mutating func item(opening children: UInt64 = 0) {
      guard problem == nil else { return }
      if owed.isEmpty { topLevelItems += 1 } else { owed[owed.count - 1] -= 1 }
      guard children > 0 else {
        while owed.last == 0 { owed.removeLast() }
        return
      }
      // Every child takes at least one byte: a count beyond the bytes left is a lie.
      guard children <= UInt64(remainingBytes) else {
        problem = "a container of \(children) items in \(remainingBytes) bytes"
        return
      }
      guard owed.count < CBORValue.maximumDepth else {
        problem = "nested deeper than \(CBORValue.maximumDepth)"
        return
      }
      owed.append(children)
    }

    mutating func refuse(_ what: String) { if problem == nil { problem = what } }
  }

  private static func scan(_ context: UnsafeMutableRawPointer?) -> UnsafeMutablePointer<Scan> {
    context!.assumingMemoryBound(to: Scan.self)
  }

  private static var scanCallbacks: cbor_callbacks {
    var c = cbor_empty_callbacks
    c.uint8 = { context, _ in CBORValue.scan(context).pointee.item() }
    c.uint16 = { context, _ in CBORValue.scan(context).pointee.item() }
    c.uint32 = { context, _ in CBORValue.scan(context).pointee.item() }
    c.uint64 = { context, _ in CBORValue.scan(context).pointee.item() }
    c.negint8 = { context, _ in CBORValue.scan(context).pointee.item() }
    c.negint16 = { context, _ in CBORValue.scan(context).pointee.item() }
    c.negint32 = { context, _ in CBORValue.scan(context).pointee.item() }
    c.negint64 = { context, _ in CBORValue.scan(context).pointee.item() }
    c.byte_string = { context, _, _ in CBORValue.scan(context).pointee.item() }
    c.string = { context, _, _ in CBORValue.scan(context).pointee.item() }
    // Counts are size_t in libcbor 0.8 (Int here: 2^63 and above arrive negative), uint64_t in 0.10.
    c.array_start = { context, count in CBORValue.scan(context).pointee.item(opening: UInt64(truncatingIfNeeded: count)) }
    c.map_start = { context, count in
      // 2 * count items; a count that large cannot fit the input anyway.
      let pairs = UInt64(truncatingIfNeeded: count)
      CBORValue.scan(context).pointee.item(opening: pairs > UInt64.max / 2 ? UInt64.max : pairs * 2)
    }
    c.tag = { context, _ in CBORValue.scan(context).pointee.item(opening: 1) }
    c.float2 = { context, _ in CBORValue.scan(context).pointee.item() }
    c.float4 = { context, _ in CBORValue.scan(context).pointee.item() }
    c.float8 = { context, _ in CBORValue.scan(context).pointee.item() }
    c.undefined = { context in CBORValue.scan(context).pointee.item() }
    c.null = { context in CBORValue.scan(context).pointee.item() }
    c.boolean = { context, _ in CBORValue.scan(context).pointee.item() }
    c.byte_string_start = { context in CBORValue.scan(context).pointee.refuse("an indefinite-length byte string") }
    c.string_start = { context in CBORValue.scan(context).pointee.refuse("an indefinite-length text string") }
    c.indef_array_start = { context in CBORValue.scan(context).pointee.refuse("an indefinite-length array") }
    c.indef_map_start = { context in CBORValue.scan(context).pointee.refuse("an indefinite-length map") }
    c.indef_break = { context in CBORValue.scan(context).pointee.refuse("a break outside an indefinite-length item") }
    return c
  }

  /// Throws unless `bytes` are exactly one well-formed, definite-length item within the bounds above.
  static func checkWellFormed(_ bytes: [UInt8]) throws(CCATokenError) {
    var state = Scan()
    var offset = 0
    let problem: String? = bytes.withUnsafeBufferPointer { buffer in
      withUnsafeMutablePointer(to: &state) { scan in
        var callbacks = scanCallbacks
        while offset < buffer.count {
          scan.pointee.remainingBytes = buffer.count - offset
          let result = cbor_stream_decode(buffer.baseAddress! + offset, buffer.count - offset, &callbacks, scan)
          switch result.status {
          case CBOR_DECODER_FINISHED: offset += result.read
          case CBOR_DECODER_NEDATA: return "truncated at offset \(offset)"
          default: return "not CBOR at offset \(offset)"
          }
          if let problem = scan.pointee.problem { return "\(problem) at offset \(offset - result.read)" }
          if scan.pointee.topLevelItems > 0 && scan.pointee.owed.isEmpty && offset < buffer.count {
            return "\(buffer.count - offset) bytes after the item"
          }
        }
        return nil
      }
    }
    if let problem { throw .malformedCBOR(problem) }
    guard state.topLevelItems == 1, state.owed.isEmpty else {
      throw .malformedCBOR(bytes.isEmpty ? "empty" : "truncated (\(state.owed.last ?? 0) items missing)")
    }
  }
}

// MARK: - Encoding (libcbor; RFC 8949 section 4.2.1 deterministic)

extension CBORValue {
  /// The deterministic encoding of this item (RFC 8949 section 4.2.1): definite lengths, every
  /// integer, length and tag number in its shortest form, and each map's pairs sorted by the bytes
  /// of their encoded keys (pairs with equal keys keep their order). The same value always gives
  /// the same bytes, whatever order its maps were built in: the CoRIM `measure --corim` writes, a
  /// Sig_structure, the tokens the tests build.
  ///
  /// libcbor failing to allocate ends the process (as any Swift allocation failure does).
  public func encoded() -> [UInt8] {
    let item = makeItem()
    defer { Self.release(item) }
    return Self.serialize(item)
  }

  /// libcbor's encoding of `item` (shortest heads; maps in the order their pairs were added).
  private static func serialize(_ item: UnsafeMutablePointer<cbor_item_t>) -> [UInt8] {
    var capacity = 256
    while true {
      var buffer = [UInt8](repeating: 0, count: capacity)
      let length = buffer.withUnsafeMutableBufferPointer { cbor_serialize(item, $0.baseAddress, $0.count) }
      if length > 0 { return Array(buffer[0..<length]) }
      capacity *= 2  // 0: the buffer was too small
    }
  }

  private func makeItem() -> UnsafeMutablePointer<cbor_item_t> {
    let item: UnsafeMutablePointer<cbor_item_t>?
    switch self {
    case .unsigned(let n): item = Self.buildInteger(n, negative: false)
    case .negative(let n): item = Self.buildInteger(n, negative: true)
    case .bytes(let b): item = b.withUnsafeBufferPointer { cbor_build_bytestring($0.baseAddress, $0.count) }
    case .text(let s):
      item = Array(s.utf8).withUnsafeBufferPointer { utf8 in
        utf8.withMemoryRebound(to: CChar.self) { cbor_build_stringn($0.baseAddress, $0.count) }
      }
    case .array(let elements):
      guard let array = cbor_new_definite_array(elements.count) else { Self.outOfMemory() }
      item = array
      for element in elements {
        let child = element.makeItem()
        defer { Self.release(child) }
        guard cbor_array_push(item, child) else { Self.outOfMemory() }  // takes its own reference
      }
    case .map(let pairs):
      guard let map = cbor_new_definite_map(pairs.count) else { Self.outOfMemory() }
      item = map
      // libcbor writes pairs in the order added: add them sorted by their keys' encodings.
      var built: [(key: [UInt8], index: Int, pair: cbor_pair)] = []
      for (index, pair) in pairs.enumerated() {
        let key = pair.key.makeItem()
        built.append((Self.serialize(key), index, cbor_pair(key: key, value: pair.value.makeItem())))
      }
      built.sort { $0.key == $1.key ? $0.index < $1.index : $0.key.lexicographicallyPrecedes($1.key) }
      for entry in built {
        defer {
          Self.release(entry.pair.key)
          Self.release(entry.pair.value)
        }
        guard cbor_map_add(item, entry.pair) else { Self.outOfMemory() }  // takes its own references
      }
    case .tagged(let tag, let content):
      guard let tagItem = cbor_new_tag(tag) else { Self.outOfMemory() }
      item = tagItem
      let child = content.makeItem()
      cbor_tag_set_item(item, child)  // takes its own reference
      Self.release(child)
    case .other: item = cbor_new_null()
    }
    guard let item else { Self.outOfMemory() }
    return item
  }

  private static func outOfMemory() -> Never { fatalError("libcbor could not allocate a CBOR item") }

  /// An integer item of the smallest width (libcbor writes a uint64 item in 9 bytes whatever its value).
  private static func buildInteger(_ n: UInt64, negative: Bool) -> UnsafeMutablePointer<cbor_item_t>? {
    let item: UnsafeMutablePointer<cbor_item_t>?
    switch n {
    case 0...0xff: item = negative ? cbor_build_negint8(UInt8(n)) : cbor_build_uint8(UInt8(n))
    case 0...0xffff: item = negative ? cbor_build_negint16(UInt16(n)) : cbor_build_uint16(UInt16(n))
    case 0...0xffff_ffff: item = negative ? cbor_build_negint32(UInt32(n)) : cbor_build_uint32(UInt32(n))
    default: item = negative ? cbor_build_negint64(n) : cbor_build_uint64(n)
    }
    return item
  }

  static func release(_ item: UnsafeMutablePointer<cbor_item_t>) {
    var reference: UnsafeMutablePointer<cbor_item_t>? = item
    cbor_decref(&reference)
  }
}

extension CBORValue {
  /// An integer map key or value as a signed number (nil when out of Int64's range or not an integer).
  public var integer: Int64? {
    switch self {
    case .unsigned(let n): return n <= UInt64(Int64.max) ? Int64(n) : nil
    case .negative(let n): return n <= UInt64(Int64.max) ? -1 - Int64(n) : nil
    default: return nil
    }
  }

  /// The item for an integer key.
  public static func int(_ value: Int64) -> CBORValue {
    value >= 0 ? .unsigned(UInt64(value)) : .negative(UInt64(-1 - value))
  }
}
