import Crypto
import FirmwareCore
import Testing

@testable import RealmMeasurement

/// The launch log: written from a launch, read back, and replayed to the RIM `measure` gives.
@Suite struct RealmLaunchLogTests {
  static let names = ["FIRMWARE", "DTB"]

  static func log(_ launch: RealmLaunch, _ rules: RIMRules, _ order: RIPASOrder = .afterREC) throws -> RealmLaunchLog {
    try RealmLaunchLog(launch: launch, names: names, rules: rules, ripasOrder: order)
  }

  /// Replaying the log with the images gives the RIM measured from the launch, for each rule set,
  /// RIPAS order and algorithm; the bytes read back are the same log.
  @Test(arguments: [(RIMRules.rmm2_0, RIPASOrder.afterREC), (.rmm1_0, .afterREC), (.rmm1_0, .beforeData)], [false, true])
  func replayGivesTheRIM(rules: (RIMRules, RIPASOrder), sha512: Bool) throws {
    let launch = try SmallRealm.launch(sha512: sha512)
    let log = try Self.log(launch, rules.0, rules.1)
    let decoded = try RealmLaunchLog(decoding: log.encoded())
    #expect(decoded == log)
    let rim = try decoded.replay(images: [SmallRealm.dtb, SmallRealm.firmware])
    #expect(rim == (try launch.measure(rules: rules.0, ripasOrder: rules.1)))
  }

