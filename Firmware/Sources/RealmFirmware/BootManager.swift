import FirmwareCore

/// How a disk is booted: its ESP's Boot Loader Specification entries by the direct path, its
/// removable-media application in the UEFI environment, or (boot mode "efi", no application) its
/// default BLS entry's kernel through its own EFI stub in the UEFI environment (EFIStubBoot).
enum BootPath: Equatable {
  case bls
  case efi
  case efiStub
}

/// Picks the disk to boot: the first, in PCI order, whose ESP has something the boot mode takes.
enum BootManager {
  static let removableMediaPath = ByteString.of("/EFI/BOOT/BOOTAA64.EFI")

  /// What a disk's ESP offers, or why it offers nothing.
  struct Offer {
    var bls = false
    var efi = false
    var problem: String? = nil
  }

  static func offer(_ disk: EFIDisk) -> Offer {
    var reader = EFIDiskReader(disk: disk)
    let esp: GPTPartition
    do throws(GPTError) {
      esp = try GUIDPartitionTable(device: &reader).efiSystemPartition()
    } catch { return Offer(problem: "partition table: \(error)") }
    var fat: EFIVolume
    do throws(FATError) { fat = try EFIVolume(device: PartitionBlockDevice(base: reader, partition: esp)) } catch {
      return Offer(problem: "EFI system partition: \(error)")
    }
    var offer = Offer()
    if let directory = try? fat.lookup(ByteString.of("/loader/entries")), let entries = try? fat.entries(of: directory) {
      offer.bls = entries.contains { !$0.isDirectory && ByteString.hasSuffix(ByteString.lowercased($0.name), ByteString.of(".conf")) }
    }
    if let application = try? fat.lookup(removableMediaPath) { offer.efi = !application.isDirectory }
    return offer
  }

  /// The disk to boot and how; fails, naming each disk and what it lacks, when none will do.
  static func choose(_ disks: [EFIDisk], mode: FirmwareBootMode) -> (disk: Int, path: BootPath) {
    var reasons: [String] = []
    for (i, disk) in disks.enumerated() {
      let o = offer(disk)
      switch mode {
      case .bls where o.bls, .automatic where o.bls: return (i, .bls)
      case .efi where o.efi, .automatic where o.efi: return (i, .efi)
      case .efi where o.bls: return (i, .efiStub)
      default: break
      }
      let lacking: String
      switch mode {
      case .bls: lacking = "no /loader/entries/*.conf"
      case .efi: lacking = "no \\EFI\\BOOT\\BOOTAA64.EFI and no /loader/entries/*.conf"
      case .automatic: lacking = "no /loader/entries/*.conf and no \\EFI\\BOOT\\BOOTAA64.EFI"
      }
      reasons.append((disks.count > 1 ? "disk \(disk.name): " : "") + (o.problem ?? lacking))
    }
    var message = ""
    for (i, r) in reasons.enumerated() { message += (i > 0 ? "; " : "") + r }
    fail(message)
  }
}
