import CKVM
import FirmwareCore
import KVM
import UserNetwork
import VirtIO

/// Everything that describes a machine, validated by the CLI before anything is created.
public struct MachineConfig: Sendable, Equatable {
  /// What vCPU 0 starts in.
  public enum Boot: Sendable, Equatable {
    /// A Linux arm64 `Image`, an optional initrd; the VMM writes the DTB's /chosen.
    case kernel(path: String, initrd: String?)
    /// Firmware loaded at the RAM base, entered with x0 = DTB.
    case firmware(path: String)
  }

  /// Which device the guest's console (`stdout-path`, `console=`) is.
  public enum Console: String, Sendable, CaseIterable {
    /// The 8250 UART (`ttyS0`), also the DTB's `stdout-path`.
    case serial
    /// A virtio-console PCI device (`hvc0`); the DTB has no `stdout-path`.
    case virtio
  }

  public var memorySize: UInt64
  public var cpus: Int
  public var boot: Boot
  /// Extra kernel command line (appended after the VMM's `console=` for a kernel boot; passed to
  /// firmware in /chosen/bootargs).
  public var kernelParameters: String?
  /// KVM_ARM_VCPU_INIT features of vCPU `id`: PSCI 0.2; all but the boot CPU powered off (they
  /// wait for PSCI CPU_ON); SVE and PMUv3 as configured. (A Realm's REC bit is the lifecycle's.)
  public func vcpuFeatures(id: Int) -> [Int32] {
    Self.vcpuFeatures(id: id, sve: sveVectorLength != nil, pmu: pmu)
  }

  /// The one list of KVM_ARM_VCPU_INIT features realm-run gives vCPU `id` (a machine's vCPUs, and
  /// the probe vCPU of `measure --from-host`): PSCI 0.2; powered off unless it is the boot CPU;
  /// SVE and PMUv3 if asked for.
  public static func vcpuFeatures(id: Int, sve: Bool, pmu: Bool) -> [Int32] {
    var features = [Int32(CKVM_ARM_VCPU_PSCI_0_2)]
    if id > 0 { features.append(Int32(CKVM_ARM_VCPU_POWER_OFF)) }
    if sve { features.append(Int32(CKVM_ARM_VCPU_SVE)) }
    if pmu { features.append(Int32(CKVM_ARM_VCPU_PMU_V3)) }
    return features
  }

  /// An arm64 kernel's COMMAND_LINE_SIZE (the terminating NUL included): longer command lines
  /// are cut, so realm-run refuses them.
  public static let commandLineLimit = 2048
  /// Disk images, each a virtio-blk device.
  public var disks: [DiskConfig]
  public var realm: Bool
  /// How the Realm is built (ignored for a normal VM).
  public var realmOptions: RealmOptions
  public var console: Console
  /// A virtio-rng device (`--rng`; a Realm's default, which has no other source of entropy).
  public var entropy: Bool
  /// Host directories, each a virtio-9p device (`--share`).
  public var shares: [ShareConfig]
  /// Network interfaces, each a virtio-net device (`--net`).
  public var networks: [NetConfig]
  /// KVM catches the virtio queue notifications (KVM_IOEVENTFD) instead of exiting to realm-run
  /// (`--no-ioeventfd` turns that off, to measure it or on a host where it misbehaves).
  public var ioeventfd: Bool
  /// KVM raises the devices' INTx lines from eventfds (KVM_IRQFD with a resample eventfd) instead of
  /// a KVM_IRQ_LINE ioctl per change (`--no-irqfd` turns that off).
  public var irqfd: Bool
  /// SVE's maximum vector length in bits (a multiple of 128), or `nil` for no SVE. A Realm's
  /// vector length is measured, so it is never chosen implicitly.
  public var sveVectorLength: Int?
  /// Whether the guest gets a PMUv3, and how many event counters (PMCR_EL0.N; the host's when `nil`).
  public var pmu: Bool
  public var pmuCounters: Int?
  /// The Boot Loader Specification entry the firmware should boot (`/chosen/realm-run,boot-entry`).
  public var bootEntry: String?
  /// How the firmware boots the disk (`/chosen/realm-run,boot-mode`; nothing is written for automatic).
  public var bootMode: FirmwareBootMode

