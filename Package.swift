// swift-tools-version: 6.2
// 6.2 at most: Debian's swiftlang 6.2.x cross-builds the aarch64 executable (Scripts/cross-build).
import PackageDescription

let package = Package(
  name: "realm-run",
  products: [
    .executable(name: "realm-run", targets: ["realm-run"]),
    .executable(name: "virtio-bench", targets: ["virtio-bench"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    // 4.x imports FoundationEssentials where it can, not Foundation: ES384 for `verify` without
    // static Foundation and ICU in the aarch64 executable (3.12.3 quadrupled it).
    .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
  ],
  targets: [
    // The arm64 KVM UAPI (structs, ioctl numbers, register ids), written for arm64 whatever the host.
    .target(name: "CKVM"),
    // libfdt: module map only (bookworm's libfdt-dev has no pkg-config file).
    .systemLibrary(name: "CLibFDT", providers: [.apt(["libfdt-dev"])]),

    // The one import of the C library (glibc), with Errno, FileDescriptor and the EINTR retry.
    .target(name: "Platform"),

    .target(name: "GuestMemory", dependencies: ["Platform"]),
    .target(name: "KVM", dependencies: ["CKVM", "GuestMemory", "FirmwareCore", "Platform"]),
    .target(name: "DeviceTree", dependencies: ["CLibFDT", "FirmwareCore"]),
    .target(name: "Devices", dependencies: ["GuestMemory", "FirmwareCore"]),
    // libaio: module map only (bookworm's libaio-dev has no pkg-config file).
    .systemLibrary(name: "CLibAIO", providers: [.apt(["libaio-dev"])]),
    .target(name: "AsyncIO", dependencies: ["CLibAIO", "Platform"]),
    // A 9P2000.L server over a host directory, confined beneath it by openat2 (virtio-9p's `--share`).
    .systemLibrary(name: "CNineP"),
    .target(name: "NineP", dependencies: ["CNineP", "Platform"]),
    // A host tap device's ioctls (virtio-net's `--net tap=NAME`).
    .systemLibrary(name: "CTap"),
    // User-mode networking (`--net user`): libslirp on a thread of its own.
    .systemLibrary(name: "CSlirp", providers: [.apt(["libslirp-dev"])]),
    .target(name: "UserNetwork", dependencies: ["CSlirp", "AsyncIO", "Platform"]),
    .target(name: "VirtIO", dependencies: ["Devices", "GuestMemory", "AsyncIO", "FirmwareCore", "Platform", "NineP", "CTap"]),
    .executableTarget(
      name: "virtio-bench", dependencies: ["VirtIO", "AsyncIO", "Devices", "GuestMemory", "Platform", "TestSupport"]),
    .target(
      name: "RealmVMM",
      dependencies: [
        "KVM", "GuestMemory", "DeviceTree", "Devices", "VirtIO", "UserNetwork", "AsyncIO", "FirmwareCore", "RealmMeasurement", "Platform",
        "NineP", .product(name: "Logging", package: "swift-log"),
      ]),
    .executableTarget(
      name: "realm-run",
      dependencies: [
        "RealmVMM", "DiskImage", "KVM", "CKVM", "GuestMemory", "RealmMeasurement", "VirtIO", "FirmwareCore", "Platform",
        "Attestation",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
        .product(name: "Logging", package: "swift-log"),
      ]),

    // The Realm Initial Measurement as the RMM computes it (RealmVMM predicts a machine's with it:
    // `realm-run measure`, `--print-rim`).
    .target(name: "RealmMeasurement", dependencies: ["FirmwareCore", .product(name: "Crypto", package: "swift-crypto")]),
    // libcbor: module map only (see its shim.h).
    .systemLibrary(name: "CLibCBOR", providers: [.apt(["libcbor-dev"])]),
    // Attestation: a Realm's reference values, as JSON and CoRIM, and CCA tokens checked against them.
    .target(name: "Attestation", dependencies: ["CLibCBOR", "FirmwareCore", .product(name: "Crypto", package: "swift-crypto")]),

    // The firmware's pure logic, compiled here too so that every parser it runs on untrusted input
    // is unit-tested and fuzzed on the host (Firmware/ builds the same sources for bare metal).
    // The host shares its primitives: byte-order readers, the arm64 Image header, the virtio
    // register names; one implementation of each.
    .target(name: "FirmwareCore", path: "Firmware/Sources/FirmwareCore"),
    // Bootable disk images (GPT, FAT32 ESP, BLS entries) for `realm-run image create`.
    .target(name: "DiskImage", dependencies: ["FirmwareCore", "Platform"]),

    .target(name: "TestSupport", dependencies: ["GuestMemory", "KVM", "Devices", "VirtIO", "FirmwareCore"], path: "Tests/TestSupport"),
    .testTarget(name: "PlatformTests", dependencies: ["Platform"]),
    .testTarget(name: "KVMTests", dependencies: ["KVM", "CKVM", "TestSupport"]),
    .testTarget(name: "GuestMemoryTests", dependencies: ["GuestMemory"]),
    .testTarget(name: "DeviceTreeTests", dependencies: ["DeviceTree", "CLibFDT"]),
    .testTarget(name: "DevicesTests", dependencies: ["Devices", "TestSupport"]),
    .testTarget(name: "VirtIOTests", dependencies: ["VirtIO", "AsyncIO", "Devices", "GuestMemory", "TestSupport"]),
    .testTarget(name: "AsyncIOTests", dependencies: ["AsyncIO", "Platform"]),
    .testTarget(name: "NinePTests", dependencies: ["NineP", "Platform", "TestSupport"]),
    .testTarget(name: "UserNetworkTests", dependencies: ["UserNetwork", "Platform"]),
    .testTarget(
      name: "RealmVMMTests",
      dependencies: [
        "RealmVMM", "TestSupport", "FirmwareCore", "RealmMeasurement", "Platform", "DiskImage",
        .product(name: "Crypto", package: "swift-crypto"),
      ]),
    .testTarget(
      name: "FirmwareCoreTests",
      dependencies: ["FirmwareCore", "DiskImage", "TestSupport", .product(name: "Crypto", package: "swift-crypto")]),
    .testTarget(name: "DiskImageTests", dependencies: ["DiskImage", "FirmwareCore", "Platform", "TestSupport"]),
    .testTarget(
      name: "RealmMeasurementTests",
      dependencies: ["RealmMeasurement", "FirmwareCore", .product(name: "Crypto", package: "swift-crypto")]),
    .testTarget(
      name: "AttestationTests",
      dependencies: ["Attestation", "CLibCBOR", "FirmwareCore", .product(name: "Crypto", package: "swift-crypto")]),
    .testTarget(name: "RealmRunTests", dependencies: ["realm-run", "RealmVMM", "VirtIO", "FirmwareCore", "TestSupport", "Attestation"]),
  ]
)
