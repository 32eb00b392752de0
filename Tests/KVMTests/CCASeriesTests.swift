import Foundation
import KVM
import TestSupport
import Testing

/// The table of CCA series against the documented facts (kvm-cca-api.md §1.2, §3-§5, §8, §11),
/// written out here rather than derived, and README.md against the table.
@Suite struct CCASeriesTests {
  /// name: (family, capability, VM type, REC bit, REC only at finalize, PSCI complete, populate,
  /// private before populate, VM memory attributes, RIM rules, RIPAS order, LPA2)
  typealias Facts = (
    CCASeries.Family, UInt32, UInt, Int32?, Bool, UInt?, CCASeries.PopulateABI, Bool, Bool, CCASeries.RIMRules,
    CCASeries.RIPASOrder, Bool
  )
  static let psciCompleteV5: UInt = 0x4018_AED2  // _IOW(KVMIO, 0xD2, 24 bytes), series v5
  static let psciComplete: UInt = 0x4018_AED6  // _IOW(KVMIO, 0xD6, 24 bytes), v8-v13
  static let documented: [(String, Facts)] = [
    ("v5", (.rme, 300, 0x100, 8, true, psciCompleteV5, .enableCap, false, true, .rmm1_0, .beforeData, false)),
    ("v8", (.rme, 240, 0x100, 8, false, psciComplete, .enableCap, false, true, .rmm1_0, .beforeData, false)),
    ("v9", (.rme, 243, 0x100, 9, false, psciComplete, .enableCap, false, true, .rmm1_0, .beforeData, false)),
    ("v10", (.rme, 244, 0x100, 9, false, psciComplete, .enableCap, false, true, .rmm1_0, .beforeData, false)),
    ("v12", (.rmi, 247, 0x100, nil, false, psciComplete, .returnsBytes, true, true, .rmm1_0, .afterREC, false)),
    ("v13", (.rmi, 248, 0x100, nil, false, psciComplete, .advancesRequest, true, true, .rmm2_0, .afterREC, true)),
    ("v14", (.rmi, 249, 1 << 30, nil, false, nil, .advancesRequest, true, true, .rmm2_0, .afterREC, true)),
    ("v15", (.rmi, 251, 1 << 30, nil, false, nil, .advancesRequest, false, false, .rmm2_0, .afterREC, true)),
    ("rmi-253", (.rmi, 253, 1 << 30, nil, false, nil, .advancesRequest, false, false, .rmm2_0, .afterREC, true)),
  ]

  @Test func everyRowMatchesTheDocumentedValues() throws {
    #expect(CCASeries.all.map(\.name) == Self.documented.map(\.0))
    for (name, facts) in Self.documented {
      let row = try #require(CCASeries(name: name))
      #expect(row.family == facts.0 && row.capability == facts.1 && row.realmVMType == facts.2, "\(name)")
      #expect(row.recFeature == facts.3 && row.recOnlyAtFinalize == facts.4 && row.psciCompleteRequest == facts.5, "\(name)")
      #expect(row.populate == facts.6 && row.privateBeforePopulate == facts.7 && row.setsVMMemoryAttributes == facts.8, "\(name)")
      #expect(row.rimRules == facts.9 && row.ripasOrder == facts.10 && row.setsLPA2 == facts.11, "\(name)")
    }
    #expect(Set(CCASeries.all.map(\.capability)).count == CCASeries.all.count)
  }

  @Test func hostInfoNamesTheRow() {
    #expect(CCASeries(name: "v13")?.description == "KVM_CAP_ARM_RMI (248), series v13")
    #expect(CCASeries(name: "v5")?.description == "KVM_CAP_ARM_RME (300), series v5–v7")
    #expect(CCASeries(name: "v11") == nil && CCASeries(name: "248") == nil)
  }

  /// A capability number that is not in the table is not a series, even one between two that are.
  @Test func aCapabilityWithoutARowIsNotASeries() throws {
    let syscalls = RecordingKVMSyscalls(capabilities: [250: 1, 252: 1, 254: 1, 245: 1])
    #expect(CCASeries.probe(try KVMSystem(syscalls: syscalls), isArm64: true) == nil)
    #expect(!syscalls.calls.contains { $0.request == 0xAE01 })  // no realm VM was even tried
  }

  /// Each row is found by the probe from its own capability, with its own VM type.
  @Test(arguments: CCASeries.all) func theProbeFindsEachRow(row: CCASeries) throws {
    let syscalls = RecordingKVMSyscalls(capabilities: [UInt(row.capability): 1])
    #expect(CCASeries.probe(try KVMSystem(syscalls: syscalls), isArm64: true) == row)
    #expect(syscalls.calls.filter { $0.request == 0xAE01 }.map(\.value) == [row.realmVMType | 33])
  }

  @Test func theREADMETableIsTheTable() throws {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardized
    let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
    #expect(readme.contains("\n\n" + CCASeries.markdownTable + "\n\n"), "README.md's series table is stale; it should read:\n\(CCASeries.markdownTable)")
    #expect(readme.contains("`--cca-abi \(CCASeries.all.map(\.name).joined(separator: "|"))`"))
  }
}
