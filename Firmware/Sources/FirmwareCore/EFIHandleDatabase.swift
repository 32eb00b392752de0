/// An EFI_HANDLE: opaque to callers, which only compare it and hand it back.
public typealias EFIHandle = UInt64

/// A protocol installed on a handle: its GUID and the address of its interface structure.
public struct EFIProtocolInterface: Equatable {
  public var guid: EFIGUID
  public var interface: UInt64
  public init(guid: EFIGUID, interface: UInt64) {
    self.guid = guid
    self.interface = interface
  }
}

/// The boot services' protocol database: handles, each with the protocols installed on it,
/// in installation order (so disks are found in PCI order).
///
/// It is generic, as boot loaders expect (gnu-efi finds protocols by LocateHandle, shim 16
/// installs its own with InstallMultipleProtocolInterfaces), and it answers as the
/// specification says: a protocol missing from a handle is EFI_UNSUPPORTED for HandleProtocol,
/// a protocol missing everywhere EFI_NOT_FOUND for the Locate services (systemd-boot and older
/// Linux stubs take any other answer for "present").
public struct EFIHandleDatabase {
  public struct Entry: Equatable {
    public var handle: EFIHandle
    public var protocols: [EFIProtocolInterface]
  }
  public private(set) var entries: [Entry] = []
  private var nextHandle: EFIHandle
  let handleStride: UInt64
  /// Bounds that keep a looping caller from exhausting the firmware's memory.
  public let maximumHandles: Int
  public let maximumProtocolsPerHandle: Int

  /// - Parameters:
  ///   - firstHandle: the first handle value (non-zero; the firmware uses addresses in its own
  ///     image so that a handle is a unique, never-dereferenced pointer).
  ///   - handleStride: the distance between handle values.
  public init(firstHandle: EFIHandle = 0x1000, handleStride: UInt64 = 16,
              maximumHandles: Int = 1024, maximumProtocolsPerHandle: Int = 32) {
    nextHandle = max(firstHandle, 1)
    self.handleStride = max(handleStride, 1)
    self.maximumHandles = maximumHandles
    self.maximumProtocolsPerHandle = maximumProtocolsPerHandle
  }

  /// Whether `handle` exists (has at least one protocol).
  public func contains(_ handle: EFIHandle) -> Bool { entries.contains { $0.handle == handle } }

  /// InstallProtocolInterface / InstallMultipleProtocolInterfaces: installs all of `protocols`
  /// on `handle` (a new handle when nil), or none of them.
  /// - Returns: the handle.
  @discardableResult
  public mutating func install(_ protocols: [EFIProtocolInterface], on handle: EFIHandle? = nil) throws(EFIStatus) -> EFIHandle {
    guard !protocols.isEmpty else { throw .invalidParameter }
    for (n, p) in protocols.enumerated() where protocols[..<n].contains(where: { $0.guid == p.guid }) {
      throw .invalidParameter
    }
    if let handle {
      guard let i = entries.firstIndex(where: { $0.handle == handle }) else { throw .invalidParameter }
      for p in protocols where entries[i].protocols.contains(where: { $0.guid == p.guid }) {
        throw .invalidParameter
      }
      guard entries[i].protocols.count + protocols.count <= maximumProtocolsPerHandle else { throw .outOfResources }
      entries[i].protocols += protocols
      return handle
    }
    guard entries.count < maximumHandles, protocols.count <= maximumProtocolsPerHandle else { throw .outOfResources }
    let new = nextHandle
    nextHandle &+= handleStride
    entries.append(Entry(handle: new, protocols: protocols))
    return new
  }

  /// UninstallProtocolInterface / UninstallMultipleProtocolInterfaces: removes all of
  /// `protocols` (each with the interface it was installed with), or none. A handle left
  /// without protocols ceases to exist.
  public mutating func uninstall(_ protocols: [EFIProtocolInterface], from handle: EFIHandle) throws(EFIStatus) {
    guard let i = entries.firstIndex(where: { $0.handle == handle }) else { throw .invalidParameter }
    for p in protocols where !entries[i].protocols.contains(p) { throw .notFound }
    entries[i].protocols.removeAll { protocols.contains($0) }
    if entries[i].protocols.isEmpty { entries.remove(at: i) }
  }

  /// ReinstallProtocolInterface: replaces the interface of `guid` on `handle`.
  public mutating func reinstall(_ guid: EFIGUID, on handle: EFIHandle, old: UInt64, new: UInt64) throws(EFIStatus) {
    guard let i = entries.firstIndex(where: { $0.handle == handle }) else { throw .invalidParameter }
    guard let j = entries[i].protocols.firstIndex(of: EFIProtocolInterface(guid: guid, interface: old)) else {
      throw .notFound
    }
    entries[i].protocols[j].interface = new
  }

  /// HandleProtocol / OpenProtocol(GET_PROTOCOL): the interface of `guid` on `handle`.
  public func interface(_ guid: EFIGUID, on handle: EFIHandle) throws(EFIStatus) -> UInt64 {
    guard let entry = entries.first(where: { $0.handle == handle }) else { throw .invalidParameter }
    guard let p = entry.protocols.first(where: { $0.guid == guid }) else { throw .unsupported }
    return p.interface
  }

  /// LocateHandle(ByProtocol) / LocateHandleBuffer: the handles that carry `guid`, in order
  /// (all handles when nil).
  public func handles(supporting guid: EFIGUID?) throws(EFIStatus) -> [EFIHandle] {
    let found = entries.filter { e in guid.map { g in e.protocols.contains { $0.guid == g } } ?? true }.map { $0.handle }
    guard !found.isEmpty else { throw .notFound }
    return found
  }

  /// LocateProtocol: the first installed interface of `guid`.
  public func locate(_ guid: EFIGUID) throws(EFIStatus) -> UInt64 {
    for e in entries {
      if let p = e.protocols.first(where: { $0.guid == guid }) { return p.interface }
    }
    throw .notFound
  }

  /// ProtocolsPerHandle: the GUIDs installed on `handle`, in installation order.
  public func protocols(on handle: EFIHandle) throws(EFIStatus) -> [EFIGUID] {
    guard let entry = entries.first(where: { $0.handle == handle }) else { throw .invalidParameter }
    return entry.protocols.map { $0.guid }
  }
}
