import DeviceTree
import Devices
import Dispatch
import GuestMemory
import KVM
import Logging
import NineP
import Platform
import Synchronization
import VirtIO
import CKVM

/// A machine: a KVM VM with its RAM, vCPUs, interrupt controller and devices, ready to run.
///
/// ``init(config:console:logger:)`` builds it in one fixed order, listed there step by step
/// (kvmtool's init lists, made explicit).
public final class Machine: @unchecked Sendable {
  public let config: MachineConfig
  /// The DTB exactly as the guest receives it (padded to its 64 KiB slot).
  public let deviceTree: [UInt8]
  public let layout: BootLayout

  let system: KVMSystem
  let vm: VirtualMachine
  let memory: GuestMemory
  let gic: VGICv3
  let vcpus: [VCPU]
  let bus: MMIOBus
  let uart: UART8250
  let bootStatus = BootStatus()
  let devices: MachineDevices
  let console: TerminalConsole
  let ipa: IPALayout
  /// The Realm calls for this host's CCA generation; `nil` for a normal VM.
  let realm: RealmLifecycle?
  let guestMemfd: Int32?
  let logger: Logger
  let canInjectAborts: Bool

  private let outcome = Mutex<Result<Outcome, VMMError>?>(nil)
  private let finished = DispatchSemaphore(value: 0)
  private let stopping = Atomic<Bool>(false)
  private let unhandledAccesses = Atomic<Int>(0)

  /// Builds the machine. `kvm` replaces `/dev/kvm` (tests pass one over recorded system calls;
  /// the host architecture check is then skipped).
  ///
  /// The steps, in order; each throws its own error. Everything about the user's files is checked
  /// before any KVM object exists, and the images are loaded (and, for a Realm, measured) in the
  /// order `realm-run measure` assumes.
  public init(
    config: MachineConfig, console: TerminalConsole, logger: Logger = Logger(label: "realm-run"),
    kvm: KVMSystem? = nil
  ) throws(VMMError) {
    self.config = config
    self.console = console
    self.logger = logger
    var steps = StartupSteps()
    // 1. KVM; for a Realm, this host's CCA UAPI generation (a host without CCA is told so at once,
    //    before any file is read).
    let system = try Self.openKVM(kvm)
    let realm = try config.realm ? Self.realmLifecycle(config.realmOptions, system, probeAsArm64: kvm != nil || Self.hostIsArm64) : nil
    (self.system, self.realm) = (system, realm)
    steps.finished("kvm")
    // 2. The boot images read and placed, the DTB built, the disks opened: a bad file fails here.
    let images = try LaunchImages(config: config)
    layout = images.layout
    deviceTree = images.deviceTree
    let disks = try Self.devices { () throws(MachineDevicesError) in try MachineDevices.openDisks(config) }
    let shares = try Self.devices { () throws(MachineDevicesError) in try MachineDevices.openShares(config) }
    let networks = try Self.devices { () throws(MachineDevicesError) in
      try MachineDevices.openNetworks(config, log: { [logger] in logger.debug("\($0)") })
    }
    let ipa = try Self.ipaLayout(config, maxIPABits: system.maxIPABits)
    self.ipa = ipa
    steps.finished("images")
    // 3. The VM, sized to the IPA space the memory map needs (a Realm's doubled for the shared half).
    let vm = try Self.kvm { () throws(KVMError) in try system.createVM(type: realm?.vmType(ipaBits: ipa.bits) ?? UInt(ipa.bits)) }
    self.vm = vm
    canInjectAborts = vm.checkExtension(UInt(CKVM_CAP_ARM_INJECT_EXT_DABT)) > 0 || realm != nil
    steps.finished("vm")
    // 4. Guest RAM and its memory slot (a Realm's backed by guest_memfd).
    (memory, guestMemfd) = try Self.createRAM(config, vm: vm, realm: realm)
    steps.finished("ram")
    // 5. The interrupt controller, before the vCPUs as KVM requires for GICv3.
    let gic = try Self.kvm { () throws(KVMError) in
      try VGICv3(vm: vm, distributor: MemoryMap.gicDistributorBase, redistributors: MemoryMap.gicRedistributorBase(cpus: config.cpus))
    }
    self.gic = gic
    steps.finished("gic")
    // 6. The vCPUs (on generation A hosts, RECs from KVM_ARM_VCPU_INIT on).
    let vcpus = try Self.kvm { () throws(KVMError) in try Self.createVCPUs(config, vm: vm, realm: realm) }
    self.vcpus = vcpus
    steps.finished("vcpus")
    // 7. The GIC initialised once every vCPU exists; then each vCPU's PMU, which needs it.
    try Self.kvm { () throws(KVMError) in
      try gic.initialize(interruptCount: MemoryMap.gicInterruptCount)
      if config.pmu {
        for vcpu in vcpus { try vcpu.configurePMU(interrupt: 16 + MemoryMap.pmuPPI, counters: config.pmuCounters) }
      }
    }
    steps.finished("gic-init")
    // 8. The devices, on the MMIO bus.
    uart = UART8250(output: console, interrupt: SPILine(vm: vm, number: MemoryMap.uartSPI))
    devices = try Self.createDevices(config, disks: disks, shares: shares, networks: networks, memory: memory, console: console, ipa: ipa, vm: vm, logger: logger)
    bus = try Self.mmioBus([
      (uart, MemoryMap.uartBase, MemoryMap.uartWindow), (bootStatus, MemoryMap.bootStatusBase, BootStatus.size),
    ], devices: devices)
    steps.finished("devices")
    // 9. The images and the DTB copied into RAM; a Realm has them measured into protected memory,
    //    in ascending address order.
    try Self.load(images, into: memory, realm: realm, vm: vm, config: config, logger: logger)
    steps.finished("load")
    // 10. The boot CPU's entry registers: PC, x0 = DTB (arm64 boot protocol). On generation A hosts
    //     the RECs are then created in vCPU order, the Realm activated and its RAM made private.
    try Self.enter(layout, vcpus: vcpus, realm: realm, vm: vm, ram: memory.regions[0])
    steps.finished("enter")
    logger.debug("machine ready", metadata: [
      "cpus": "\(config.cpus)", "ram": "\(config.memorySize >> 20) MiB", "ipa-bits": "\(ipa.bits)",
      "entry": "0x\(String(layout.entry, radix: 16))", "dtb": "0x\(String(layout.deviceTreeAddress, radix: 16))",
      "steps": "\(steps.summary)", "since-exec": "\(StartupSteps.sinceProcessStart().map { "\($0) ms" } ?? "unknown")",
    ])
  }

