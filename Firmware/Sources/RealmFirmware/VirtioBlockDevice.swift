import FirmwareSupport
import FirmwareCore

/// Memory shared with devices: ring, request header and bounce buffer. In a Realm it is RIPAS
/// EMPTY and used through the shared alias, both by the CPU and as the DMA address.
struct DMAPool {
  /// Protected (IPA) base; the CPU and the device use `base | alias`.
  let base: UInt64
  let size: UInt64
  let alias: UInt64
  var cpu: UInt64 { base | alias }
  var device: UInt64 { base | alias }
  /// One slot per disk for its ring, request header and status, from the pool's start; then the
  /// one bounce buffer all disks share (requests are polled, one at a time).
  static let slotSize: UInt64 = 0x4000
  static let maxDisks = 8
  static let bounceOffset: UInt64 = slotSize * UInt64(maxDisks)
  static let bounceSize: UInt64 = 1 << 20
  static let totalSize: UInt64 = bounceOffset + bounceSize
}

/// Why the virtio-blk device could not be used.
enum VirtioError: Error {
  case noCapabilities
  case featuresRejected
  case noQueue
}

/// What a disk's reads cost, logged before the OS starts: under emulation the number of requests
/// decides the time more than the bytes do.
struct DiskReadStatistics {
  var requests: UInt64 = 0
  var bytes: UInt64 = 0
  /// Generic-timer ticks from each notification to its completion.
  var deviceTicks: UInt64 = 0
  /// Ticks spent on the first touch of each destination page before a bounce copy (Realms):
  /// the host maps a protected page only when it faults, one 4 KiB page at a time.
  var touchTicks: UInt64 = 0
  /// Ticks spent copying out of the bounce buffer (Realms).
  var copyTicks: UInt64 = 0

  /// "N requests, B KiB in D ms on the device, T ms first-touching pages, C ms copying (R KiB/s)".
  var summary: String {
    let device = milliseconds(ticks: deviceTicks), touch = milliseconds(ticks: touchTicks)
    let copy = milliseconds(ticks: copyTicks)
    let rate = bytes / 1024 * 1000 / Swift.max(1, device + touch + copy)
    return "\(requests) requests, \(bytes / 1024) KiB in \(device) ms on the device, \(touch) ms first-touching pages, "
      + "\(copy) ms copying (\(rate) KiB/s)"
  }
}

/// A virtio 1.0 (modern PCI) block device driven by polling one split virtqueue.
struct VirtioBlockDevice: BlockDevice {
  let common: UInt64
  let notifyAddress: UInt64
  let deviceConfig: UInt64
  let queueSize: UInt16
  let pool: DMAPool
  /// This disk's slot in the pool (`DMAPool.slotSize` bytes at this offset).
  let slot: UInt64
  /// When true every transfer is bounced through the pool (Realm); else DMA goes to the buffer.
  let bounce: Bool
  var nextAvail: UInt16 = 0
  var lastUsed: UInt16 = 0
  let sectorCount: UInt64
  var statistics = DiskReadStatistics()

  // Slot layout: descriptors @0, available ring @0x1000, used ring @0x2000, header @0x3000,
  // status @0x3010.
  static let descOffset: UInt64 = 0, availOffset: UInt64 = 0x1000, usedOffset: UInt64 = 0x2000
  static let headerOffset: UInt64 = 0x3000, statusOffset: UInt64 = 0x3010

