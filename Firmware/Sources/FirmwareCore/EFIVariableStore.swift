/// Variable attributes (UEFI 2.10 §8.2, EFI_VARIABLE_*).
public struct EFIVariableAttributes: OptionSet, Equatable, Hashable, Sendable {
  public let rawValue: UInt32
  public init(rawValue: UInt32) { self.rawValue = rawValue }
  public static let nonVolatile = EFIVariableAttributes(rawValue: 0x1)
  public static let bootServiceAccess = EFIVariableAttributes(rawValue: 0x2)
  public static let runtimeAccess = EFIVariableAttributes(rawValue: 0x4)
  public static let hardwareErrorRecord = EFIVariableAttributes(rawValue: 0x8)
  public static let authenticatedWriteAccess = EFIVariableAttributes(rawValue: 0x10)
  public static let timeBasedAuthenticatedWriteAccess = EFIVariableAttributes(rawValue: 0x20)
  public static let appendWrite = EFIVariableAttributes(rawValue: 0x40)
  public static let enhancedAuthenticatedAccess = EFIVariableAttributes(rawValue: 0x80)

  /// The attributes a variable keeps (APPEND_WRITE only says how to write).
  static let stored: EFIVariableAttributes = [.nonVolatile, .bootServiceAccess, .runtimeAccess]
  /// Attributes this store refuses: it has no authenticated or hardware-error variables.
  static let unsupported: EFIVariableAttributes = [.hardwareErrorRecord, .authenticatedWriteAccess,
                                                   .timeBasedAuthenticatedWriteAccess, .enhancedAuthenticatedAccess]
}

/// One variable: a UCS-2 name (without its terminator) in a vendor's namespace.
public struct EFIVariable: Equatable {
  public var name: [UInt16]
  public var vendor: EFIGUID
  public var attributes: EFIVariableAttributes
  public var data: [UInt8]

  public init(name: [UInt16], vendor: EFIGUID, attributes: EFIVariableAttributes, data: [UInt8]) {
    self.name = name
    self.vendor = vendor
    self.attributes = attributes
    self.data = data
  }

  /// What the variable counts against the store's capacity (name with terminator, data, and a
  /// fixed overhead for its GUID, attributes and sizes).
  var storageSize: Int { (name.count + 1) * 2 + data.count + 32 }
}

/// The runtime services' variable store, in RAM: GetVariable, SetVariable,
/// GetNextVariableName and QueryVariableInfo with the specification's checks.
///
/// Nothing survives a reset. Writes with EFI_VARIABLE_NON_VOLATILE are accepted and kept for the
/// boot (shim mirrors its MOK lists, systemd-boot records its Loader* variables; both only need
/// them to read back), so a boot loader sees a working store. Authenticated variables are
/// refused, and absent SecureBoot and SetupMode mean Secure Boot is off.
public struct EFIVariableStore {
  public private(set) var variables: [EFIVariable] = []
  /// The bytes all variables may use together, and the largest one (QueryVariableInfo).
  public let maximumStorage: Int
  public let maximumVariableSize: Int
  /// After ExitBootServices only variables with runtime access exist for callers.
  public private(set) var atRuntime = false

  public init(maximumStorage: Int = 128 * 1024, maximumVariableSize: Int = 32 * 1024) {
    self.maximumStorage = maximumStorage
    self.maximumVariableSize = maximumVariableSize
  }

  /// Bytes in use.
  public var usedStorage: Int { variables.reduce(0) { $0 + $1.storageSize } }

  public mutating func exitBootServices() { atRuntime = true }

  /// GetVariable.
  public func get(name: [UInt16], vendor: EFIGUID) throws(EFIStatus) -> EFIVariable {
    guard !name.isEmpty else { throw .invalidParameter }
    guard let i = index(name, vendor) else { throw .notFound }
    return variables[i]
  }

  /// SetVariable: creates, replaces, appends to (APPEND_WRITE) or deletes (no data, or no access
  /// attributes) a variable.
  public mutating func set(name: [UInt16], vendor: EFIGUID, attributes: EFIVariableAttributes,
                           data: [UInt8]) throws(EFIStatus) {
    guard !name.isEmpty, !name.contains(0) else { throw .invalidParameter }
    guard attributes.isDisjoint(with: EFIVariableAttributes.unsupported) else { throw .unsupported }
    // Runtime access needs boot-service access; at runtime only runtime variables may be written.
    if attributes.contains(.runtimeAccess) && !attributes.contains(.bootServiceAccess) { throw .invalidParameter }
    if atRuntime && !attributes.isEmpty && !attributes.contains(.runtimeAccess) { throw .invalidParameter }
    let kept = attributes.intersection(EFIVariableAttributes.stored)
    let append = attributes.contains(.appendWrite)
    let existing = index(name, vendor)
    if let i = existing, !kept.isEmpty, variables[i].attributes != kept { throw .invalidParameter }

    if kept.isEmpty || (data.isEmpty && !append) {  // delete
      guard let i = existing else { throw .notFound }
      variables.remove(at: i)
      return
    }
    var variable = EFIVariable(name: name, vendor: vendor, attributes: kept, data: data)
    if append, let i = existing {
      variable.data = variables[i].data + data
    }
    let others = usedStorage - (existing.map { variables[$0].storageSize } ?? 0)
    guard variable.storageSize <= maximumVariableSize, others + variable.storageSize <= maximumStorage else {
      throw .outOfResources
    }
    if let i = existing { variables[i] = variable } else { variables.append(variable) }
  }

  /// GetNextVariableName: the variable after `name` in `vendor` (an empty name starts the walk).
  public func nextName(after name: [UInt16], vendor: EFIGUID) throws(EFIStatus) -> (name: [UInt16], vendor: EFIGUID) {
    var start = 0
    if !name.isEmpty {
      guard let i = index(name, vendor) else { throw .invalidParameter }
      start = i + 1
    }
    for v in variables[start...] where visible(v) { return (v.name, v.vendor) }
    throw .notFound
  }

  /// QueryVariableInfo: (maximum storage, remaining, largest variable) for variables of `attributes`.
  public func query(attributes: EFIVariableAttributes) throws(EFIStatus) -> (maximumStorage: UInt64,
                                                                            remaining: UInt64,
                                                                            maximumVariableSize: UInt64) {
    guard attributes.contains(.bootServiceAccess) || attributes.contains(.runtimeAccess) else { throw .invalidParameter }
    if attributes.contains(.runtimeAccess) && !attributes.contains(.bootServiceAccess) { throw .invalidParameter }
    guard attributes.isDisjoint(with: EFIVariableAttributes.unsupported) else { throw .unsupported }
    return (UInt64(maximumStorage), UInt64(max(0, maximumStorage - usedStorage)), UInt64(maximumVariableSize))
  }

  private func visible(_ v: EFIVariable) -> Bool { !atRuntime || v.attributes.contains(.runtimeAccess) }

  private func index(_ name: [UInt16], _ vendor: EFIGUID) -> Int? {
    variables.firstIndex { $0.vendor == vendor && $0.name == name && visible($0) }
  }
}