  // MARK: the steps of init

  /// A KVM call of a building step, its error reported as KVM's.
  static func kvm<T>(_ body: () throws(KVMError) -> T) throws(VMMError) -> T {
    do {
      return try body()
    } catch {
      throw .kvm(error)
    }
  }

  static func openKVM(_ given: KVMSystem?) throws(VMMError) -> KVMSystem {
    if let given { return given }
    guard hostIsArm64 else {
      throw .unsupportedHost("realm-run runs arm64 guests with KVM on an arm64 host; this host is not arm64")
    }
    return try kvm { () throws(KVMError) in try KVMSystem() }
  }

  /// A step of the devices' setup, its error reported as a device error (as ``kvm(_:)`` for KVM's).
  static func devices<T>(_ body: () throws(MachineDevicesError) -> T) throws(VMMError) -> T {
    do {
      return try body()
    } catch {
      throw .device(error)
    }
  }

  static func ipaLayout(_ config: MachineConfig, maxIPABits: Int) throws(VMMError) -> IPALayout {
    let ramEnd = MemoryMap.ramBase + config.memorySize
    let ipa = IPALayout(bits: IPALayout.minimumBits(reaching: ramEnd, realm: config.realm), isRealm: config.realm)
    guard ipa.bits <= maxIPABits else {
      throw .unsupportedHost("\(config.memorySize >> 20) MiB of RAM needs \(ipa.bits) IPA bits; this host allows \(maxIPABits); lower --mem")
    }
    return ipa
  }

