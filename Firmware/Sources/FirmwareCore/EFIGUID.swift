/// PLACEHOLDER (replaced at merge by the PE helper's EFIGUID.swift).
public struct EFIGUID: Equatable, Hashable, Sendable {
  public var bytes: (UInt64, UInt64)
  public init(_ a: UInt32, _ b: UInt16, _ c: UInt16, _ d: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8)) {
    bytes = (UInt64(a) | UInt64(b) << 32 | UInt64(c) << 48,
             UInt64(d.0) | UInt64(d.1) << 8 | UInt64(d.2) << 16 | UInt64(d.3) << 24 | UInt64(d.4) << 32 | UInt64(d.5) << 40 | UInt64(d.6) << 48 | UInt64(d.7) << 56)
  }
  public static func == (l: EFIGUID, r: EFIGUID) -> Bool { l.bytes == r.bytes }
  public func hash(into h: inout Hasher) { h.combine(bytes.0); h.combine(bytes.1) }
}
