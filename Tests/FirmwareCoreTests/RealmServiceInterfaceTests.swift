import Testing
import FirmwareCore

/// A fake Realm Management Monitor answering RSI calls the way the RMM 1.0 specification says.
struct FakeRealmMonitor: SMCConduit {
  var ipaWidth: UInt64 = 33
  var versionStatus: UInt64 = 0
  var lower: UInt64 = 0x10000
  var higher: UInt64 = 0x10000
  /// Largest RIPAS change per IPA_STATE_SET call (partial progress).
  var step: UInt64 = 0x20_0000
  var rejectAt: UInt64? = nil
  var stall = false
  var overshoot = false
  var configStatus: UInt64 = 0
  /// RIPAS per 4 KiB granule that was changed.
  var ripas: [UInt64: UInt64] = [:]
  var calls: [UInt32] = []

  mutating func call(_ function: UInt32, _ a: [UInt64]) -> [UInt64] {
    calls.append(function)
    switch function {
    case RSIFunction.version:
      return [versionStatus, lower, higher]
    case RSIFunction.realmConfig:
      if configStatus == 0, let p = UnsafeMutableRawPointer(bitPattern: UInt(a[0])) {
        p.storeBytes(of: ipaWidth, as: UInt64.self)
        p.storeBytes(of: UInt64(0), toByteOffset: 8, as: UInt64.self)
      }
      return [configStatus]
    case RSIFunction.ipaStateSet:
      let (base, top, state) = (a[0], a[1], a[2])
      guard base < top, top <= 1 << (ipaWidth - 1) else { return [RSIConstant.errorInput] }
      if let r = rejectAt, r == base { return [0, base, RSIConstant.responseReject] }
      if stall { return [0, base, 0] }
      if overshoot { return [0, top + 0x1000, 0] }
      var newBase = min(top, base + step)
      if let r = rejectAt, r > base, r < newBase { newBase = r }
      var g = base
      while g < newBase { ripas[g] = state; g += 0x1000 }
      return [0, newBase, 0]
    case RSIFunction.measurementRead:
      guard a[0] <= 4 else { return [RSIConstant.errorInput] }
      return [0] + (1...8).map { UInt64($0) * 0x0101_0101_0101_0101 }
    default:
      return [RSIConstant.errorInput]
    }
  }
}

@Suite struct RealmServiceInterfaceTests {
  let memory = [MemoryRange(base: 0x8000_0000, size: 0x80_0000), MemoryRange(base: 0x9000_0000, size: 0x10_0000)]
  let pool = MemoryRange(base: 0x8010_0000, size: 0x10_4000)

  func run(_ monitor: FakeRealmMonitor) throws(RSIError) -> (RealmEnvironment, FakeRealmMonitor, UInt64) {
    var rsi = RealmServiceInterface(conduit: monitor)
    let buffer = UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 4096)
    defer { buffer.deallocate() }
    var seenWidth: UInt64 = 0
    let env = try RealmBootstrap.run(rsi: &rsi, memory: memory, configBuffer: buffer,
                                     configBufferIPA: UInt64(UInt(bitPattern: buffer)), dmaPool: pool,
                                     configured: { seenWidth = $0 })
    return (env, rsi.conduit, seenWidth)
  }

  @Test func bringsUpARealm() throws {
    let (env, monitor, width) = try run(FakeRealmMonitor())
    #expect(env.ipaWidth == 33 && width == 33)
    #expect(env.sharedBit == 1 << 32)
    #expect(env.versionLower == 0x10000)
    #expect(env.rim.count == 64 && env.rim[0] == 1 && env.rim[63] == 8)
    #expect(ByteString.hex(bytes: Array(env.rim[0..<2])) == "0101")
    // Every RAM granule is RIPAS RAM except the DMA pool, which is EMPTY.
    for g in stride(from: UInt64(0x8000_0000), to: 0x8080_0000, by: 0x1000) {
      let inPool = g >= pool.base && g < pool.end
      #expect(monitor.ripas[g] == (inPool ? RSIConstant.ripasEmpty : RSIConstant.ripasRAM))
    }
    #expect(monitor.ripas[0x9000_0000] == RSIConstant.ripasRAM && monitor.ripas[0x900F_F000] == RSIConstant.ripasRAM)
    #expect(monitor.ripas[0x9010_0000] == nil)
    // Partial progress: 8 MiB in 2 MiB steps took four calls for the first range, then one each.
    #expect(monitor.calls.filter { $0 == RSIFunction.ipaStateSet }.count == 4 + 1 + 1)
    #expect(monitor.calls.first == RSIFunction.version && monitor.calls.last == RSIFunction.measurementRead)
  }

  @Test func acceptsAny1xMonitorAndRejectsOthers() throws {
    var newer = FakeRealmMonitor()
    (newer.versionStatus, newer.lower, newer.higher) = (RSIConstant.errorInput, 0x10001, 0x10002)
    #expect(try run(newer).0.versionLower == 0x10001)
    var v2 = FakeRealmMonitor()
    (v2.versionStatus, v2.lower, v2.higher) = (RSIConstant.errorInput, 0x20000, 0x20000)
    #expect(throws: RSIError.unsupportedVersion(lower: 0x20000, higher: 0x20000)) { try run(v2) }
  }

  @Test func reportsRSIErrors() {
    var reject = FakeRealmMonitor()
    reject.rejectAt = 0x8040_0000
    #expect(throws: RSIError.rejected(base: 0x8040_0000)) { try run(reject) }
    var stall = FakeRealmMonitor()
    stall.stall = true
    #expect(throws: RSIError.noProgress(base: 0x8000_0000)) { try run(stall) }
    var overshoot = FakeRealmMonitor()
    overshoot.overshoot = true
    #expect(throws: RSIError.badProgress(base: 0x8000_0000, newBase: 0x8080_1000)) { try run(overshoot) }
    var config = FakeRealmMonitor()
    config.configStatus = RSIConstant.errorInput
    #expect(throws: RSIError.status(function: RSIFunction.realmConfig, code: 1)) { try run(config) }
    var width = FakeRealmMonitor()
    width.ipaWidth = 60
    #expect(throws: RSIError.badIPAWidth(60)) { try run(width) }
    // RAM above the protected half cannot be made RIPAS RAM.
    var narrow = FakeRealmMonitor()
    narrow.ipaWidth = 32
    #expect(throws: RSIError.misalignedRange(base: 0x8000_0000, top: 0x8080_0000)) { try run(narrow) }
  }

  @Test func probesOnlyWithSMCAndRME() {
    let rme: UInt64 = 1 << 52
    #expect(RealmBootstrap.shouldProbe(conduit: .smc, idAA64PFR0: rme))
    #expect(!RealmBootstrap.shouldProbe(conduit: .hvc, idAA64PFR0: rme))
    #expect(!RealmBootstrap.shouldProbe(conduit: .smc, idAA64PFR0: 0x1111))
    #expect(!RealmBootstrap.shouldProbe(conduit: nil, idAA64PFR0: rme))
  }

  @Test func setRIPASRejectsMisalignedRanges() {
    var rsi = RealmServiceInterface(conduit: FakeRealmMonitor())
    #expect(throws: RSIError.misalignedRange(base: 0x123, top: 0x2000)) {
      try rsi.setRIPAS(base: 0x123, top: 0x2000, state: RSIConstant.ripasRAM)
    }
  }
}
