import Testing
import FirmwareCore

private let global = EFIGUID(0x8be4_df61, 0x93ca, 0x11d2, (0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03, 0x2b, 0x8c))
private let shimLock = EFIGUID(0x6055_4a50, 0xe046, 0x4300, (0xab, 0xb6, 0x3d, 0xd8, 0x10, 0xdd, 0x8b, 0x23))
private func ucs2(_ s: String) -> [UInt16] { Array(s.utf16) }
private let bsrt: EFIVariableAttributes = [.bootServiceAccess, .runtimeAccess]

@Suite struct EFIVariableStoreTests {
  @Test func setGetReplaceAndDelete() throws {
    var store = EFIVariableStore()
    #expect(throws: EFIStatus.notFound) { try store.get(name: ucs2("SecureBoot"), vendor: global) }
    try store.set(name: ucs2("MokListRT"), vendor: shimLock, attributes: bsrt, data: [1, 2, 3])
    #expect(try store.get(name: ucs2("MokListRT"), vendor: shimLock) ==
            EFIVariable(name: ucs2("MokListRT"), vendor: shimLock, attributes: bsrt, data: [1, 2, 3]))
    // Names are case-sensitive and per vendor.
    #expect(throws: EFIStatus.notFound) { try store.get(name: ucs2("moklistrt"), vendor: shimLock) }
    #expect(throws: EFIStatus.notFound) { try store.get(name: ucs2("MokListRT"), vendor: global) }
    try store.set(name: ucs2("MokListRT"), vendor: shimLock, attributes: bsrt, data: [9])
    #expect(try store.get(name: ucs2("MokListRT"), vendor: shimLock).data == [9])
    // Deleting: no data, or no access attributes.
    try store.set(name: ucs2("MokListRT"), vendor: shimLock, attributes: bsrt, data: [])
    #expect(throws: EFIStatus.notFound) { try store.get(name: ucs2("MokListRT"), vendor: shimLock) }
    try store.set(name: ucs2("A"), vendor: global, attributes: .bootServiceAccess, data: [1])
    try store.set(name: ucs2("A"), vendor: global, attributes: [], data: [1])
    #expect(store.variables.isEmpty)
    #expect(throws: EFIStatus.notFound) { try store.set(name: ucs2("A"), vendor: global, attributes: [], data: []) }
  }

  @Test func nonVolatileWritesAreKeptForTheBoot() throws {
    var store = EFIVariableStore()
    try store.set(name: ucs2("SbatLevel"), vendor: shimLock, attributes: [.nonVolatile, .bootServiceAccess], data: [0x73])
    #expect(try store.get(name: ucs2("SbatLevel"), vendor: shimLock).attributes == [.nonVolatile, .bootServiceAccess])
  }

  @Test func refusesWhatTheSpecificationRefuses() throws {
    var store = EFIVariableStore()
    #expect(throws: EFIStatus.invalidParameter) { try store.set(name: [], vendor: global, attributes: bsrt, data: [1]) }
    #expect(throws: EFIStatus.invalidParameter) { try store.set(name: [0x41, 0, 0x42], vendor: global, attributes: bsrt, data: [1]) }
    #expect(throws: EFIStatus.invalidParameter) { try store.set(name: ucs2("X"), vendor: global, attributes: .runtimeAccess, data: [1]) }
    for unsupported in [EFIVariableAttributes.authenticatedWriteAccess, .timeBasedAuthenticatedWriteAccess,
                        .enhancedAuthenticatedAccess, .hardwareErrorRecord] {
      #expect(throws: EFIStatus.unsupported) {
        try store.set(name: ucs2("X"), vendor: global, attributes: bsrt.union(unsupported), data: [1])
      }
    }
    // Existing variables keep their attributes.
    try store.set(name: ucs2("X"), vendor: global, attributes: bsrt, data: [1])
    #expect(throws: EFIStatus.invalidParameter) {
      try store.set(name: ucs2("X"), vendor: global, attributes: .bootServiceAccess, data: [2])
    }
    #expect(throws: EFIStatus.invalidParameter) { try store.get(name: [], vendor: global) }
  }

  @Test func appendWriteExtendsOrCreates() throws {
    var store = EFIVariableStore()
    let append = bsrt.union(.appendWrite)
    try store.set(name: ucs2("L"), vendor: global, attributes: append, data: [1, 2])
    try store.set(name: ucs2("L"), vendor: global, attributes: append, data: [3])
    try store.set(name: ucs2("L"), vendor: global, attributes: append, data: [])  // appending nothing keeps it
    let v = try store.get(name: ucs2("L"), vendor: global)
    #expect(v.data == [1, 2, 3] && v.attributes == bsrt)
  }

  @Test func getNextVariableNameWalksEveryVariableOnce() throws {
    var store = EFIVariableStore()
    let names = [("Boot0000", global), ("BootOrder", global), ("MokListRT", shimLock)]
    for (n, v) in names { try store.set(name: ucs2(n), vendor: v, attributes: bsrt, data: [1]) }
    var seen: [String] = []
    var current: (name: [UInt16], vendor: EFIGUID) = ([], global)
    while true {
      do { current = try store.nextName(after: current.name, vendor: current.vendor) } catch {
        #expect(error == .notFound)
        break
      }
      seen.append(String(decoding: current.name, as: UTF16.self))
    }
    #expect(seen == names.map(\.0))
    #expect(throws: EFIStatus.invalidParameter) { try store.nextName(after: ucs2("Nope"), vendor: global) }
  }

  @Test func atRuntimeOnlyRuntimeVariablesExist() throws {
    var store = EFIVariableStore()
    try store.set(name: ucs2("BS"), vendor: global, attributes: .bootServiceAccess, data: [1])
    try store.set(name: ucs2("RT"), vendor: global, attributes: bsrt, data: [2])
    store.exitBootServices()
    #expect(throws: EFIStatus.notFound) { try store.get(name: ucs2("BS"), vendor: global) }
    #expect(try store.get(name: ucs2("RT"), vendor: global).data == [2])
    #expect(try store.nextName(after: [], vendor: global).name == ucs2("RT"))
    #expect(throws: EFIStatus.invalidParameter) {
      try store.set(name: ucs2("New"), vendor: global, attributes: .bootServiceAccess, data: [1])
    }
    try store.set(name: ucs2("New"), vendor: global, attributes: bsrt, data: [1])
  }

  @Test func capacityIsBoundedAndReported() throws {
    var store = EFIVariableStore(maximumStorage: 1024, maximumVariableSize: 512)
    let info = try store.query(attributes: bsrt)
    #expect(info.maximumStorage == 1024 && info.remaining == 1024 && info.maximumVariableSize == 512)
    #expect(throws: EFIStatus.outOfResources) {
      try store.set(name: ucs2("Big"), vendor: global, attributes: bsrt, data: [UInt8](repeating: 0, count: 500))
    }
    try store.set(name: ucs2("A"), vendor: global, attributes: bsrt, data: [UInt8](repeating: 0, count: 400))
    try store.set(name: ucs2("B"), vendor: global, attributes: bsrt, data: [UInt8](repeating: 0, count: 400))
    #expect(throws: EFIStatus.outOfResources) {
      try store.set(name: ucs2("C"), vendor: global, attributes: bsrt, data: [UInt8](repeating: 0, count: 200))
    }
    // Replacing a variable counts only the difference.
    try store.set(name: ucs2("B"), vendor: global, attributes: bsrt, data: [UInt8](repeating: 1, count: 420))
    #expect(try store.query(attributes: .bootServiceAccess).remaining == UInt64(1024 - store.usedStorage))
    #expect(throws: EFIStatus.invalidParameter) { try store.query(attributes: []) }
    #expect(throws: EFIStatus.invalidParameter) { try store.query(attributes: .runtimeAccess) }
  }
}