  /// The events follow the measured commands: REALM_CREATE, the images in address order, the REC;
  /// under RMM 1.0 one INIT_RIPAS per measured RTT entry, where the host issues them.
  @Test func eventsInCommandOrder() throws {
    let launch = try SmallRealm.launch(sha512: false)
    let log20 = try Self.log(launch, .rmm2_0)
    #expect(log20.events.count == 4)
    guard case .realmCreate(let parameters) = log20.events[0], case .blob(let firmware) = log20.events[1],
      case .blob(let dtb) = log20.events[2], case .recCreate(let rec) = log20.events[3]
    else { Issue.record("events \(log20.events)"); return }
    #expect(parameters == launch.parameters)
    #expect(firmware == RealmLaunchLog.Blob(name: "FIRMWARE", base: SmallRealm.ramBase, size: 8192, digest: sha256(SmallRealm.firmware)))
    #expect(dtb.name == "DTB" && dtb.base == SmallRealm.dtbAddress && dtb.size == 0x1_0000)
    #expect(rec == launch.bootCPU)
    var ripas: [Range<UInt64>] = []
    try launch.forEachOperation(rules: .rmm1_0) { if case .ripas(let base, let top) = $0 { ripas.append(base..<top) } }
    let log10 = try Self.log(launch, .rmm1_0)
    #expect(Array(log10.events.prefix(4)) == log20.events)
    #expect(log10.events.dropFirst(4).map { event -> Range<UInt64>? in
      if case .initRIPAS(let base, let size) = event { return base..<base + size } else { return nil }
    } == ripas)
  }

  /// The bytes, field by field: the Spec ID event (TCG PC Client PFP §10.2.1) and a REALM_CREATE
  /// tag event (PCR 0, EV_EVENT_TAG, one zero SHA-256 digest, tag 1 of 14 bytes).
  @Test func layout() throws {
    let bytes = try Self.log(SmallRealm.launch(sha512: false), .rmm2_0).encoded()
    #expect(bytes.le32(at: 0) == 0 && bytes.le32(at: 4) == 3)  // PCR 0, EV_NO_ACTION
    #expect(bytes[8..<28].allSatisfy { $0 == 0 } && bytes.le32(at: 28) == 33)
    #expect(Array(bytes[32..<48]) == Array("Spec ID Event03".utf8) + [0])
    #expect(Array(bytes[48..<56]) == [0, 0, 0, 0, 0, 2, 106, 2])  // class 0, family 2.0, rev 106, uintn 2
    #expect(bytes.le32(at: 56) == 1 && bytes.le16(at: 60) == 0x000B && bytes.le16(at: 62) == 32 && bytes[64] == 0)
    let event = 65
    #expect(bytes.le32(at: event) == 0 && bytes.le32(at: event + 4) == 6 && bytes.le32(at: event + 8) == 1)
    #expect(bytes.le16(at: event + 12) == 0x000B && bytes[(event + 14)..<(event + 46)].allSatisfy { $0 == 0 })
    #expect(bytes.le32(at: event + 46) == 22 && bytes.le32(at: event + 50) == 1 && bytes.le32(at: event + 54) == 14)
    #expect(bytes.le64(at: event + 58) == 1)  // flags: LPA2
    #expect(Array(bytes[(event + 66)..<(event + 72)]) == [33, 0, 5, 3, 0, 0])  // s2sz, sve_vl, bps, wps, pmu, sha256
  }

  /// A blob's digest is the image file's own (what sha256sum prints), and an image matches with the
  /// zeros up to the blob's size: the DTB file as written, without its 64 KiB slot's padding.
  @Test func imagesMatchByDigest() throws {
    let dtbFile = Array(SmallRealm.dtb.prefix(5000)), padded = dtbFile + [UInt8](repeating: 0, count: 0x1_0000 - 5000)
    var launch = try SmallRealm.launch(sha512: false)
    launch.regions[1] = .init(address: SmallRealm.dtbAddress, bytes: padded)
    let log = try Self.log(launch, .rmm2_0)
    #expect(try log.replay(images: [dtbFile, SmallRealm.firmware]) == launch.measure(rules: .rmm2_0))
    #expect(try log.replay(images: [padded, SmallRealm.firmware]) == launch.measure(rules: .rmm2_0))
    // another firmware: not found, by name and digest
    var changed = SmallRealm.firmware
    changed[100] ^= 1
    #expect(throws: LaunchLogError.imageNotFound(name: "FIRMWARE", digest: hex(sha256(SmallRealm.firmware)))) {
      try log.replay(images: [dtbFile, changed])
    }
    // an image larger than the blob never matches it
    #expect(throws: LaunchLogError.self) { try log.replay(images: [dtbFile, SmallRealm.firmware + [0]]) }
  }

  /// Zero or 0xFF fill after the last event ends the log (a log in a fixed-size area).
  @Test func fillEndsTheLog() throws {
    let log = try Self.log(SmallRealm.launch(sha512: true), .rmm2_0)
    for fill: UInt8 in [0, 0xFF] {
      #expect(try RealmLaunchLog(decoding: log.encoded() + [UInt8](repeating: fill, count: 4096)) == log)
    }
  }

  /// A log cut anywhere is refused with an error, never a trap, unless the cut falls between two
  /// events: then it is the events before it (whose replay misses the RIM). Changed fields are
  /// refused too.
  @Test func malformedLogsAreRefused() throws {
    let full = try RealmLaunchLog(
      launch: SmallRealm.launch(sha512: false), names: Self.names, rules: .rmm2_0, deviceTree: Array(SmallRealm.dtb.prefix(300)))
    let bytes = full.encoded()
    var boundaries = 0
    for length in 1..<bytes.count {
      do {
        let cut = try RealmLaunchLog(decoding: Array(bytes.prefix(length)))
        #expect(cut.events.count < full.events.count && Array(full.events.prefix(cut.events.count)) == cut.events)
        boundaries += 1
      } catch {}
    }
    // after the Spec ID event, the DTB and each event but the last, and there with up to four
    // more zero bytes (an event's zero PCR index begun: fill)
    #expect(boundaries == 5 * (full.events.count + 1))
    let plain = try Self.log(SmallRealm.launch(sha512: false), .rmm1_0).encoded()
    func changed(_ offset: Int, _ value: UInt8) -> [UInt8] { var b = plain; b[offset] = value; return b }
    let event = 65
    #expect(throws: LaunchLogError.self) { try RealmLaunchLog(decoding: plain + [0, 0, 0, 0, 0, 0, 0, 0, 1]) }  // not fill
    #expect(throws: LaunchLogError.self) { try RealmLaunchLog(decoding: changed(4, 4)) }  // not EV_NO_ACTION
    #expect(throws: LaunchLogError.self) { try RealmLaunchLog(decoding: changed(60, 0x0C)) }  // SHA-384
    #expect(throws: LaunchLogError.self) { try RealmLaunchLog(decoding: changed(event, 1)) }  // PCR 1
    #expect(throws: LaunchLogError.self) { try RealmLaunchLog(decoding: changed(event + 8, 2)) }  // two digests
    #expect(throws: LaunchLogError.self) { try RealmLaunchLog(decoding: changed(event + 50, 9)) }  // tag 9
    #expect(throws: LaunchLogError.self) { try RealmLaunchLog(decoding: changed(event + 58, 8)) }  // flags bit 3
    #expect(throws: LaunchLogError.self) { try RealmLaunchLog(decoding: changed(event + 71, 2)) }  // hash_algo 2
    #expect(throws: LaunchLogError.self) { try RealmLaunchLog(decoding: changed(event + 4, 0x42)) }  // event type
    // a large log reads in linear time: 60,000 RIPAS events
    var many = try Self.log(SmallRealm.launch(sha512: false), .rmm2_0)
    many.events += (0..<60_000).map { .initRIPAS(base: 0x8000_0000 + UInt64($0) << 12, size: 0x1000) }
    #expect(try RealmLaunchLog(decoding: many.encoded()) == many)
    // the bounds: one event, one DTB byte or one log byte more is refused
    many.events += (0..<(RealmLaunchLog.maximumEvents - many.events.count + 1)).map { _ in .initRIPAS(base: 0x8000_0000, size: 0x1000) }
    #expect(throws: LaunchLogError.self) { try RealmLaunchLog(decoding: many.encoded()) }
    var bigTree = try Self.log(SmallRealm.launch(sha512: false), .rmm2_0)
    bigTree.deviceTree = [UInt8](repeating: 0xD0, count: RealmLaunchLog.maximumDeviceTreeSize + 1)
    #expect(throws: LaunchLogError.self) { try RealmLaunchLog(decoding: bigTree.encoded()) }
    #expect(throws: LaunchLogError.self) { try RealmLaunchLog(decoding: plain + [UInt8](repeating: 0, count: RealmLaunchLog.maximumSize)) }
  }

  /// Replay holds the log to a Realm's rules: REALM_CREATE first and once, images and RIPAS
  /// ranges inside the protected half, RIPAS ranges whole granules.
  @Test func replayRefusesImpossibleLaunches() throws {
    let log = try Self.log(SmallRealm.launch(sha512: false), .rmm2_0)
    let images = [SmallRealm.dtb, SmallRealm.firmware]
    func replaying(_ events: [RealmLaunchLog.Event]) throws {
      _ = try RealmLaunchLog(algorithm: .sha256, events: events).replay(images: images)
    }
    #expect(throws: LaunchLogError.self) { try replaying(Array(log.events.dropFirst())) }
    #expect(throws: LaunchLogError.self) { try replaying(log.events + [log.events[0]]) }
    #expect(throws: LaunchLogError.self) { try replaying(log.events + [.initRIPAS(base: 0x8000_0800, size: 0x1000)]) }
    #expect(throws: LaunchLogError.self) { try replaying(log.events + [.initRIPAS(base: 1 << 32, size: 0x1000)]) }
    guard case .blob(var blob) = log.events[1] else { Issue.record("no blob"); return }
    blob.base = (1 << 32) - 0x1000
    #expect(throws: LaunchLogError.self) { try replaying([log.events[0], .blob(blob)]) }
    #expect(throws: LaunchLogError.self) { _ = try RealmLaunchLog(algorithm: .sha512, events: log.events).replay(images: images) }
  }
}

func sha256(_ bytes: [UInt8]) -> [UInt8] { Array(SHA256.hash(data: bytes)) }