  /// Guest RAM and its memory slot. A Realm's RAM is guest_memfd memory, locked; the ordinary
  /// mapping stays as its shared view (the unprotected alias is served from it).
  static func createRAM(_ config: MachineConfig, vm: VirtualMachine, realm: RealmLifecycle?) throws(VMMError)
    -> (GuestMemory, guestMemfd: Int32?)
  {
    let memory: GuestMemory
    do {
      memory = try GuestMemory(ranges: [(MemoryMap.ramBase, config.memorySize)])
    } catch {
      throw .memory(error)
    }
    let region = memory.regions[0]
    var slot = VirtualMachine.MemorySlot(
      slot: 0, guestAddress: region.base, size: region.size, hostAddress: UInt64(UInt(bitPattern: region.host)))
    guard let realm else {
      try kvm { () throws(KVMError) in try vm.setMemorySlot(slot) }
      return (memory, nil)
    }
    try lockRealmMemory(region)
    let guestMemfd = try kvm { () throws(KVMError) in try vm.createGuestMemfd(size: region.size) }
    slot.guestMemfd = (guestMemfd, 0)
    try kvm { () throws(KVMError) in
      try vm.setMemorySlot(slot)
      if realm.privateBeforePopulate {
        try vm.setMemoryAttributes(address: region.base, size: region.size, private: true)
      }
    }
    return (memory, guestMemfd)
  }

  /// vCPUs with PSCI 0.2; all but the boot CPU start powered off, for PSCI CPU_ON.
  static func createVCPUs(_ config: MachineConfig, vm: VirtualMachine, realm: RealmLifecycle?) throws(KVMError) -> [VCPU] {
    let target = try vm.preferredTarget().target
    var vcpus: [VCPU] = []
    for id in 0..<config.cpus {
      let vcpu = try vm.createVCPU(id: id)
      try initialize(vcpu, target: target, features: config.vcpuFeatures(id: id), realm: realm)
      if let vectorLength = config.sveVectorLength {
        try vcpu.configureSVE(vectorLength: vectorLength)
      }
      vcpus.append(vcpu)
    }
    return vcpus
  }

  static func createDevices(
    _ config: MachineConfig, disks: [BlockFile], shares: [SharedDirectory], networks: [NetworkBackend], memory: GuestMemory, console: TerminalConsole, ipa: IPALayout,
    vm: VirtualMachine, logger: Logger
  ) throws(VMMError) -> MachineDevices {
    try devices { () throws(MachineDevicesError) in
      try MachineDevices.make(
        config: config, disks: disks, shares: shares, networks: networks, memory: memory, output: console, ipa: ipa,
        interrupt: { SPILine(vm: vm, number: $0) }, vm: vm, log: { logger.warning("\($0)") })
    }
  }

  /// The bus with `fixed` devices and the PCI devices on it.
  static func mmioBus(_ fixed: [(any MMIODevice, UInt64, UInt64)], devices: MachineDevices) throws(VMMError) -> MMIOBus {
    var bus = MMIOBus()
    do {
      for (device, base, size) in fixed { try bus.register(device, at: base, size: size) }
      try devices.register(on: &bus)
    } catch {
      throw .deviceLayout(error)
    }
    return bus
  }

  /// The piece of an image `load` places at a time.
  static let loadPiece = 4 << 20

