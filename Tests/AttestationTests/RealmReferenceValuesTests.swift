import Attestation
import FirmwareCore
import Testing

@Test func referenceValuesDefaultToWildcardREMsAndAZeroRPV() {
  let values = RealmReferenceValues(algorithm: .sha256, rim: [UInt8](repeating: 1, count: 32))
  #expect(values.rems.count == 4 && values.rems.allSatisfy { $0 == nil })
  #expect(values.personalization == [UInt8](repeating: 0, count: 64))
}
