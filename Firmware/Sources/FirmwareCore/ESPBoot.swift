/// How the firmware boots a disk: its ESP's Boot Loader Specification entries by the direct path,
/// its removable-media application in the UEFI environment, or (boot mode "efi", no application)
/// its default BLS entry's kernel through its own EFI stub in the UEFI environment.
public enum BootPath: Equatable, Sendable {
  case bls
  case efi
  case efiStub
}

/// Why the BLS entry to boot could not be chosen.
public enum BootEntryChoiceError: Error, Equatable {
  /// /loader/entries could not be read.
  case entriesDirectory(FATError)
  /// No entry (or not the requested one) could be used.
  case selection(BootEntryError)
}

/// What an ESP offers the firmware's boot manager, and the BLS entry it boots: one implementation
/// for the firmware (BootManager, KernelLoader, EFIStubBoot) and for realm-run, which predicts the
/// REMs of a firmware boot from the same decisions.
public struct ESPOffer: Equatable {
  /// `\EFI\BOOT\BOOTAA64.EFI`, the removable-media application.
  public static let removableMediaPath = ByteString.of("/EFI/BOOT/BOOTAA64.EFI")

  /// /loader/entries holds at least one `*.conf` file.
  public var bls: Bool
  /// The removable-media application is a file.
  public var efi: Bool

  public init(bls: Bool, efi: Bool) {
    self.bls = bls
    self.efi = efi
  }

  /// What `volume` offers (unreadable places offer nothing).
  public init<D: BlockDevice>(volume: inout FATVolume<D>) {
    bls = false
    efi = false
    if let directory = try? volume.lookup(ByteString.of("/loader/entries")), let entries = try? volume.entries(of: directory) {
      bls = entries.contains { !$0.isDirectory && ESPOffer.isEntryFile($0.name) }
    }
    if let application = try? volume.lookup(ESPOffer.removableMediaPath) { efi = !application.isDirectory }
  }

  /// The path `mode` takes on a disk with this offer, or nil when it takes none: BLS entries
  /// first (unless the mode is efi), then the application (unless the mode is bls), and in efi
  /// mode a BLS-only disk's default entry through its kernel's EFI stub.
  public func path(mode: FirmwareBootMode) -> BootPath? {
    if bls && mode != .efi { return .bls }
    if efi && mode != .bls { return .efi }
    if bls && mode == .efi { return .efiStub }
    return nil
  }

  static func isEntryFile(_ name: [UInt8]) -> Bool {
    ByteString.hasSuffix(ByteString.lowercased(name), ByteString.of(".conf"))
  }

  /// Reads /loader/loader.conf and /loader/entries/*.conf and picks the entry to boot
  /// (``BootEntrySelection``). Files that cannot be read or parsed are skipped; `note` gets one
  /// line for each, for the log.
  public static func chooseEntry<D: BlockDevice>(
    _ volume: inout FATVolume<D>, requested: [UInt8]?, note: (String) -> Void
  ) throws(BootEntryChoiceError) -> BootEntry {
    var configuration = LoaderConfiguration()
    if let file = try? volume.lookup(ByteString.of("/loader/loader.conf")), let text = try? volume.readFile(file) {
      do throws(BootEntryError) { configuration = try LoaderConfiguration(text: text) } catch {
        note("ignoring /loader/loader.conf: \(error)")
      }
    }
    var entries: [BootEntry] = []
    let directory: [FATDirectoryEntry]
    do throws(FATError) {
      directory = try volume.entries(of: try volume.lookup(ByteString.of("/loader/entries")))
    } catch { throw .entriesDirectory(error) }
    for file in directory where !file.isDirectory && isEntryFile(file.name) {
      let id = Array(file.name.dropLast(5))
      do throws(FATError) {
        let text = try volume.readFile(file, limit: 64 * 1024)
        do throws(BootEntryError) { entries.append(try BootEntry(id: id, text: text)) } catch {
          note("ignoring entry \(ByteString.string(file.name)): \(error)")
        }
      } catch { note("cannot read \(ByteString.string(file.name)): \(error)") }
    }
    do throws(BootEntryError) {
      return try BootEntrySelection.choose(entries, configuration: configuration, requested: requested)
    } catch { throw .selection(error) }
  }
}
