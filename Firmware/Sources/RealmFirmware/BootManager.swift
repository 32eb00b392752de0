import FirmwareCore

/// Picks the disk to boot: the first, in PCI order, whose ESP has something the boot mode takes.
enum BootManager {
  /// What a disk's ESP offers, or why it offers nothing.
  struct Offer {
    var esp = ESPOffer(bls: false, efi: false)
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
    return Offer(esp: ESPOffer(volume: &fat))
  }

  /// Boots the first disk, in PCI order, whose ESP offers what the mode allows (in the automatic
  /// mode its BLS entries, else its UEFI application). A failed attempt moves on to the next disk,
  /// not to the same disk's other path: `image create` disks carry the kernel as BOOTAA64.EFI too,
  /// and booting it without its initrd and command line would hide the reason. Returns never: when
  /// every disk failed, fails naming each and why in one line.
  static func boot(_ disks: [EFIDisk], mode: FirmwareBootMode,
                   attempt: (_ disk: Int, _ path: BootPath) throws(BootFailure) -> Never) -> Never {
    var reasons: [String] = []
    for (i, disk) in disks.enumerated() {
      let o = offer(disk)
      // efi mode boots a BLS-only disk's default entry through the kernel's own EFI stub
      let path = o.esp.path(mode: mode)
      let prefix = disks.count > 1 ? "disk \(disk.name): " : ""
      guard let path else {
        let lacking: String
        switch mode {
        case .bls: lacking = "no /loader/entries/*.conf"
        case .efi: lacking = "no \\EFI\\BOOT\\BOOTAA64.EFI and no /loader/entries/*.conf"
        case .automatic: lacking = "no /loader/entries/*.conf and no \\EFI\\BOOT\\BOOTAA64.EFI"
        }
        reasons.append(prefix + (o.problem ?? lacking))
        continue
      }
      if let last = reasons.last {
        log("could not boot (\(last)); trying \(path == .bls ? "the BLS entries" : path == .efi ? "\\EFI\\BOOT\\BOOTAA64.EFI" : "the BLS entry's EFI stub") of disk \(disk.name)")
      }
      do throws(BootFailure) { try attempt(i, path) } catch { reasons.append(prefix + error.reason) }
    }
    var message = ""
    for (i, r) in reasons.enumerated() { message += (i > 0 ? "; " : "") + r }
    fail(message)
  }
}
