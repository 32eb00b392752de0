import Crypto
import Testing

@testable import RealmMeasurement

// Every expected value here is built by hand from the rules in DEN0137 (and TF-RMM's measurement
// code): the byte images are written out field by field in the test and hashed with swift-crypto
// directly, so a mistake in the library's layouts, descriptor fields or ordering shows up as a
// mismatch. Nothing below calls the library to build an expected value.

/// Hex of `bytes`.
func hex(_ bytes: some Sequence<UInt8>) -> String {
  bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
}

/// Writes `value` little-endian into `bytes` at `offset`, one byte at a time.
func put(_ value: UInt64, _ bytes: inout [UInt8], at offset: Int) {
  for index in 0..<8 { bytes[offset + index] = UInt8((value >> (8 * UInt64(index))) & 0xff) }
}

/// The hash as a 64-byte measurement field (SHA-256: 32 bytes then 32 zero bytes).
func field(_ bytes: [UInt8], sha512: Bool) -> [UInt8] {
  let digest = sha512 ? Array(SHA512.hash(data: bytes)) : Array(SHA256.hash(data: bytes))
  return digest + [UInt8](repeating: 0, count: 64 - digest.count)
}

/// A hand-rolled RIM: the initial value, then one descriptor per call.
struct HandRIM {
  var rim: [UInt8]
  let sha512: Bool

  /// DEN0137 B4.3.9.4: only flags@0x00, s2sz@0x08, sve_vl@0x10, num_bps@0x18, num_wps@0x20,
  /// pmu_num_ctrs@0x28, hash_algo@0x30 of the 4096-byte RmiRealmParams.
  init(flags: UInt64, s2sz: UInt64, bps: UInt64, wps: UInt64, sha512: Bool) {
    var params = [UInt8](repeating: 0, count: 4096)
    put(flags, &params, at: 0x00)
    put(s2sz, &params, at: 0x08)
    put(0, &params, at: 0x10)  // sve_vl
    put(bps, &params, at: 0x18)
    put(wps, &params, at: 0x20)
    put(0, &params, at: 0x28)  // pmu_num_ctrs
    put(sha512 ? 1 : 0, &params, at: 0x30)
    self.sha512 = sha512
    rim = field(params, sha512: sha512)
  }

  /// C1.11 RmmMeasurementDescriptorData.
  mutating func data(ipa: UInt64, granule: [UInt8]) {
    precondition(granule.count == 4096)
    var descriptor = [UInt8](repeating: 0, count: 256)
    descriptor[0] = 0  // desc_type DATA
    put(0x100, &descriptor, at: 0x08)
    for index in 0..<64 { descriptor[0x10 + index] = rim[index] }
    put(ipa, &descriptor, at: 0x50)
    put(1, &descriptor, at: 0x58)  // RMI_MEASURE_CONTENT
    let content = field(granule, sha512: sha512)
    for index in 0..<64 { descriptor[0x60 + index] = content[index] }
    rim = field(descriptor, sha512: sha512)
  }

  /// C1.12 RmmMeasurementDescriptorRec over B4.4.19 RmiRecParams (flags@0, pc@0x200, gprs@0x300).
  mutating func rec(pc: UInt64, x0: UInt64) {
    var params = [UInt8](repeating: 0, count: 4096)
    put(1, &params, at: 0x000)  // RMI_RUNNABLE
    put(pc, &params, at: 0x200)
    put(x0, &params, at: 0x300)  // gprs[0]; gprs[1..7] stay zero
    var descriptor = [UInt8](repeating: 0, count: 256)
    descriptor[0] = 1  // desc_type REC
    put(0x100, &descriptor, at: 0x08)
    for index in 0..<64 { descriptor[0x10 + index] = rim[index] }
    let content = field(params, sha512: sha512)
    for index in 0..<64 { descriptor[0x50 + index] = content[index] }
    rim = field(descriptor, sha512: sha512)
  }