  public init(
    memorySize: UInt64, cpus: Int, boot: Boot, kernelParameters: String? = nil,
    disks: [DiskConfig] = [], realm: Bool = false, realmOptions: RealmOptions = RealmOptions(), console: Console = .serial,
    entropy: Bool = false, shares: [ShareConfig] = [], networks: [NetConfig] = [], ioeventfd: Bool = true, irqfd: Bool = true, sveVectorLength: Int? = nil, bootEntry: String? = nil, pmu: Bool = false, pmuCounters: Int? = nil,
    bootMode: FirmwareBootMode = .automatic
  ) {
    self.pmu = pmu || pmuCounters != nil
    self.pmuCounters = pmuCounters
    self.bootEntry = bootEntry
    self.bootMode = bootMode
    self.sveVectorLength = sveVectorLength
    self.memorySize = memorySize
    self.cpus = cpus
    self.boot = boot
    self.kernelParameters = kernelParameters
    self.disks = disks
    self.realm = realm
    self.realmOptions = realmOptions
    self.console = console
    self.entropy = entropy
    self.shares = shares
    self.networks = networks
    self.ioeventfd = ioeventfd
    self.irqfd = irqfd
  }

  /// The most vCPUs the GICv3 redistributor region below the distributor leaves room for here.
  public static let maximumCPUs = 254
  /// The least RAM a machine gets: room for the DTB and a small image.
  public static let minimumMemory: UInt64 = 16 << 20
}

/// How a Realm is built: its measurement algorithm, personalization value, and (optionally) which
/// CCA UAPI series to speak instead of probing for one.
public struct RealmOptions: Sendable, Equatable {
  public var algorithm: RealmHashAlgorithm
  /// Up to 64 bytes, zero-padded by the RMM (the Realm Personalization Value).
  public var personalization: [UInt8]?
  /// `--cca-abi`: the series to assume; `nil` probes the host.
  public var series: CCASeries?

  public init(algorithm: RealmHashAlgorithm = .sha256, personalization: [UInt8]? = nil, series: CCASeries? = nil) {
    self.algorithm = algorithm
    self.personalization = personalization
    self.series = series
  }
}

/// One `--disk PATH[,ro][,direct]` option.
public struct DiskConfig: Sendable, Equatable {
  public var path: String
  /// The guest may read but not write (virtio-blk `VIRTIO_BLK_F_RO`; the file is opened read-only).
  public var readOnly: Bool
  /// Bypass the host page cache (`O_DIRECT`).
  public var direct: Bool

  public init(path: String, readOnly: Bool = false, direct: Bool = false) {
    self.path = path
    self.readOnly = readOnly
    self.direct = direct
  }

  /// Why a `--disk` value was refused.
  public struct ParseError: Error, Equatable, CustomStringConvertible {
    public let description: String
  }

  /// Parses `PATH[,ro][,direct]`.
  public init(parsing text: String) throws(ParseError) {
    var parts = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
    let path = parts.removeFirst()
    guard !path.isEmpty else { throw ParseError(description: "--disk needs a file name (PATH[,ro][,direct])") }
    self.init(path: path)
    for option in parts {
      switch option {
      case "ro": readOnly = true
      case "direct": direct = true
      default:
        throw ParseError(description: "--disk \(text): unknown option '\(option)' (known: ro, direct)")
      }
    }
  }
}

/// One `--share DIR[,tag=TAG][,ro]` option: a host directory the guest mounts over virtio-9p with
/// `mount -t 9p -o trans=virtio,version=9p2000.L TAG MOUNTPOINT`.
public struct ShareConfig: Sendable, Equatable {
  public var path: String
  /// The mount tag the guest names it by (default `share0`, `share1`, ... in option order).
  public var tag: String
  /// The guest may read but not change anything (every change is refused with EROFS).
  public var readOnly: Bool

  public init(path: String, tag: String, readOnly: Bool = false) {
    self.path = path
    self.tag = tag
    self.readOnly = readOnly
  }

  /// The tag of the `index`th share when none is given.
  public static func defaultTag(_ index: Int) -> String { "share\(index)" }

  /// Parses `DIR[,tag=TAG][,ro]`, the `index`th `--share` (for its default tag).
  public init(parsing text: String, index: Int) throws(DiskConfig.ParseError) {
    var parts = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
    let path = parts.removeFirst()
    guard !path.isEmpty else { throw .init(description: "--share needs a directory (DIR[,tag=TAG][,ro])") }
    self.init(path: path, tag: Self.defaultTag(index))
    for option in parts {
      if option == "ro" {
        readOnly = true
      } else if option.hasPrefix("tag=") {
        tag = String(option.dropFirst(4))
        guard VirtioShare.isValidTag(tag) else {
          throw .init(description: "--share \(text): a tag is 1 to \(VirtioShare.maxTagLength) bytes, without commas")
        }
      } else {
        throw .init(description: "--share \(text): unknown option '\(option)' (known: tag=TAG, ro)")
      }
    }
  }

  /// Parses every `--share` value in order; refuses a tag given twice.
  public static func parse(_ values: [String]) throws(DiskConfig.ParseError) -> [ShareConfig] {
    var shares: [ShareConfig] = []
    for (index, value) in values.enumerated() {
      let share = try ShareConfig(parsing: value, index: index)
      if shares.contains(where: { $0.tag == share.tag }) {
        throw .init(description: "--share \(value): the tag '\(share.tag)' is already used by another --share")
      }
      shares.append(share)
    }
    return shares
  }
}