private let loadedImage = EFIGUID(0x5b1b_31a1, 0x9562, 0x11d2, (0x8e, 0x3f, 0x00, 0xa0, 0xc9, 0x69, 0x72, 0x3b))
private let devicePath = EFIGUID(0x0957_6e91, 0x6d3f, 0x11d2, (0x8e, 0x39, 0x00, 0xa0, 0xc9, 0x69, 0x72, 0x3b))
private let blockIO = EFIGUID(0x964e_5b21, 0x6459, 0x11d2, (0x8e, 0x39, 0x00, 0xa0, 0xc9, 0x69, 0x72, 0x3b))

@Suite struct EFIHandleDatabaseTests {
  @Test func installFindAndLocate() throws {
    var db = EFIHandleDatabase()
    let disk0 = try db.install([.init(guid: devicePath, interface: 0x100), .init(guid: blockIO, interface: 0x200)])
    let disk1 = try db.install([.init(guid: devicePath, interface: 0x110), .init(guid: blockIO, interface: 0x210)])
    let image = try db.install([.init(guid: loadedImage, interface: 0x300)])
    #expect(Set([disk0, disk1, image]).count == 3 && !db.contains(0))
    #expect(try db.interface(blockIO, on: disk1) == 0x210)
    #expect(throws: EFIStatus.unsupported) { try db.interface(blockIO, on: image) }
    #expect(throws: EFIStatus.invalidParameter) { try db.interface(blockIO, on: 0xdead) }
    #expect(try db.handles(supporting: blockIO) == [disk0, disk1])  // installation order
    #expect(try db.handles(supporting: nil) == [disk0, disk1, image])
    #expect(try db.locate(blockIO) == 0x200)
    #expect(throws: EFIStatus.notFound) { try db.locate(EFIGUID(1, 2, 3, (4, 5, 6, 7, 8, 9, 10, 11))) }
    #expect(throws: EFIStatus.notFound) { try db.handles(supporting: EFIGUID(1, 2, 3, (4, 5, 6, 7, 8, 9, 10, 11))) }
    #expect(try db.protocols(on: disk0) == [devicePath, blockIO])
  }

