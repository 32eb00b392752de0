// libFuzzer entry for the CCA attestation token decoder (`Scripts/fuzz-devices --target cca-token`):
// the input is a whole token, as `realm-run verify` reads it from a file a Realm (or anyone) wrote.
//
// Invariants: decoding ends in a token or a CCATokenError, never a crash, a hang or an allocation
// beyond a small multiple of the input (libFuzzer's -malloc_limit_mb catches those); a decoded token
// has the sizes its claims must have; any CBOR the decoder accepts re-encodes (CBORValue.encoded:
// deterministic, maps sorted by encoded key) to bytes that decode to the same value with its maps
// sorted, and encode again to the same bytes (unless it holds a tag 6-20 below the top: libcbor 0.8
// reads those from a two-byte head but refuses the one-byte head it writes for them).
import Attestation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
  let bytes = Array(UnsafeBufferPointer(start: data, count: size))
  if let token = try? CCAToken(decoding: bytes) {
    let realm = token.realmClaims
    invariant(token.platform.signature.count == 96 && token.realm.signature.count == 96, "a signature that is not 96 bytes")
    invariant(realm.challenge.count == 64 && realm.personalization.count == 64, "a challenge or RPV that is not 64 bytes")
    invariant(realm.rems.count == 4, "\(realm.rems.count) REMs")
    invariant(realm.attestationKey.point.count == 97 && realm.attestationKey.point[0] == 4, "a RAK that is not an uncompressed point")
    invariant(token.realm.signedBytes.count > token.realm.payload.count, "a Sig_structure shorter than its payload")
  }
  if let value = try? CBORValue.decode(bytes), !holdsSmallTag(value, atTop: true) {
    let encoded = value.encoded()
    let again = try? CBORValue.decode(encoded)
    invariant(again == sortingMaps(value), "a decoded item does not survive re-encoding")
    invariant(again?.encoded() == encoded, "a deterministic encoding that re-encodes differently")
  }
  return 0
}

/// Whether `value` holds a tag 6-20 other than at the top.
func holdsSmallTag(_ value: CBORValue, atTop: Bool) -> Bool {
  switch value {
  case .tagged(let tag, let content): return (!atTop && (6...20).contains(tag)) || holdsSmallTag(content, atTop: false)
  case .array(let elements): return elements.contains { holdsSmallTag($0, atTop: false) }
  case .map(let pairs): return pairs.contains { holdsSmallTag($0.key, atTop: false) || holdsSmallTag($0.value, atTop: false) }
  default: return false
  }
}

/// `value` with every map's pairs in the deterministic order: by their keys' encodings, pairs with
/// equal keys in their order.
func sortingMaps(_ value: CBORValue) -> CBORValue {
  switch value {
  case .tagged(let tag, let content): return .tagged(tag, sortingMaps(content))
  case .array(let elements): return .array(elements.map(sortingMaps))
  case .map(let pairs):
    let sorted = pairs.enumerated().map { (key: $0.element.key.encoded(), index: $0.offset, pair: $0.element) }
      .sorted { $0.key == $1.key ? $0.index < $1.index : $0.key.lexicographicallyPrecedes($1.key) }
    return .map(sorted.map { (key: sortingMaps($0.pair.key), value: sortingMaps($0.pair.value)) })
  default: return value
  }
}