/// One `--net` option: a virtio-net device and where its frames go.
public struct NetConfig: Sendable, Equatable {
  public enum Backend: Sendable, Equatable {
    /// A host tap device, opened or (as root) created by name.
    case tap(String)
    /// User-mode networking (libslirp): NAT, DHCP and DNS, and these host forwards.
    case user(forwards: [UserNetwork.HostForward])
  }

  public var backend: Backend
  /// The guest's MAC address; by default 52:54:00 (QEMU's prefix) and three bytes derived from the
  /// backend and the option's position, so that the same command line gives the same address.
  public var mac: [UInt8]

  public init(backend: Backend, mac: [UInt8]) {
    self.backend = backend
    self.mac = mac
  }

  /// The default MAC of the `index`th `--net` with `backend`: FNV-1a over both, locally administered
  /// under QEMU's 52:54:00.
  public static func defaultMAC(_ backend: Backend, index: Int) -> [UInt8] {
    let name: String
    switch backend {
    case .tap(let tap): name = "tap \(tap)"
    case .user: name = "user"
    }
    var hash: UInt32 = 0x811C_9DC5
    for byte in Array("realm-run net \(index) \(name)".utf8) { hash = (hash ^ UInt32(byte)) &* 0x0100_0193 }
    return [0x52, 0x54, 0x00, UInt8(truncatingIfNeeded: hash >> 16), UInt8(truncatingIfNeeded: hash >> 8), UInt8(truncatingIfNeeded: hash)]
  }

  /// `aa:bb:cc:dd:ee:ff` as bytes, nil unless six hex pairs of a unicast address.
  public static func parseMAC(_ text: String) -> [UInt8]? {
    let parts = text.split(separator: ":", omittingEmptySubsequences: false)
    guard parts.count == 6 else { return nil }
    let bytes = parts.compactMap { $0.count == 2 ? UInt8($0, radix: 16) : nil }
    guard bytes.count == 6, bytes[0] & 1 == 0 else { return nil }
    return bytes
  }

  static let syntax = "tap=NAME[,mac=MAC] or user[,hostfwd=[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT]...[,mac=MAC]"

  /// Parses `tap=NAME[,mac=MAC]` or `user[,hostfwd=RULE]...[,mac=MAC]` (the `index`th `--net`).
  public init(parsing text: String, index: Int) throws(DiskConfig.ParseError) {
    let parts = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
    var backend: Backend?
    var forwards: [UserNetwork.HostForward] = []
    var mac: [UInt8]?
    for (position, option) in parts.enumerated() {
      if position == 0, option == "user" {
        backend = .user(forwards: [])
      } else if position == 0, option.hasPrefix("tap=") {
        let name = String(option.dropFirst(4))
        guard !name.isEmpty, name.utf8.count <= 15, !name.contains("/"), name != ".", name != ".." else {
          throw .init(description: "--net \(text): a tap name is 1 to 15 bytes, without '/'")
        }
        backend = .tap(name)
      } else if position > 0, option.hasPrefix("mac=") {
        guard let parsed = Self.parseMAC(String(option.dropFirst(4))) else {
          throw .init(description: "--net \(text): mac= takes six hex bytes of a unicast address (52:54:00:12:34:56)")
        }
        mac = parsed
      } else if position > 0, case .user = backend, option.hasPrefix("hostfwd=") {
        guard let forward = UserNetwork.HostForward(parsing: String(option.dropFirst(8))) else {
          throw .init(description: "--net \(text): hostfwd= takes [tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT (tcp::8080-:80)")
        }
        forwards.append(forward)
      } else {
        throw .init(description: "--net \(text): expected \(Self.syntax); '\(option)' is not understood")
      }
    }
    guard var backend else { throw .init(description: "--net needs \(Self.syntax)") }
    if case .user = backend { backend = .user(forwards: forwards) }
    self.init(backend: backend, mac: mac ?? Self.defaultMAC(backend, index: index))
  }

  /// Parses every `--net` value in order; refuses a tap or a MAC given twice.
  public static func parse(_ values: [String]) throws(DiskConfig.ParseError) -> [NetConfig] {
    var networks: [NetConfig] = []
    for (index, value) in values.enumerated() {
      let network = try NetConfig(parsing: value, index: index)
      if case .tap = network.backend, networks.contains(where: { $0.backend == network.backend }) {
        throw .init(description: "--net \(value): that tap is already used by another --net")
      }
      if networks.contains(where: { $0.mac == network.mac }) {
        throw .init(description: "--net \(value): that MAC address is already used by another --net")
      }
      networks.append(network)
    }
    return networks
  }
}
