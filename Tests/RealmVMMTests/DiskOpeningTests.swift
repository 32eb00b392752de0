import Foundation
import Testing
import VirtIO

@testable import RealmVMM

@Suite struct DiskOpeningTests {
  /// One image given twice (by the same name, or through a link) is named as such, not reported as
  /// "in use by another process" because it met its own lock.
  @Test func theSameImageTwiceIsSaidPlainly() throws {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("disks-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let path = directory.appendingPathComponent("disk.img").path
    let link = directory.appendingPathComponent("link.img").path
    FileManager.default.createFile(atPath: path, contents: Data(count: 1 << 20))
    try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: path)

    func open(_ disks: [DiskConfig]) throws(MachineDevicesError) {
      let config = MachineConfig(memorySize: 64 << 20, cpus: 1, boot: .firmware(path: "fw.bin"), disks: disks)
      _ = try MachineDevices.openDisks(config)
    }
    for (second, readOnly) in [(path, false), (path, true), (link, false)] {
      do {
        try open([DiskConfig(path: path, readOnly: readOnly), DiskConfig(path: second, readOnly: readOnly)])
        Issue.record("\(second) given twice was accepted")
      } catch {
        #expect(error.description == (second == path
          ? "disk image \(path) is given twice; give each disk once"
          : "disk images \(path) and \(link) are the same file; give each disk once"))
      }
    }
  }
}