  /// Finds the modern capabilities of `f`, negotiates VERSION_1 (and ACCESS_PLATFORM when
  /// offered) and sets up queue 0.
  init(function f: PCIFunction, bars: [PCIBar?], pool: DMAPool, slot: Int, bounce: Bool) throws(VirtioError) {
    var common: UInt64 = 0, notifyBase: UInt64 = 0, device: UInt64 = 0
    var multiplier: UInt32 = 0
    for cap in f.capabilities(id: VirtioPCICapability.id) {
      let type = f.read8(cap + VirtioPCICapability.typeOffset)
      let bar = Int(f.read8(cap + VirtioPCICapability.barOffset))
      guard bar < 6, let b = bars[bar] else { continue }
      let offset = UInt64(f.read32(cap + VirtioPCICapability.regionOffset))
      let length = UInt64(f.read32(cap + VirtioPCICapability.lengthOffset))
      guard offset <= b.size, length <= b.size - offset else { continue }
      let address = b.cpuAddress + offset
      switch type {
      case VirtioPCICapability.common: if common == 0 { common = address }
      case VirtioPCICapability.notify:
        if notifyBase == 0 { notifyBase = address; multiplier = f.read32(cap + VirtioPCICapability.multiplierOffset) }
      case VirtioPCICapability.device: if device == 0 { device = address }
      default: break
      }
    }
    guard common != 0, notifyBase != 0, device != 0 else { throw .noCapabilities }
    self.common = common
    self.deviceConfig = device
    self.pool = pool
    self.slot = UInt64(slot) * DMAPool.slotSize
    self.bounce = bounce
    typealias Register = VirtioPCICommonConfig

    Self.reset(common: common)
    Self.setStatus(common, VirtioStatus.acknowledge)
    Self.setStatus(common, VirtioStatus.acknowledge | VirtioStatus.driver)
    MMIO.write32(common + Register.deviceFeatureSelect, 1)
    let high = UInt64(MMIO.read32(common + Register.deviceFeature)) << 32
    guard high & VirtioFeature.version1 != 0 else { throw .featuresRejected }
    // ACCESS_PLATFORM when offered: a Realm's device may only use the buffers shared with it.
    let accepted = VirtioFeature.version1 | high & VirtioFeature.accessPlatform
    MMIO.write32(common + Register.driverFeatureSelect, 0)
    MMIO.write32(common + Register.driverFeature, UInt32(truncatingIfNeeded: accepted))
    MMIO.write32(common + Register.driverFeatureSelect, 1)
    MMIO.write32(common + Register.driverFeature, UInt32(truncatingIfNeeded: accepted >> 32))
    Self.setStatus(common, VirtioStatus.acknowledge | VirtioStatus.driver | VirtioStatus.featuresOK)
    guard MMIO.read8(common + Register.deviceStatus) & VirtioStatus.featuresOK != 0 else { throw .featuresRejected }

    MMIO.write16(common + Register.queueSelect, 0)
    let max = MMIO.read16(common + Register.queueSize)
    guard max > 0 else { throw .noQueue }
    let size: UInt16 = Swift.min(max, 16)
    queueSize = size
    MMIO.write16(common + Register.queueSize, size)
    // Zero the rings.
    let slotBase = UInt64(slot) * DMAPool.slotSize
    if let p = UnsafeMutableRawPointer(bitPattern: UInt(pool.cpu + slotBase)) {
      p.initializeMemory(as: UInt8.self, repeating: 0, count: Int(DMAPool.slotSize))
    }
    MMIO.write64(common + Register.queueDesc, pool.device + slotBase + VirtioBlockDevice.descOffset)
    MMIO.write64(common + Register.queueDriver, pool.device + slotBase + VirtioBlockDevice.availOffset)
    MMIO.write64(common + Register.queueDevice, pool.device + slotBase + VirtioBlockDevice.usedOffset)
    let notifyOffset = UInt64(MMIO.read16(common + Register.queueNotifyOff))
    notifyAddress = notifyBase &+ notifyOffset &* UInt64(multiplier)  // device-provided: no trap on overflow
    MMIO.write16(common + Register.queueEnable, 1)
    Self.setStatus(common, VirtioStatus.acknowledge | VirtioStatus.driver | VirtioStatus.featuresOK | VirtioStatus.driverOK)
    sectorCount = UInt64(MMIO.read32(device)) | UInt64(MMIO.read32(device + 4)) << 32  // capacity
  }

  private static func setStatus(_ common: UInt64, _ status: UInt8) {
    MMIO.write8(common + VirtioPCICommonConfig.deviceStatus, status)
  }

  /// Returns the device to its reset state so the OS starts from scratch.
  func reset() { Self.reset(common: common) }

  /// Writes 0 to `device_status` and waits (bounded) until the device reads back 0.
  private static func reset(common: UInt64) {
    setStatus(common, 0)
    var spins = 0
    while MMIO.read8(common + VirtioPCICommonConfig.deviceStatus) != 0 && spins < 1_000_000 { spins += 1 }
  }

  func store<T>(_ value: T, at offset: UInt64, as: T.Type) {
    UnsafeMutableRawPointer(bitPattern: UInt(pool.cpu + slot + offset))?.storeBytes(of: value, as: T.self)
  }

