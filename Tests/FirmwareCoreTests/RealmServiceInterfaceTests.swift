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
  /// RsiRealmConfig.hash_algo (0 SHA-256, 1 SHA-512).
  var hashAlgorithm: UInt8 = 0
  /// REM0...REM3 as the RMM keeps them: digest-sized, starting at zero.
  var rems: [[UInt8]] = Array(repeating: [], count: 4)
  /// The raw RSI_MEASUREMENT_EXTEND arguments seen.
  var extendArguments: [[UInt64]] = []
  /// RIPAS per 4 KiB granule that was changed.
  var ripas: [UInt64: UInt64] = [:]
  var calls: [UInt32] = []

  /// REM `n` (0...3), zero (of the realm's digest size) until first extended.
  func rem(_ n: Int) -> [UInt8] {
    rems[n].isEmpty ? [UInt8](repeating: 0, count: hashAlgorithm == 0 ? 32 : 64) : rems[n]
  }

  mutating func call(_ function: UInt32, _ a: [UInt64]) -> [UInt64] {
    calls.append(function)
    switch function {
    case RSIFunction.version:
      return [versionStatus, lower, higher]
    case RSIFunction.realmConfig:
      if configStatus == 0, let p = UnsafeMutableRawPointer(bitPattern: UInt(a[0])) {
        p.storeBytes(of: ipaWidth, as: UInt64.self)
        p.storeBytes(of: UInt64(hashAlgorithm), toByteOffset: 8, as: UInt64.self)
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
      if a[0] >= 1 {
        // A REM: its value little-endian in x1...x8, zero-padded to 64 bytes.
        let value = rem(Int(a[0]) - 1) + [UInt8](repeating: 0, count: 64 - rem(Int(a[0]) - 1).count)
        return [0] + (0..<8).map { value.le64(at: $0 * 8)! }
      }
      return [0] + (1...8).map { UInt64($0) * 0x0101_0101_0101_0101 }
    case RSIFunction.measurementExtend:
      // DEN0137 B5.3.6: index 1...4, size <= 64; REM = Hash(REM || the first `size` bytes of x3...x10).
      extendArguments.append(a)
      guard a.count >= 10, a[0] >= 1, a[0] <= 4, a[1] <= 64 else { return [RSIConstant.errorInput] }
      var value: [UInt8] = []
      for w in 2..<10 { value.appendLE(a[w], width: 8) }
      let input = rem(Int(a[0]) - 1) + value.prefix(Int(a[1]))
      rems[Int(a[0]) - 1] = hashAlgorithm == 0 ? SHA256.hash(input) : SHA512.hash(input)
      return [0]
    default:
      return [RSIConstant.errorInput]
    }
  }
}

@Suite struct RealmServiceInterfaceTests {
  let memory = [MemoryRange(base: 0x8000_0000, size: 0x80_0000), MemoryRange(base: 0x9000_0000, size: 0x10_0000)]
  let pool = MemoryRange(base: 0x8010_0000, size: 0x10_4000)

