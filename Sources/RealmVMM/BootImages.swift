import FirmwareCore

/// The boot files read and placed, ready to copy into guest RAM: everything that can be wrong with
/// the user's files is found here, before any KVM object exists.
struct BootImages {
  var image: MappedImage
  var initrd: MappedImage?
  var layout: BootLayout
  var bootArguments: String?

  init(config: MachineConfig) throws(VMMError) {
    let ramBase = MemoryMap.ramBase
    switch config.boot {
    case .kernel(let path, let initrdPath):
      image = try MappedImage(path, what: "the kernel", limit: config.memorySize)
      let header: ArmImageHeader
      do {
        header = try ArmImageHeader(bytes: image.bytes, fileSize: UInt64(image.bytes.count))  // reads the first page only
      } catch {
        throw .invalidImage(path: path, reason: "not an arm64 Linux Image: \(error)")
      }
      if let initrdPath {
        initrd = try MappedImage(initrdPath, what: "the initrd", limit: config.memorySize)
      }
      do {
        layout = try BootLayout.kernel(
          header: header, initrdSize: initrd.map { UInt64($0.bytes.count) }, ramBase: ramBase,
          ramSize: config.memorySize)
      } catch {
        throw .placement(error)
      }
      let console = config.console == .virtio ? "console=hvc0" : "console=ttyS0"
      bootArguments = [console, config.kernelParameters].compactMap { $0 }.joined(separator: " ")
    case .firmware(let path):
      image = try MappedImage(path, what: "the firmware", limit: config.memorySize)
      guard !image.bytes.isEmpty else { throw .invalidImage(path: path, reason: "the firmware file is empty") }
      do {
        layout = try BootLayout.firmware(
          size: UInt64(image.bytes.count), header: try? ArmImageHeader(bytes: image.bytes, fileSize: UInt64(image.bytes.count)), ramBase: ramBase,
          ramSize: config.memorySize)
      } catch {
        throw .placement(error)
      }
      // The firmware appends these to its boot entry's options. The serial console needs nothing
      // (the DTB's stdout-path names it); virtio-console must be named.
      let arguments = [config.console == .virtio ? "console=hvc0" : nil, config.kernelParameters].compactMap { $0 }
      bootArguments = arguments.isEmpty ? nil : arguments.joined(separator: " ")
    }
  }
}
