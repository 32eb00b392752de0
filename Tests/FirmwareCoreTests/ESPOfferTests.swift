import FirmwareCore
import Testing

/// The boot manager's decisions on an ESP (the firmware's, and `measure`'s prediction of them).
@Suite struct ESPOfferTests {
  /// The ESP of an `image create` disk, with `patch` applied to the disk's bytes first.
  static func volume(patch: (inout [UInt8]) -> Void = { _ in }) throws -> FATVolume<PartitionBlockDevice<MemoryBlockDevice>> {
    var (_, disk, _) = try DiskFormatTests.makeDisk()
    patch(&disk)
    var device = MemoryBlockDevice(bytes: disk)
    let esp = try GUIDPartitionTable(device: &device).efiSystemPartition()
    return try FATVolume(device: PartitionBlockDevice(base: device, partition: esp))
  }

  /// The path per mode (automatic, efi, bls) for each offer.
  @Test func pathPerMode() {
    let table: [(ESPOffer, [BootPath?])] = [
      (ESPOffer(bls: true, efi: true), [.bls, .efi, .bls]),
      (ESPOffer(bls: true, efi: false), [.bls, .efiStub, .bls]),
      (ESPOffer(bls: false, efi: true), [.efi, .efi, nil]),
      (ESPOffer(bls: false, efi: false), [nil, nil, nil]),
    ]
    for (offer, paths) in table {
      #expect([FirmwareBootMode.automatic, .efi, .bls].map { offer.path(mode: $0) } == paths, "\(offer)")
    }
  }

  @Test func imageCreateDiskOffersBothAndItsEntry() throws {
    var volume = try Self.volume()
    #expect(ESPOffer(volume: &volume) == ESPOffer(bls: true, efi: true))
    var notes: [String] = []
    let entry = try ESPOffer.chooseEntry(&volume, requested: nil) { notes.append($0) }
    #expect(entry.id == Array("realm-run".utf8) && entry.linux == Array("/vmlinuz".utf8))
    #expect(notes.isEmpty)
    #expect(throws: BootEntryChoiceError.selection(.entryNotFound)) {
      _ = try ESPOffer.chooseEntry(&volume, requested: Array("other".utf8)) { _ in }
    }
    #expect(BootEntryChoiceError.selection(.entryNotFound).description == "no usable boot entry: requested boot entry not found")
  }

  /// /loader/entries renamed on disk: no BLS offer, and the choice names the directory.
  @Test func noEntriesDirectory() throws {
    var volume = try Self.volume { disk in
      let name = Array("ENTRIES    ".utf8)
      guard let at = (0...(disk.count - name.count)).first(where: { Array(disk[$0..<$0 + name.count]) == name }) else { return }
      disk[at + 6] = UInt8(ascii: "Z")
    }
    #expect(ESPOffer(volume: &volume) == ESPOffer(bls: false, efi: true))
    #expect(throws: BootEntryChoiceError.entriesDirectory(.notFound)) {
      _ = try ESPOffer.chooseEntry(&volume, requested: nil) { _ in }
    }
    #expect(BootEntryChoiceError.entriesDirectory(.notFound).description == "/loader/entries: file not found")
  }
}