  func load<T>(at offset: UInt64, as: T.Type) -> T? {
    UnsafeRawPointer(bitPattern: UInt(pool.cpu + slot + offset))?.load(as: T.self)
  }

  mutating func read(lba: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(BlockDeviceError) {
    guard buffer.count % 512 == 0 else { throw .outOfRange }
    let total = UInt64(buffer.count / 512)
    guard lba <= sectorCount, total <= sectorCount - lba, let base = buffer.baseAddress else {
      if buffer.count == 0 { return }
      throw .outOfRange
    }
    let chunkSectors: UInt64 = bounce ? DMAPool.bounceSize / 512 : 8192
    var done: UInt64 = 0
    while done < total {
      let n = Swift.min(chunkSectors, total - done)
      let dest = base + Int(done * 512)
      let target = bounce ? pool.device + DMAPool.bounceOffset : UInt64(UInt(bitPattern: dest))
      try transfer(lba: lba + done, sectors: n, deviceAddress: target)
      if bounce, let src = UnsafeRawPointer(bitPattern: UInt(pool.cpu + DMAPool.bounceOffset)) {
        let start = fw_read_cntvct()
        fw_touch_pages(UInt64(UInt(bitPattern: dest)), n * 512)
        let touched = fw_read_cntvct()
        dest.copyMemory(from: src, byteCount: Int(n * 512))
        statistics.touchTicks &+= touched &- start
        statistics.copyTicks &+= fw_read_cntvct() &- touched
      }
      done += n
    }
  }

  /// One VIRTIO_BLK_T_IN request of `sectors` sectors into device-visible `deviceAddress`.
  mutating func transfer(lba: UInt64, sectors: UInt64, deviceAddress: UInt64) throws(BlockDeviceError) {
    store(BlockRequestType.read.rawValue, at: VirtioBlockDevice.headerOffset, as: UInt32.self)
    store(UInt32(0), at: VirtioBlockDevice.headerOffset + 4, as: UInt32.self)
    store(lba, at: VirtioBlockDevice.headerOffset + 8, as: UInt64.self)
    store(UInt8(0xFF), at: VirtioBlockDevice.statusOffset, as: UInt8.self)
    let head: UInt64 = 0  // one request in flight at a time: always descriptors 0, 1, 2
    let descriptors: [(UInt64, UInt32, UInt16)] = [
      (pool.device + slot + VirtioBlockDevice.headerOffset, 16, VirtqDescriptorFlag.next),
      (deviceAddress, UInt32(sectors * 512), VirtqDescriptorFlag.next | VirtqDescriptorFlag.write),
      (pool.device + slot + VirtioBlockDevice.statusOffset, 1, VirtqDescriptorFlag.write),
    ]
    for (i, d) in descriptors.enumerated() {
      let off = VirtioBlockDevice.descOffset + (head + UInt64(i)) * 16
      store(d.0, at: off, as: UInt64.self)
      store(d.1, at: off + 8, as: UInt32.self)
      store(d.2, at: off + 12, as: UInt16.self)
      store(UInt16(head) + UInt16(i + 1), at: off + 14, as: UInt16.self)
    }
    store(UInt16(head), at: VirtioBlockDevice.availOffset + 4 + UInt64(nextAvail % queueSize) * 2, as: UInt16.self)
    fw_dsb()
    nextAvail &+= 1
    store(nextAvail, at: VirtioBlockDevice.availOffset + 2, as: UInt16.self)
    fw_dsb()
    let start = fw_read_cntvct()
    MMIO.write16(notifyAddress, 0)
    let timeout = fw_read_cntfrq() * 60  // generous: an emulated Realm on a loaded host is slow
    while true {
      fw_dsb()
      guard let used = load(at: VirtioBlockDevice.usedOffset + 2, as: UInt16.self) else { throw .timeout }
      if used != lastUsed { break }
      if fw_read_cntvct() &- start > timeout { throw .timeout }
    }
    lastUsed &+= 1
    statistics.requests &+= 1
    statistics.bytes &+= sectors * 512
    statistics.deviceTicks &+= fw_read_cntvct() &- start
    guard let status = load(at: VirtioBlockDevice.statusOffset, as: UInt8.self) else { throw .timeout }
    guard status == BlockStatus.ok else { throw .ioError(status) }
  }
}