  @Test func installIsAllOrNothing() throws {
    var db = EFIHandleDatabase()
    let h = try db.install([.init(guid: devicePath, interface: 0x100)])
    #expect(throws: EFIStatus.invalidParameter) {
      try db.install([.init(guid: blockIO, interface: 1), .init(guid: devicePath, interface: 2)], on: h)
    }
    #expect(throws: EFIStatus.invalidParameter) {
      try db.install([.init(guid: blockIO, interface: 1), .init(guid: blockIO, interface: 2)])
    }
    #expect(throws: EFIStatus.invalidParameter) { try db.install([.init(guid: blockIO, interface: 1)], on: 0x999) }
    #expect(throws: EFIStatus.invalidParameter) { try db.install([]) }
    #expect(try db.protocols(on: h) == [devicePath] && db.entries.count == 1)
    try db.install([.init(guid: blockIO, interface: 0x200)], on: h)
    #expect(try db.protocols(on: h) == [devicePath, blockIO])
  }

  @Test func uninstallAndReinstall() throws {
    var db = EFIHandleDatabase()
    let h = try db.install([.init(guid: devicePath, interface: 0x100), .init(guid: blockIO, interface: 0x200)])
    #expect(throws: EFIStatus.notFound) { try db.uninstall([.init(guid: blockIO, interface: 0x999)], from: h) }
    try db.reinstall(blockIO, on: h, old: 0x200, new: 0x201)
    #expect(try db.interface(blockIO, on: h) == 0x201)
    #expect(throws: EFIStatus.notFound) { try db.reinstall(blockIO, on: h, old: 0x200, new: 0x202) }
    try db.uninstall([.init(guid: blockIO, interface: 0x201)], from: h)
    #expect(try db.protocols(on: h) == [devicePath])
    // The last protocol gone, the handle is gone.
    try db.uninstall([.init(guid: devicePath, interface: 0x100)], from: h)
    #expect(!db.contains(h))
    #expect(throws: EFIStatus.invalidParameter) { try db.uninstall([.init(guid: devicePath, interface: 0x100)], from: h) }
  }

  @Test func boundsStopARunawayCaller() throws {
    var db = EFIHandleDatabase(maximumHandles: 8, maximumProtocolsPerHandle: 2)
    for n in 0..<8 { try db.install([.init(guid: blockIO, interface: UInt64(n))]) }
    #expect(throws: EFIStatus.outOfResources) { try db.install([.init(guid: blockIO, interface: 9)]) }
    let h = try db.handles(supporting: blockIO)[0]
    try db.install([.init(guid: devicePath, interface: 1)], on: h)
    #expect(throws: EFIStatus.outOfResources) { try db.install([.init(guid: loadedImage, interface: 1)], on: h) }
  }
}