  /// Copies the images into RAM; a Realm has them populated, measured, in ascending address order.
  /// Each image goes in pieces of ``loadPiece`` bytes, and a piece's file pages (and, in a Realm,
  /// its copy in the shared view) leave realm-run's memory once it is placed: no image is ever
  /// held twice. Populating in pieces issues the same measured commands in the same order.
  static func load(
    _ images: LaunchImages, into memory: GuestMemory, realm: RealmLifecycle?, vm: VirtualMachine, config: MachineConfig,
    logger: Logger
  ) throws(VMMError) {
    if let realm {
      try kvm { () throws(KVMError) in
        try realm.configure(vm, algorithm: config.realmOptions.algorithm, personalization: config.realmOptions.personalization)
        try realm.initializeRIPAS(vm, base: memory.regions[0].base, size: memory.regions[0].size)
      }
    }
    var populating: UInt64 = 0  // nanoseconds in populate calls
    for region in images.regions {
      for start in stride(from: 0, to: Int(region.size), by: loadPiece) {
        let end = min(start + loadPiece, Int(region.size))
        let piece: UnsafeMutableRawBufferPointer
        do {
          piece = try memory.slice(at: region.address + UInt64(start), count: end - start)
          // The contents that fall in this piece (the region is zero around them).
          try region.contents.withBytes { (bytes) throws(GuestMemoryError) in
            let from = max(start, region.contentOffset), to = min(end, region.contentOffset + bytes.count)
            guard from < to else { return }
            UnsafeMutableRawBufferPointer(rebasing: piece[(from - start)..<(to - start)])
              .copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[(from - region.contentOffset)..<(to - region.contentOffset)]))
            region.contents.done(with: (from - region.contentOffset)..<(to - region.contentOffset))
          }
        } catch {
          throw .memory(error)
        }
        guard let realm else { continue }
        let started = DispatchTime.now()
        try kvm { () throws(KVMError) in
          try realm.populate(vm, base: region.address + UInt64(start), size: UInt64(end - start), source: piece.baseAddress!, measure: true)
        }
        populating += DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds
        // The shared view's copy is no longer needed; the guest sees zeros there if it ever shares the range.
        madvise(piece.baseAddress!, piece.count, MADV_DONTNEED)
      }
    }
    guard realm != nil else { return }
    let bytes = images.regions.reduce(0) { $0 + Int($1.size) }
    let seconds = Double(populating) / 1e9
    logger.info("populated \(bytes) bytes, measured, in \(Int(seconds * 1000)) ms (\(Int(Double(bytes) / 1e6 / max(seconds, 1e-9))) MB/s)")
  }

  /// The boot CPU's entry registers; on generation A, the RECs, activation and private RAM.
  static func enter(_ layout: BootLayout, vcpus: [VCPU], realm: RealmLifecycle?, vm: VirtualMachine, ram: GuestRegion)
    throws(VMMError)
  {
    try kvm { () throws(KVMError) in
      try vcpus[0].setEntry(pc: layout.entry, x0: layout.deviceTreeAddress)
      guard let realm else { return }
      for vcpu in vcpus { try realm.finalize(vcpu) }
      try realm.activate(vm)
      if !realm.privateBeforePopulate && realm.usesVMMemoryAttributes {
        try vm.setMemoryAttributes(address: ram.base, size: ram.size, private: true)
      }
    }
  }

  #if arch(arm64)
  static let hostIsArm64 = true
  #else
  static let hostIsArm64 = false
  #endif

  /// Runs every vCPU on its own thread until the guest powers off, resets or crashes, the user
  /// quits, `timeout` seconds pass, or a console line matches `lines`; then stops every vCPU
  /// before returning.
  public func run(timeout: Double?, lines: ConsoleLineWatch? = nil) throws(VMMError) -> Outcome {
    if let lines {
      console.watch(lines) { [self] match in
        switch match {
        case .until(let line): finish(.success(.consoleMatched(line)))
        case .failOn(let line): finish(.success(.consoleFailure(line)))
        }
      }
    }
    KickSignal.install()
    let threads = vcpus.map { vcpu in
      startThread { [self] in runLoop(vcpu) }
    }
    console.startInput(
      deliver: { [uart, devices] byte in
        if let console = devices.console { return console.receive(CollectionOfOne(byte)) == 1 }
        return uart.receive(CollectionOfOne(byte)) == 1
      },
      quit: { [self] in finish(.success(.quit)) })
    TerminationSignals.route { [self] number in finish(.success(.signalled(number))) }
    defer { TerminationSignals.unroute() }

    let deadline: DispatchTime = timeout.map { .now() + $0 } ?? .distantFuture
    if finished.wait(timeout: deadline) == .timedOut {
      finish(.success(.timedOut))
    }

    stopping.store(true, ordering: .sequentiallyConsistent)
    for (vcpu, thread) in zip(vcpus, threads) {
      vcpu.requestExit()
      pthread_kill(thread, KickSignal.number)
    }
    for thread in threads { pthread_join(thread, nil) }
    console.stopInput()
    devices.shutdown()  // in-flight disk I/O completes and is flushed
    return try outcome.withLock { $0! }.get()
  }

  /// Records how the run ended (the first report wins) and wakes ``run(timeout:)``.
  private func finish(_ result: Result<Outcome, VMMError>) {
    let first = outcome.withLock { outcome -> Bool in
      guard outcome == nil else { return false }
      outcome = result
      return true
    }
    if first { finished.signal() }
  }

  private func runLoop(_ vcpu: VCPU) {
    while !stopping.load(ordering: .relaxed) {
      let exit: VCPUExit
      do {
        exit = try vcpu.runOnce()
      } catch {
        finish(.failure(.kvm(error)))
        return
      }
      switch exit {
      case .mmio(let address, let size, let isWrite, let data):
        handleMMIO(vcpu, address: ipa.canonical(address), size: size, isWrite: isWrite, data: data)
      case .systemEvent(.shutdown):
        finish(.success(Outcome(poweredOffAfter: bootStatus.failure)))
      case .systemEvent(.reset):
        finish(.success(.reset))
      case .systemEvent(.crash):
        finish(.success(.crashed("the guest reported a crash (PSCI SYSTEM_EVENT crash)")))
      case .systemEvent(.other(let type)):
        finish(.success(.crashed("unknown system event \(type) from vCPU \(vcpu.id)")))
      case .shutdown:
        // When one REC powers a Realm off, the others fail their next entry with
        // KVM_EXIT_SHUTDOWN, which can reach us before that REC's system event: let it win.
        if vcpus.count > 1 { awaitOutcome(seconds: 1) }
        finish(.success(.crashed("KVM_EXIT_SHUTDOWN on vCPU \(vcpu.id)")))
      case .internalError(let suberror):
        finish(.success(.crashed("KVM internal error \(suberror) on vCPU \(vcpu.id)")))
      case .hypercall(let function, _, _):
        // No SMCCC range is forwarded to userspace: answer NOT_SUPPORTED in x0.
        logger.warning("unexpected hypercall 0x\(String(function, radix: 16)) from vCPU \(vcpu.id)")
        try? vcpu.setRegister(ckvm_core_reg_x(0), UInt64(bitPattern: -1))
      case .memoryFault(let address, let size, let toPrivate):
        do {
          try convertMemory(address: address, size: size, toPrivate: toPrivate)
        } catch {
          finish(.failure(error))
        }
      case .interrupted:
        continue
      case .unknown(let reason):
        finish(.success(.crashed("unexpected KVM exit reason \(reason) on vCPU \(vcpu.id)")))
      }
      switch exit {
      case .systemEvent, .shutdown: return  // this vCPU cannot run on
      default: continue
      }
    }
  }

  /// Waits up to `seconds` for another vCPU to record how the run ended.
  private func awaitOutcome(seconds: Double) {
    let deadline = DispatchTime.now() + seconds
    while outcome.withLock({ $0 == nil }) && !stopping.load(ordering: .relaxed) && DispatchTime.now() < deadline {
      usleep(5_000)
    }
  }

  private func handleMMIO(_ vcpu: VCPU, address: UInt64, size: Int, isWrite: Bool, data: UInt64) {
    if isWrite {
      if bus.write(address, size: size, value: data) { return }
    } else if let value = bus.read(address, size: size) {
      vcpu.completeMMIORead(value)
      return
    }
    // Nothing there: the guest gets a bus error (an external abort), as on hardware.
    let count = unhandledAccesses.add(1, ordering: .relaxed).newValue
    if count <= 10 {
      logger.warning("vCPU \(vcpu.id): \(isWrite ? "write to" : "read from") unmapped address 0x\(String(address, radix: 16)) (\(size) bytes)\(count == 10 ? "; not reporting more" : "")")
    }
    do {
      guard canInjectAborts else { throw KVMError.unsupported("no KVM_CAP_ARM_INJECT_EXT_DABT") }
      try vcpu.injectDataAbort(realm: realm != nil)
    } catch {
      // Without abort injection the access reads as zero and writes are dropped.
      if count <= 10 { logger.warning("vCPU \(vcpu.id): cannot inject an abort: \(error)") }
      if !isWrite { vcpu.completeMMIORead(0) }
    }
  }
}

/// A GIC shared peripheral interrupt driven through `KVM_IRQ_LINE`.
struct SPILine: InterruptLine {
  let vm: VirtualMachine
  let number: UInt32

  func set(level: Bool) {
    try? vm.setSPI(number, level: level)
  }
}

extension Machine {
  /// The DTB the guest gets, its used part without the padding (`--dump-dtb`).
  public var deviceTreeBlob: [UInt8] { Array(deviceTree.prefix(DeviceTreeReader.totalSize(of: deviceTree))) }
}