  func run(_ monitor: FakeRealmMonitor, memory: [MemoryRange]? = nil) throws(RSIError) -> (RealmEnvironment, FakeRealmMonitor, UInt64) {
    let memory = memory ?? self.memory
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
    #expect(env.hashAlgorithm == RSIConstant.hashSHA256)
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

  /// RAM may end exactly at the top of the protected half: a 2 GiB Realm at 2 GiB with a 33-bit
  /// IPA space (its end is exclusive); one page more is refused.
  @Test func ramUpToTheTopOfTheProtectedHalf() throws {
    _ = try run(FakeRealmMonitor(), memory: [MemoryRange(base: 0x8000_0000, size: 0x8000_0000)])
    #expect(throws: RSIError.misalignedRange(base: 0x8000_0000, top: 0x1_0000_1000)) {
      try run(FakeRealmMonitor(), memory: [MemoryRange(base: 0x8000_0000, size: 0x8000_1000)])
    }
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

  @Test func readsTheHashAlgorithm() throws {
    var monitor = FakeRealmMonitor()
    monitor.hashAlgorithm = 1
    #expect(try run(monitor).0.hashAlgorithm == RSIConstant.hashSHA512)
  }

  @Test func encodesMeasurementExtend() throws {
    var rsi = RealmServiceInterface(conduit: FakeRealmMonitor())
    let value = (1...33).map { UInt8($0) }
    try rsi.extendMeasurement(index: 2, value: value)
    // x1 index, x2 size, x3...x10 the value little-endian, zero-padded.
    #expect(rsi.conduit.extendArguments == [[
      2, 33, 0x0807_0605_0403_0201, 0x100F_0E0D_0C0B_0A09, 0x1817_1615_1413_1211, 0x201F_1E1D_1C1B_1A19, 0x21, 0, 0, 0,
    ]])
    #expect(rsi.conduit.rems[1] == SHA256.hash([UInt8](repeating: 0, count: 32) + value))
    // REM1 reads back through RSI_MEASUREMENT_READ(2).
    #expect(try rsi.measurement(index: 2) == rsi.conduit.rems[1] + [UInt8](repeating: 0, count: 32))
    try rsi.extendMeasurement(index: 4, value: [UInt8](repeating: 0xFF, count: 64))
    #expect(rsi.conduit.extendArguments.last == [4, 64] + [UInt64](repeating: .max, count: 8))
    try rsi.extendMeasurement(index: 1, value: [])
    #expect(rsi.conduit.extendArguments.last == [1, 0, 0, 0, 0, 0, 0, 0, 0, 0])
  }

  @Test func rejectsBadMeasurementExtends() {
    var rsi = RealmServiceInterface(conduit: FakeRealmMonitor())
    #expect(throws: RSIError.badMeasurement(index: 0, size: 32)) { try rsi.extendMeasurement(index: 0, value: [UInt8](repeating: 0, count: 32)) }
    #expect(throws: RSIError.badMeasurement(index: 5, size: 32)) { try rsi.extendMeasurement(index: 5, value: [UInt8](repeating: 0, count: 32)) }
    #expect(throws: RSIError.badMeasurement(index: 1, size: 65)) { try rsi.extendMeasurement(index: 1, value: [UInt8](repeating: 0, count: 65)) }
    #expect(rsi.conduit.extendArguments.isEmpty)
    var rsi2 = RealmServiceInterface(conduit: RefusingConduit())
    #expect(throws: RSIError.status(function: RSIFunction.measurementExtend, code: RSIConstant.errorState)) {
      try rsi2.extendMeasurement(index: 1, value: [1])
    }
  }

  /// What the firmware measures and where, and the REM values a verifier recomputes.
  @Test func measuredBootFollowsEdk2sMapping() throws {
    let dtb = [UInt8](repeating: 0xD0, count: 300)
    let kernel = (0..<5000).map { UInt8(truncatingIfNeeded: $0) }
    let cmdline = Array("console=ttyS0 root=/dev/vda2".utf8)
    let initrd = [UInt8](repeating: 0x1D, count: 777)
    let items = dtb.withUnsafeBytes { d in
      kernel.withUnsafeBytes { k in
        initrd.withUnsafeBytes { i in MeasuredBoot.measurements(deviceTree: d, kernel: k, commandLine: cmdline, initrd: i) }
      }
    }
    #expect(items.map(\.item) == [.deviceTree, .kernel, .commandLine, .initrd])
    #expect(items.map(\.rem) == [0, 1, 2, 2])
    #expect(items.map(\.digest) == [SHA256.hash(dtb), SHA256.hash(kernel), SHA256.hash(cmdline), SHA256.hash(initrd)])
    #expect(items.map(\.item.name) == ["device tree", "kernel", "command line", "initrd"])

    for algorithm: UInt8 in [0, 1] {
      var monitor = FakeRealmMonitor()
      monitor.hashAlgorithm = algorithm
      var rsi = RealmServiceInterface(conduit: monitor)
      var logged: [BootMeasurement] = []
      try MeasuredBoot.extend(items, rsi: &rsi, extended: { logged.append($0) })
      #expect(logged == items)
      #expect(rsi.conduit.extendArguments.map { $0[0] } == [1, 2, 3, 3])
      #expect(rsi.conduit.extendArguments.map { $0[1] } == [32, 32, 32, 32])
      // REMn = H(H(0 || d1) || d2) ... with the Realm's algorithm over SHA-256 digests.
      func extend(_ rem: [UInt8], _ digest: [UInt8]) -> [UInt8] {
        algorithm == 0 ? SHA256.hash(rem + digest) : SHA512.hash(rem + digest)
      }
      let zero = [UInt8](repeating: 0, count: algorithm == 0 ? 32 : 64)
      #expect(rsi.conduit.rems[0] == extend(zero, SHA256.hash(dtb)))
      #expect(rsi.conduit.rems[1] == extend(zero, SHA256.hash(kernel)))
      #expect(rsi.conduit.rems[2] == extend(extend(zero, SHA256.hash(cmdline)), SHA256.hash(initrd)))
      #expect(rsi.conduit.rems[3].isEmpty)
      // what realm-run predicts: the same registers, REM3 untouched (zeros)
      let algo: RealmHashAlgorithm = algorithm == 0 ? .sha256 : .sha512
      #expect(MeasuredBoot.registers(after: items, algorithm: algo) == Array(rsi.conduit.rems[0..<3]) + [zero])
    }
    #expect(MeasuredBoot.registers(after: [], algorithm: .sha512) == [[UInt8]](repeating: [UInt8](repeating: 0, count: 64), count: 4))
  }

  @Test func measuredBootSkipsAnEmptyCommandLineAndNoInitrd() {
    let kernel = [UInt8](repeating: 7, count: 64)
    let items = kernel.withUnsafeBytes { k in
      MeasuredBoot.measurements(deviceTree: k, kernel: k, commandLine: [], initrd: UnsafeRawBufferPointer(start: nil, count: 0))
    }
    #expect(items.map(\.item) == [.deviceTree, .kernel])
  }

  @Test func measuredBootStopsAtTheFirstFailure() {
    var rsi = RealmServiceInterface(conduit: RefusingConduit())
    var logged = 0
    #expect(throws: RSIError.status(function: RSIFunction.measurementExtend, code: RSIConstant.errorState)) {
      try MeasuredBoot.extend([BootMeasurement(item: .kernel, digest: [1])], rsi: &rsi, extended: { _ in logged += 1 })
    }
    #expect(logged == 0)
  }
}

/// A monitor that refuses every call with RSI_ERROR_STATE.
struct RefusingConduit: SMCConduit {
  mutating func call(_ function: UInt32, _ arguments: [UInt64]) -> [UInt64] { [RSIConstant.errorState] }
}