  /// C1.13 RmmMeasurementDescriptorRipas.
  mutating func ripas(base: UInt64, top: UInt64) {
    var descriptor = [UInt8](repeating: 0, count: 256)
    descriptor[0] = 2  // desc_type RIPAS
    put(0x100, &descriptor, at: 0x08)
    for index in 0..<64 { descriptor[0x10 + index] = rim[index] }
    put(base, &descriptor, at: 0x50)
    put(top, &descriptor, at: 0x58)
    rim = field(descriptor, sha512: sha512)
  }

  var digest: [UInt8] { Array(rim.prefix(sha512 ? 64 : 32)) }
}

/// A granule of recognisable contents.
func granule(_ seed: UInt8) -> [UInt8] {
  (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 7) ^ seed }
}

@Suite struct RealmParametersTests {
  @Test func paramsImageHoldsOnlyTheMeasuredFields() {
    let parameters = RealmParameters(ipaBits: 33, hashAlgorithm: .sha512, lpa2: true, breakpoints: 5, watchpoints: 3)
    var expected = [UInt8](repeating: 0, count: 4096)
    expected[0x00] = 0x01  // flags: lpa2
    expected[0x08] = 33  // s2sz
    expected[0x18] = 5  // num_bps
    expected[0x20] = 3  // num_wps
    expected[0x30] = 1  // hash_algo SHA-512
    #expect(parameters.measuredImage == expected)
  }

  @Test func sveAndPMUFlags() {
    let parameters = RealmParameters(ipaBits: 40, sve: true, sveVectorLength: 3, pmu: true, pmuCounters: 6)
    #expect(parameters.flags == 0b110)
    let image = parameters.measuredImage
    #expect(image[0x00] == 6 && image[0x10] == 3 && image[0x28] == 6 && image[0x08] == 40)
  }

  @Test func recImage() throws {
    let rec = try RECParameters(pc: 0x8000_0000, gprs: [0x8fff_0000, 0, 0, 0, 0, 0, 0, 0x77])
    let image = rec.measuredImage
    #expect(image[0] == 1)
    #expect(Array(image[0x200..<0x208]) == [0, 0, 0, 0x80, 0, 0, 0, 0])
    #expect(Array(image[0x300..<0x308]) == [0, 0, 0xff, 0x8f, 0, 0, 0, 0])
    #expect(image[0x338] == 0x77)
    #expect(image.enumerated().allSatisfy { index, byte in byte == 0 || [0, 0x203, 0x302, 0x303, 0x338].contains(index) })
    #expect(throws: RIMError.tooManyRegisters(9)) { try RECParameters(pc: 0, gprs: Array(repeating: 1, count: 9)) }
  }

  @Test(arguments: [false, true])
  func initialRIMIsTheParamsHash(sha512: Bool) {
    let parameters = RealmParameters(ipaBits: 33, hashAlgorithm: sha512 ? .sha512 : .sha256, lpa2: true, breakpoints: 5, watchpoints: 3)
    let hand = HandRIM(flags: 1, s2sz: 33, bps: 5, wps: 3, sha512: sha512)
    let rim = RealmInitialMeasurement(parameters: parameters)
    #expect(rim.digest == hand.digest)
    #expect(rim.field == hand.rim)
    #expect(rim.hex.count == (sha512 ? 128 : 64))
  }

  /// The RPV (RmiRealmParams @0x400) and the RTT/VMID fields (@0x800...) never reach the RIM:
  /// the measured image of two host structures that differ only there is the same.
  @Test func personalizationValueIsNotMeasured() throws {
    var host = [UInt8](repeating: 0, count: 4096)
    put(1, &host, at: 0x00)
    put(33, &host, at: 0x08)
    put(5, &host, at: 0x18)
    put(3, &host, at: 0x20)
    var personalized = host
    for index in 0..<64 { personalized[0x400 + index] = UInt8(index + 1) }  // rpv
    put(0x1234_5000, &personalized, at: 0x808)  // rtt_base
    put(2, &personalized, at: 0x810)  // rtt_level_start
    let plain = try RealmParameters(rmiRealmParams: host)
    let withRPV = try RealmParameters(rmiRealmParams: personalized)
    #expect(plain == withRPV)
    #expect(RealmInitialMeasurement(parameters: plain) == RealmInitialMeasurement(parameters: withRPV))
    #expect(plain.measuredImage == host)
  }
}
